"""networkPolicy.enabled on running nodes: every master and worker has a `<node>-network-policy`
command that runs nothing at creation and runs when the setting changes, so turning policy off
removes Calico's CNI files from the nodes in the same `pulumi up` that removes Calico."""

from __future__ import annotations

import subprocess
import sys

from planning import COMMAND, INSTANCE, ROOT


def _policy_commands(p) -> dict[str, dict]:
    return {r["name"]: r for r in p.of_type(COMMAND) if r["name"].endswith("-network-policy")}


def test_every_kubernetes_node_has_one_that_runs_nothing_at_creation(plan):
    p = plan("dev", "masters.count=3")
    commands = _policy_commands(p)
    nodes = {r["name"] for r in p.of_type(INSTANCE) if "-discovery-" not in r["name"]}
    assert len(nodes) == 5 and set(commands) == {f"{n}-network-policy" for n in nodes}
    for name, r in commands.items():
        assert "create" not in r["inputs"], name
        assert r["inputs"]["update"].endswith("# network policy on")
        node = name.removesuffix("-network-policy")
        # After the node is in the cluster: its init or its join.
        assert (
            p.named(f"{node}-init" if node == "dev-master-0" else f"{node}-join")["urn"]
            in r["dependencies"]
        )


def test_turning_policy_off_reruns_them_and_replaces_no_vm(plan):
    on, off = plan("dev"), plan("dev", "networkPolicy.enabled=false")
    result = subprocess.run(
        [sys.executable, "-m", "tools.plan", "--diff", str(on.dir), str(off.dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    assert "(0 replaced)" in result.stdout
    rerun = [
        line
        for line in result.stdout.splitlines()
        if line.startswith("#### ") and "network-policy" in line
    ]
    assert rerun and "`dev-master-0-network-policy`" in rerun[0] and "runs again" in rerun[0]
    assert all(
        r["inputs"]["update"].endswith("# network policy off")
        for r in _policy_commands(off).values()
    )
    assert "calico-node" not in " ".join(r["name"] for r in off.resources)
