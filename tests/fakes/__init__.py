"""Fake node binaries for the script tests: record every call, fail on demand.

Three kinds, one place, one way in (a bin directory put first on PATH):

- rule fakes (`fake.py`), for scripts whose tools answer from a script of results:

    bin = FakeBin(tmp_path, ["kubeadm", "kubectl", "systemctl"])
    bin.rule("kubeadm", "join *", {"rc": 1, "stderr": "timeout"}, {"rc": 0})
    subprocess.run(["bash", script], env=bin.env(JOIN_TIMEOUT="5"))
    assert bin.calls("kubeadm") == [["join", "--config", ...], ...]

  `fake.py` documents the rules; a command with no matching rule exits 0 and prints nothing.
  Names not faked resolve to the real binaries on PATH (coreutils, timeout, base64, ...).

- the node fake (`node.sh`), for the upgrade scripts, whose tools must agree with each other
  (installing a package changes what kubeadm and dpkg-query report): `node_bin()` links the
  tools to it; its state directory is described at the top of node.sh.

- the master fakes (`master.py`), for the API server scripts: a kubelet (crictl) whose
  kube-apiserver pod follows the manifest, and /readyz (curl), on one JSON state file.
"""

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

FAKE = Path(__file__).with_name("fake.py")
NODE_FAKE = Path(__file__).with_name("node.sh")
CLOCK = Path(__file__).with_name("clock.sh")


class Clock:
    """A fake clock for a node script (clock.sh, through BASH_ENV): time moves only when the
    script sleeps, so a test of a deadline counts tries, whatever the machine's load.

        clock = Clock(tmp_path)
        subprocess.run(["bash", "-s"], input=..., env={**env, **clock.env})
        assert clock.sleeps() == [0.25, 0.25, 0.25]   # and clock.elapsed() == 0.75
    """

    def __init__(self, root: Path):
        self.log = Path(root) / "fake-clock.log"
        self.log.write_text("")
        self.env = {"BASH_ENV": str(CLOCK), "FAKE_CLOCK_LOG": str(self.log)}

    def sleeps(self) -> list[float]:
        """The seconds of every sleep the script made, in order (and resets the log)."""
        got = [float(line) for line in self.log.read_text().split()]
        self.log.write_text("")
        return got


class FakeBin:
    """A directory of fake executables, their call log and their rules, under `root`."""

    def __init__(self, root: Path, names: list[str], clock: bool = False):
        self.root = Path(root)
        # clock=True: the script runs on a fake clock (Clock), its env() says so.
        self.clock = Clock(self.root) if clock else None
        self.bin = self.root / "fakebin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.log = self.root / "fake.log"
        self.rules_file = self.root / "fake-rules.json"
        self.rules: list[dict] = []
        for name in names:
            # A sh wrapper around this interpreter: `-S` keeps each fake call ~10 ms.
            wrapper = self.bin / name
            wrapper.write_text(
                f"#!/bin/sh\nexec {shlex.quote(sys.executable)} -S {shlex.quote(str(FAKE))} "
                f'{shlex.quote(name)} "$@"\n'
            )
            wrapper.chmod(0o755)
        self._save()

    def rule(self, cmd: str, match: str, *results: dict) -> "FakeBin":
        """Calls of `cmd` whose args (joined by spaces) fnmatch `match` get `results` in turn."""
        self.rules.append({"cmd": cmd, "match": match, "results": list(results) or [{}]})
        self._save()
        return self

    def _save(self) -> None:
        self.rules_file.write_text(json.dumps(self.rules, indent=1))

    def env(self, **extra) -> dict[str, str]:
        """A process environment with the fakes first on PATH."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAKE_")}
        env.update(
            PATH=f"{self.bin}:{env.get('PATH', '/usr/bin:/bin')}",
            FAKE_LOG=str(self.log),
            FAKE_RULES=str(self.rules_file),
        )
        if self.clock is not None:
            env.update(self.clock.env)
        env.update({k: str(v) for k, v in extra.items()})
        return env

    def calls(self, cmd: str | None = None) -> list[list[str]]:
        """The recorded calls, in order: [args] of `cmd`, or [cmd, *args] of every fake."""
        if not self.log.exists():
            return []
        records = [json.loads(line) for line in self.log.read_text().splitlines()]
        if cmd is None:
            return [[r["cmd"], *r["args"]] for r in records]
        return [r["args"] for r in records if r["cmd"] == cmd]


def node_bin(bin_dir: Path, faked: list[str], real: list[str]) -> Path:
    """A bin directory holding only the node fake (as each of `faked`) and the `real` tools,
    linked from this machine: a tool a script calls without a fake fails loudly instead of
    touching this machine's apt or systemd."""
    import shutil

    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in faked:  # node.sh dispatches on the name it is called by
        (bin_dir / tool).symlink_to(NODE_FAKE)
    for tool in real:
        found = shutil.which(tool)
        assert found, f"{tool} is not installed on this machine"
        (bin_dir / tool).symlink_to(found)
    return bin_dir


def run_remote(
    script: Path, env_lines: dict[str, str], env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess:
    """Run a node script the way the pulumi-command resources do: `bash -s`, its stdin being
    `export KEY='value'` lines followed by the script's text (no argv, nothing on disk)."""
    from cloud_init import SCRIPTS, script as shipped

    stdin = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env_lines.items())
    # What the commands send: the script with its libraries inlined.
    stdin += (
        shipped(Path(script).name) if Path(script).parent == SCRIPTS else Path(script).read_text()
    )
    return subprocess.run(
        ["bash", "-s"], input=stdin, env=env, capture_output=True, text=True, timeout=timeout
    )


def runcmd_script(entries: list) -> str:
    """runcmd as cloud-init runs it: Debian's cloud-init joins the entries into one sh script
    (cloudinit.util.shellify), whose exit status is its last command's."""
    code = (
        "import json, sys; from cloudinit.util import shellify; "
        "print(shellify(json.load(sys.stdin)), end='')"
    )
    return subprocess.run(
        ["/usr/bin/python3", "-c", code],
        input=json.dumps(entries),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
