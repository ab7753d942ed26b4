"""Run this project's stacks with the real Pulumi CLI: the harness of the engine and cloud tests.

    engine = Engine.build()                       # tools/real-engine.sh: built once, then cached
    stack = Stack.from_stack_file(engine, tmp_path, "dev", sets=["masters.count=3"],
                                  env=openstack_env)
    stack.init()
    preview = stack.preview()                     # a Result; preview.json() is `--json`'s output
    stack.up(exclude=CLUSTER_SIDE)                # command:* and kubernetes:* left out, and why
    stack.preview(exclude=CLUSTER_SIDE, expect_no_changes=True)
    stack.refresh(exclude=CLUSTER_SIDE)
    stack.destroy()

Every stack lives in a local backend under its work directory, with a PULUMI_HOME of its own
(its plugins: the engine's, linked), and its config in a file there (`--config-file`): the
checkout's Pulumi.*.yaml are read, never written. Commands run in the checkout (the project
directory) with a clean environment: only what is passed in `env` reaches the providers
(OS_* for the OpenStack one). Nothing is downloaded: automatic plugin acquisition and the
update check are off.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "openstack-k8s"
PASSPHRASE = "engine-tests-only"  # encrypts the temp stacks' secrets; nothing real is kept
TIMEOUT = 1800  # seconds per command: a guard against a hung CLI, not a measurement

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tools.plan import parse_path, parse_value, set_path  # noqa: E402


class EngineError(RuntimeError):
    """tools/real-engine.sh failed or a command did not do what the test asked (`check=True`)."""


@dataclass(frozen=True)
class Engine:
    """The CLI and plugins built by tools/real-engine.sh: `bin_dir` holds `pulumi` and our
    language host, `bin_dir/../home` is the PULUMI_HOME with every plugin installed."""

    bin_dir: Path

    @property
    def pulumi(self) -> Path:
        return self.bin_dir / "pulumi"

    @property
    def plugins(self) -> Path:
        return self.bin_dir.parent / "home" / "plugins"

    @classmethod
    def build(cls, python: str | None = None) -> Engine:
        """Run tools/real-engine.sh (seconds when its cache is warm, ~15 min cold) with this
        test process's Python unless told otherwise. A failure raises with the script's tail:
        a missing Go, stand-in or venv fails the tests that need the engine, never skips them."""
        env = dict(os.environ, PYTHON=python or sys.executable)
        res = subprocess.run(
            ["bash", str(ROOT / "tools" / "real-engine.sh")],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        if res.returncode != 0 or not res.stdout.strip():
            raise EngineError(
                f"tools/real-engine.sh failed ({res.returncode}):\n{res.stderr[-4000:]}"
            )
        bin_dir = Path(res.stdout.strip().splitlines()[-1])
        engine = cls(bin_dir)
        if not engine.pulumi.is_file() or not engine.plugins.is_dir():
            raise EngineError(f"tools/real-engine.sh printed {bin_dir}: no pulumi or plugins there")
        return engine

    def home(self, workdir: Path) -> Path:
        """A PULUMI_HOME of one work directory: the engine's plugins, everything else its own
        (logs, workspace settings), so stacks of parallel tests do not share state."""
        home = workdir / "pulumi-home"
        home.mkdir(parents=True, exist_ok=True)
        link = home / "plugins"
        if not link.exists():
            link.symlink_to(self.plugins, target_is_directory=True)
        return home


@dataclass(frozen=True)
class Exclusion:
    """Resources a command leaves out (`--exclude` globs and `--exclude-dependents`): every
    resource of the given packages and every resource that depends on one, with the reason."""

    packages: tuple[str, ...]
    reason: str

    def globs(self, stack: str, project: str = PROJECT) -> list[str]:
        """URN globs of the packages' resources: top-level (`::pkg:...`) or under components
        (`...$pkg:...`); the CLI's `*` stops at `:`, `**` does not."""
        prefix = f"urn:pulumi:{stack}::{project}::"
        out = []
        for pkg in self.packages:
            out += [f"{prefix}{pkg}:**", f"{prefix}**${pkg}:**"]
        return out

    def matches(self, urn: str) -> bool:
        """True for a URN of one of the packages' own resources (not their dependents)."""
        type_chain = urn.split("::")[2]
        return type_chain.split("$")[-1].split(":")[0] in self.packages

    def left_out(self, states: dict[str, dict]) -> set[str]:
        """Of `states` (URN -> {"parent", "dependencies"}), what the exclusion leaves out."""
        return dependents_closure(states, {urn for urn in states if self.matches(urn)})


