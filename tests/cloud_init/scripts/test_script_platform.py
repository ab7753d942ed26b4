"""What every node script shares: one entry point with stdin closed, one helper library,
one format. The scripts are fed to `bash -s` (their text on stdin), so a command that reads
stdin would eat the rest of the script; the rules here are checked over every script, and
the failure they prevent is shown on node-install-bundle.sh with a fake apt-get that reads
its stdin the way dpkg's configuration prompts can."""

import os
import re
import subprocess
from pathlib import Path

import pytest

from cloud_init import SCRIPTS, script, userdata
from fakes import FakeBin, run_remote

from planning import ROOT  # noqa: E402

ALL = sorted(SCRIPTS.glob("*.sh"))
MAIN_CALL = 'main "$@" </dev/null'


def test_there_are_scripts_to_check():
    assert len(ALL) >= 20


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_script_runs_main_with_stdin_closed(path):
    """One `main` per script, called last as `main "$@" </dev/null`: nothing it starts can
    read the rest of the script from bash's stdin, and bash has read the whole body (the
    function) before any of it runs."""
    lines = path.read_text().rstrip("\n").splitlines()
    assert lines[-1] == MAIN_CALL, f"{path.name} ends with {lines[-1]!r}"
    assert len(re.findall(r"^main\(\) \{$", path.read_text(), re.M)) == 1, path.name
    # The old way (closing stdin from inside main) is gone: one rule, one place.
    assert "exec </dev/null" not in path.read_text(), path.name


