"""Snapshots of offline plans: for a fixed set of stack configurations, one digest per
resource (type, parent, dependencies, inputs, options) and per node's user-data.

A refactoring must leave every snapshot as it is; a deliberate change of what the program
asks of the cloud shows as the names of the resources it touches, and is recorded with

    .venv/bin/python tests/plan_snapshots.py --update

in the commit that makes the change (the diff of tests/snapshots/ says what changed).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from planning import with_access  # noqa: E402  (the dev stack's connect-from addresses)

ROOT = HERE.parent
SNAPSHOTS = HERE / "snapshots"

TWO_POOLS = 'workerPools=[{"name":"general","count":3},{"name":"edge","count":2,"gateway":true,"floatingIp":true}]'
VOLUMES = 'workerPools=[{"name":"general","count":2,"volumeSize":30}]'

# name -> (stack, --set overrides): 1/3/5 masters, VIP and Octavia, several pools, volumes,
# a mirror, backups, every add-on on and off.
CONFIGS: dict[str, tuple[str, tuple[str, ...]]] = {
    "dev": ("dev", ()),
    "prod": ("prod", ()),
    "three-masters-vip": ("dev", ("masters.count=3",)),
    "three-masters-octavia": ("dev", ("masters.count=3", "controlPlane.endpoint=octavia")),
    "five-masters-two-pools": ("dev", ("masters.count=5", TWO_POOLS)),
    "volumes-everywhere": ("dev", (VOLUMES, "masters.volumeSize=40", "discovery.volumeSize=20")),
    "package-mirror": ("dev", ("packageMirror=https://mirror.example.test/k8s",)),
    "swift-backups": ("dev", ("etcd.backup.container=etcd-snapshots",)),
    "no-addons": (
        "dev",
        (
            "cloudController.enabled=false",
            "csi.enabled=false",
            "metricsServer.enabled=false",
            "networkPolicy.enabled=false",
        ),
    ),
    "three-discovery-members": ("dev", ("discovery.count=3", "masters.count=3")),
    "private-api": (
        "dev",
        ("controlPlane.floatingIp=false", "masters.count=3", "controlPlane.endpoint=vip"),
    ),
    "prod-octavia": ("prod", ("masters.count=3", "controlPlane.endpoint=octavia")),
}


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def snapshot(stack: str, sets: tuple[str, ...]) -> dict:
    """Plan the stack with `python -m tools.plan` and digest what it wrote."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "plan"
        args = [sys.executable, "-m", "tools.plan", "--stack", stack, "--out", str(out)]
        for s in with_access(stack, sets):
            args += ["--set", s]
        result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"plan {stack} {sets} failed:\n{result.stderr[-3000:]}")
        plan = json.loads((out / "plan.json").read_text())
        resources = {
            r["name"]: _digest(
                {k: r.get(k) for k in ("type", "parent", "dependencies", "inputs", "options")}
            )
            for r in plan["resources"]
        }
        user_data = {
            f.stem: hashlib.sha256(f.read_bytes()).hexdigest()[:16]
            for f in sorted((out / "user-data").glob("*.yaml"))
        }
        return {"resources": resources, "userData": user_data, "outputs": _digest(plan["outputs"])}


def path(name: str) -> Path:
    return SNAPSHOTS / f"{name}.json"


def changes(want: dict, got: dict) -> list[str]:
    """One line per difference: resources added, removed or changed, user-data, outputs."""
    lines = []
    for kind in ("resources", "userData"):
        w, g = want[kind], got[kind]
        lines += [f"{kind}: added {n}" for n in sorted(set(g) - set(w))]
        lines += [f"{kind}: removed {n}" for n in sorted(set(w) - set(g))]
        lines += [f"{kind}: changed {n}" for n in sorted(set(w) & set(g)) if w[n] != g[n]]
    if want["outputs"] != got["outputs"]:
        lines.append("outputs changed")
    return lines


def main(argv: list[str]) -> int:
    if argv != ["--update"]:
        print(__doc__, file=sys.stderr)
        return 2
    SNAPSHOTS.mkdir(exist_ok=True)
    for name, (stack, sets) in CONFIGS.items():
        path(name).write_text(json.dumps(snapshot(stack, sets), indent=1, sort_keys=True) + "\n")
        print(f"{name}: {path(name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
