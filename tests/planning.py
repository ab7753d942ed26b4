"""Run the offline plan (the real CLI, `python -m tools.plan`) and read what it wrote.

Each distinct (stack, --set ...) is planned once per test session; tests get a `Plan` with
the resources the engine would receive, their dependency graph and every node's user-data.

Pulumi.dev.yaml plans only once its user says where they connect from (sshAllowedCidrs,
apiAllowedCidrs): every plan of `dev` here says it first, with CONNECT_FROM (`with_access`),
and a test's own --set of either key overrides it. By hand, the same plan is

    python -m tools.plan --stack dev --set 'sshAllowedCidrs=["203.0.113.0/24"]' \
        --set 'apiAllowedCidrs=["203.0.113.0/24"]' --out DIR
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "command:remote:Command"

# Where the tests "connect from": a documentation range (RFC 5737), never the whole internet.
CONNECT_FROM_CONFIG = {"sshAllowedCidrs": ["203.0.113.0/24"], "apiAllowedCidrs": ["203.0.113.0/24"]}
CONNECT_FROM = tuple(f"{key}={json.dumps(value)}" for key, value in CONNECT_FROM_CONFIG.items())


def with_access(stack: str, sets: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The --set overrides a test plans `stack` with: the dev stack's CONNECT_FROM first."""
    return (*CONNECT_FROM, *sets) if stack == "dev" else tuple(sets)


INSTANCE = "openstack:compute/instance:Instance"


def run_plan(
    out: Path,
    stack: str = "dev",
    sets: tuple[str, ...] = (),
    previous: Path | None = None,
    root: Path = ROOT,
) -> subprocess.CompletedProcess:
    """`python -m tools.plan` of the program at `root` (this checkout, or an edited copy)."""
    args = [sys.executable, "-m", "tools.plan", "--stack", stack, "--out", str(out)]
    for s in with_access(stack, sets):
        args += ["--set", s]
    if previous is not None:
        args += ["--previous", str(previous)]
    # A guard against a hung plan, not a speed test: a thousand workers take about a minute
    # alone, and ten times that beside a loaded machine (tools/test.sh --under-load).
    return subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=1800)


_RAW = """
import json, sys
from tools import plan as P
sets = [(k, P.parse_value(v)) for k, _, v in (s.partition("=") for s in sys.argv[3:])]
ev = P.evaluate_stack(sys.argv[1], sets)
want = set(json.loads(sys.argv[2]))
print(json.dumps({r.name: r.raw_inputs for r in ev.registrations if r.name in want}))
"""


@dataclass
class Plan:
    dir: Path
    data: dict = field(repr=False)
    sets: tuple[str, ...] = ()

    @classmethod
    def load(cls, path: Path, sets: tuple[str, ...] = ()) -> Plan:
        return cls(path, json.loads((path / "plan.json").read_text()), tuple(sets))

    def raw(self, names: list[str]) -> dict[str, dict]:
        """Unredacted inputs of some resources (connections, stdin), from a fresh evaluation
        of the same stack and overrides in a subprocess (Pulumi's runtime is global state)."""
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                _RAW,
                self.data["stack"],
                json.dumps(names),
                *with_access(self.data["stack"], self.sets),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert out.returncode == 0, out.stderr[-3000:]
        got = json.loads(out.stdout)
        assert set(got) == set(names), f"missing: {set(names) - set(got)}"
        return got

    @property
    def resources(self) -> list[dict]:
        return self.data["resources"]

    @cached_property
    def by_name(self) -> dict[str, dict]:
        out = {}
        for r in self.resources:
            assert r["name"] not in out, f"two resources named {r['name']}"
            out[r["name"]] = r
        return out

    @cached_property
    def by_urn(self) -> dict[str, dict]:
        return {r["urn"]: r for r in self.resources}

    def of_type(self, type_: str) -> list[dict]:
        return [r for r in self.resources if r["type"] == type_]

    def named(self, name: str) -> dict:
        assert name in self.by_name, (
            f"no resource named {name}; have {sorted(self.by_name)[:20]}..."
        )
        return self.by_name[name]

    def waits_for(self, name: str) -> set[str]:
        """Names of every resource `name` waits for, transitively (the engine's ordering)."""
        seen: set[str] = set()
        stack = list(self.named(name)["dependencies"])
        while stack:
            urn = stack.pop()
            if urn in seen:
                continue
            seen.add(urn)
            stack.extend(self.by_urn[urn]["dependencies"] if urn in self.by_urn else [])
        return {self.by_urn[u]["name"] for u in seen if u in self.by_urn}

    def kubeadm_files(self, master: str) -> dict[str, str]:
        """The files a master's kubeadm-files command installs under /etc/kubernetes
        (PKI, and the init configuration on the first master), read out of its stdin."""
        import base64
        import io
        import re
        import tarfile

        name = f"{master}-kubeadm-files"
        stdin = self.raw([name])[name]["stdin"]
        b64 = re.search(r"^export KUBEADM_FILES_TAR_B64=(\S+)$", stdin, re.M).group(1).strip("'")
        with tarfile.open(fileobj=io.BytesIO(base64.b64decode(b64)), mode="r:gz") as tar:
            return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}

    def user_data(self, instance: str) -> str:
        return (self.dir / "user-data" / f"{instance}.yaml").read_text()

    @property
    def instances(self) -> list[str]:
        return sorted(r["name"] for r in self.of_type(INSTANCE))