def dependents_closure(states: dict[str, dict], roots: set[str]) -> set[str]:
    """`roots` and every resource that depends on one or is a child of one, transitively:
    what `--exclude-dependents` leaves out with them."""
    out = set(roots)
    changed = True
    while changed:
        changed = False
        for urn, state in states.items():
            if urn not in out and (
                state.get("parent") in out or out & set(state.get("dependencies") or [])
            ):
                out.add(urn)
                changed = True
    return out


# What the engine and cloud tests leave out, and why. Remote commands (command:remote:Command)
# run over SSH on booted VMs through the jump host: the local cloud's fake Nova driver boots
# nothing. Kubernetes objects need the cluster those commands would form. Their providers here
# are stand-ins (tools/engine/standins) that check and diff but refuse to create, update or delete.
CLUSTER_SIDE = Exclusion(
    ("command", "kubernetes"),
    reason="remote commands need booted VMs and Kubernetes objects a cluster: the local cloud "
    "boots none, and these providers are stand-ins that refuse to act",
)


@dataclass
class Result:
    """One CLI run: its arguments, exit status and output."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def json(self) -> Any:
        """The parsed stdout of a `--json` command."""
        try:
            return json.loads(self.stdout)
        except json.JSONDecodeError as e:
            raise EngineError(f"{self.describe()}: stdout is not JSON ({e})") from None

    def describe(self) -> str:
        return (
            f"`pulumi {' '.join(self.args)}` exited {self.returncode}\n"
            f"--- stdout (tail)\n{self.stdout[-3000:]}\n--- stderr (tail)\n{self.stderr[-3000:]}"
        )


def steps(preview: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """A `preview --json` document's steps by URN."""
    return {s["urn"]: s for s in preview.get("steps", [])}


def error_diagnostics(preview: Mapping[str, Any]) -> list[str]:
    """The messages of a `--json` document's error diagnostics (severity `error`, or a
    plugin's stderr marked `info#err` that starts with `error:`)."""
    out = []
    for d in preview.get("diagnostics", []):
        message = d.get("message", "")
        if d.get("severity") == "error" or (
            d.get("severity") == "info#err" and message.lstrip().startswith("error:")
        ):
            out.append(message.strip())
    return out


def stack_file_config(stack: str, sets: Sequence[str] = ()) -> dict[str, Any]:
    """The `config:` of Pulumi.<stack>.yaml with `KEY=VALUE` overrides (the project's keys,
    `pulumi config set --path` syntax, values as JSON when they parse: tools.plan's --set),
    keys namespaced as in the file."""
    text = (ROOT / f"Pulumi.{stack}.yaml").read_text()
    section = copy.deepcopy(yaml.safe_load(text).get("config") or {})
    project = {k.partition(":")[2]: v for k, v in section.items() if k.startswith(f"{PROJECT}:")}
    others = {k: v for k, v in section.items() if not k.startswith(f"{PROJECT}:")}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"{item!r}: not KEY=VALUE")
        parse_path(key)  # a bad path raises tools.plan.UsageError naming it
        set_path(project, key, parse_value(value))
    return {**others, **{f"{PROJECT}:{k}": v for k, v in project.items()}}