def test_bundle_survives_an_apt_get_that_reads_stdin(tmp_path):
    """apt-get (dpkg prompts, debconf) may read stdin; fed through `bash -s`, the script
    must still run to its end and install every file of the bundle."""
    fakes = FakeBin(tmp_path, ["apt-get", "dpkg-query", "systemctl"])
    swallowed = tmp_path / "apt-get-stdin"
    fakes.rule("dpkg-query", "*", {"rc": 1})  # nothing installed: the packages get installed
    fakes.rule("apt-get", "* install *", {"capture": str(swallowed)})
    root = tmp_path / "root"
    env = userdata.bundle_env(
        {
            "packages": ["etcd-client"],
            "write_files": [
                {"path": "/etc/example/a.conf", "content": "a\n", "permissions": "0640"}
            ],
            "runcmd": [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", "x.timer"]],
        }
    )
    r = run_remote(SCRIPTS / "node-install-bundle.sh", {**env, "ROOT_DIR": str(root)}, fakes.env())
    assert r.returncode == 0, r.stderr
    assert swallowed.exists() and swallowed.read_text() == ""
    assert (root / "etc/example/a.conf").read_text() == "a\n"
    assert "node-install-bundle: 1 file(s) changed" in r.stdout + r.stderr
    assert ["enable", "x.timer"] in fakes.calls("systemctl")


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_script_sources_the_one_library(path):
    """One die, one log, one set of deadline helpers: lib/common.sh, sourced at the top level
    (cloud_init.script inlines it there when the script is shipped), never redefined."""
    text = path.read_text()
    assert re.search(
        r'^PROG=[a-z-]+\n(#.*\n|LOG_FD=[12]\n)*source "\$\{BASH_SOURCE\[0\]%/\*\}/lib/common\.sh"',
        text,
        re.M,
    ), path.name
    assert not re.search(r"^\s*(die|log)\(\)", text, re.M), path.name
    shipped = script(path.name)
    assert 'lib/common.sh" #' not in shipped and "\ndie() {" in shipped


# shfmt, pinned: tools/test.sh builds this version into the cache below.
SHFMT_VERSION = "v3.12.0"
SHFMT = (
    Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    / "openstack-k8s"
    / "bin"
    / f"shfmt-{SHFMT_VERSION}"
)


def shfmt() -> str:
    """The pinned shfmt; a missing one fails the test (it is never skipped)."""
    assert SHFMT.is_file(), (
        f"{SHFMT} is missing: run `bash tools/test.sh`, or `GOBIN=$(mktemp -d) go install "
        f"mvdan.cc/sh/v3/cmd/shfmt@{SHFMT_VERSION}` and move the binary there"
    )
    version = subprocess.run(
        [str(SHFMT), "--version"], capture_output=True, text=True
    ).stdout.strip()
    assert version == SHFMT_VERSION, f"{SHFMT} says {version!r}"
    return str(SHFMT)


def test_tools_build_the_pinned_shfmt():
    """One version for the test and for tools/test.sh, which builds it."""
    text = (ROOT / "tools" / "test.sh").read_text()
    assert f"SHFMT_VERSION={SHFMT_VERSION}\n" in text and "mvdan.cc/sh/v3/cmd/shfmt@" in text


def test_every_script_is_shfmt_formatted(tmp_path):
    """One format (cloud_init/scripts/.editorconfig: two spaces, indented case branches) for
    every script and library, and a copy indented otherwise is flagged: the check bites."""
    tool = shfmt()
    scripts = [str(p) for p in [*ALL, *sorted((SCRIPTS / "lib").glob("*.sh"))]]
    res = subprocess.run([tool, "-d", *scripts], capture_output=True, text=True, cwd=SCRIPTS)
    assert res.returncode == 0 and res.stdout == "", res.stdout[-4000:] + res.stderr
    (tmp_path / ".editorconfig").write_text((SCRIPTS / ".editorconfig").read_text())
    bad = tmp_path / "probe.sh"
    bad.write_text("#!/usr/bin/env bash\nmain() {\n    echo four\n}\n")
    res = subprocess.run([tool, "-d", str(bad)], capture_output=True, text=True)
    assert res.returncode == 1 and "+  echo four" in res.stdout, res.stdout


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_every_deadline_is_a_common_one(path):
    """Deadlines come from lib/common.sh (now_ms instants set from seconds_env inputs), not
    from bash's whole-second $SECONDS: one rule, decimals allowed everywhere."""
    assert "SECONDS" not in path.read_text().replace("WAIT_SECONDS", ""), path.name


CLOCK_READS = re.compile(r"EPOCHREALTIME|EPOCHSECONDS|\bdate\b[^\n]*\+%[sN]|\bread\b[^\n]* -t ")


@pytest.mark.parametrize(
    "path", [*ALL, *sorted((SCRIPTS / "lib").glob("*.sh"))], ids=lambda p: p.name
)
def test_the_only_clock_is_common_now_ms(path):
    """Script tests put the scripts on a fake clock (tests/fakes/clock.sh) by replacing
    EPOCHREALTIME and `sleep`: that holds while now_ms (lib/common.sh) is the one reader of
    the time and `sleep` the one way to wait."""
    text = path.read_text()
    reads = CLOCK_READS.findall(text)
    assert reads == (["EPOCHREALTIME"] if path.name == "common.sh" else []), (path.name, reads)


def test_the_fake_clock_moves_only_with_sleep(tmp_path):
    """A deadline of one second on the fake clock: not passed after real work, passed after
    the sleeps add up to it, and now_ms reports exactly what was slept."""
    from fakes import Clock

    clock = Clock(tmp_path)
    text = (
        "PROG=t\n"
        + (SCRIPTS / "lib/common.sh").read_text()
        + "start=$(now_ms); d=$(deadline_in 1000)\n"
        + "for _ in $(seq 200); do /bin/true; done\n"  # real time goes by, the clock does not
        + "passed $d && echo early\n"
        + "sleep 0.4; sleep 0.599; passed $d && echo early2\n"
        + "sleep 0.001; passed $d && echo passed\n"
        + 'echo "$(($(now_ms) - start)) $(ms_left $d)"\n'
    )
    out = subprocess.run(
        ["bash", "-s"],
        input=text,
        capture_output=True,
        text=True,
        env={"PATH": os.environ["PATH"], **clock.env},
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n") == ["passed", "1000 0", ""]
    assert clock.sleeps() == [0.4, 0.599, 0.001]