@dataclass
class Stack:
    """One stack of this project in a local backend under `workdir`.

    `config` is the stack's whole `config:` section (namespaced keys, as in Pulumi.<stack>.yaml);
    `env` the extra environment of every command (OS_* for the OpenStack provider)."""

    engine: Engine
    workdir: Path
    name: str
    config: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    project_dir: Path = ROOT
    encryption_salt: str | None = None  # the passphrase's salt, set by init()

    @classmethod
    def from_stack_file(
        cls,
        engine: Engine,
        workdir: Path,
        stack: str,
        sets: Sequence[str] = (),
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> Stack:
        """A stack configured from Pulumi.<stack>.yaml plus `sets`, named `name` (default: the
        same name, so its URNs are those of the offline plan of that stack)."""
        return cls(engine, workdir, name or stack, stack_file_config(stack, sets), dict(env or {}))

    @property
    def project(self) -> str:
        """The project's name, from Pulumi.yaml in `project_dir`."""
        return yaml.safe_load((self.project_dir / "Pulumi.yaml").read_text())["name"]

    @property
    def config_file(self) -> Path:
        return self.workdir / f"Pulumi.{self.name}.yaml"

    @property
    def state_dir(self) -> Path:
        return self.workdir / "state"

    def environment(self) -> dict[str, str]:
        """The whole environment of a command: nothing inherited but PATH's system part,
        HOME and the locale, so no OS_* or PULUMI_* of the caller leaks in."""
        base = {k: os.environ[k] for k in ("HOME", "LANG", "LC_ALL", "TMPDIR") if k in os.environ}
        return {
            **base,
            "PATH": f"{self.engine.bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "PULUMI_HOME": str(self.engine.home(self.workdir)),
            "PULUMI_BACKEND_URL": self.state_dir.as_uri(),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_SKIP_CONFIRMATIONS": "true",
            **self.env,
        }

    def write_config(self) -> None:
        """(Re)write the config file from `self.config`: change `config`, then call this."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        doc: dict[str, Any] = {"config": self.config}
        if self.encryption_salt:
            doc["encryptionsalt"] = self.encryption_salt
        self.config_file.write_text(yaml.safe_dump(doc, sort_keys=True))

    def set(self, *sets: str) -> None:
        """Apply `KEY=VALUE` overrides of the project's keys (as `from_stack_file`) and rewrite
        the config file: one more worker, a version bump, a volume size."""
        project = {
            k.partition(":")[2]: v for k, v in self.config.items() if k.startswith(f"{PROJECT}:")
        }
        for item in sets:
            key, _, value = item.partition("=")
            set_path(project, key, parse_value(value))
        self.config.update({f"{PROJECT}:{k}": v for k, v in project.items()})
        self.write_config()

    def run(
        self, *args: str, check: bool = False, config: bool = True, cwd: Path | None = None
    ) -> Result:
        """`pulumi ARGS --stack NAME --non-interactive [--config-file FILE]` in the project dir."""
        full = [*args, "--stack", self.name, "--non-interactive"]
        if config:
            full += ["--config-file", str(self.config_file)]
        res = subprocess.run(
            [str(self.engine.pulumi), *full],
            cwd=cwd or self.project_dir,
            env=self.environment(),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        result = Result(full, res.returncode, res.stdout, res.stderr)
        if check and not result.ok:
            raise EngineError(result.describe())
        return result

    def init(self) -> Result:
        """Create the backend directory, the stack and its config file.

        `pulumi stack init` has no --config-file: it writes the passphrase's salt into
        Pulumi.<stack>.yaml beside Pulumi.yaml. So it runs in a copy of the project file in the
        work dir, and the salt moves into our config file, which every later command reads."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        shadow = self.workdir / "stack-init"
        shadow.mkdir(parents=True, exist_ok=True)
        (shadow / "Pulumi.yaml").write_text((self.project_dir / "Pulumi.yaml").read_text())
        result = self.run("stack", "init", check=True, config=False, cwd=shadow)
        written = yaml.safe_load((shadow / f"Pulumi.{self.name}.yaml").read_text()) or {}
        self.encryption_salt = written.get("encryptionsalt")
        if not self.encryption_salt:
            raise EngineError(f"`pulumi stack init` wrote no encryptionsalt: {written}")
        self.write_config()
        return result

    def _filters(self, exclude: Exclusion | None) -> list[str]:
        if exclude is None:
            return []
        out = []
        for glob in exclude.globs(self.name, self.project):
            out += ["--exclude", glob]
        return [*out, "--exclude-dependents"]

    def preview(
        self,
        *,
        exclude: Exclusion | None = None,
        expect_no_changes: bool = False,
        json_output: bool = True,
        extra: Sequence[str] = (),
    ) -> Result:
        """`pulumi preview` (`--json` unless told otherwise). Not checked: look at `.ok`."""
        args = ["preview", *self._filters(exclude), *extra]
        if json_output:
            args.append("--json")
        if expect_no_changes:
            args.append("--expect-no-changes")
        return self.run(*args)

    def up(
        self, *, exclude: Exclusion | None = None, check: bool = True, extra: Sequence[str] = ()
    ) -> Result:
        """`pulumi up --yes --skip-preview`; raises EngineError on failure unless check=False."""
        return self.run(
            "up", "--yes", "--skip-preview", *self._filters(exclude), *extra, check=check
        )

    def refresh(
        self,
        *,
        exclude: Exclusion | None = None,
        expect_no_changes: bool = False,
        check: bool = True,
    ) -> Result:
        """`pulumi refresh --yes`: with expect_no_changes, a drift fails it."""
        args = ["refresh", "--yes", "--skip-preview", *self._filters(exclude)]
        if expect_no_changes:
            args.append("--expect-no-changes")
        return self.run(*args, check=check)

    def destroy(self, *, check: bool = True) -> Result:
        """`pulumi destroy --yes`: everything in the state (excluded resources never got there)."""
        return self.run("destroy", "--yes", "--skip-preview", check=check)

    def export(self) -> dict[str, Any]:
        """The stack's state (`pulumi stack export`) as a dict."""
        return self.run("stack", "export", check=True, config=False).json()
