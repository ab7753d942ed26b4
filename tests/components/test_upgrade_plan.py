"""A Kubernetes version bump as the engine would see it: no VM is replaced, only
the upgrade commands change, and they run in order: first master, the other masters one by
one, then workers in lanes of upgrade.maxUnavailable per pool."""

from __future__ import annotations

from planning import COMMAND

BASE = (
    "masters.count=3",
    'workerPools=[{"name":"general","count":5},{"name":"edge","count":2}]',
    "upgrade.maxUnavailable=2",
)
UPGRADE_SUFFIXES = ("-upgrade", "-upgrade-credential")


def test_version_bump_changes_only_upgrade_commands(plan):
    """Same resources at 1.33.5 and 1.34.1; instances keep their inputs (their user-data does
    change, and is ignored for existing nodes); every changed input belongs to an upgrade
    command or to an in-cluster add-on whose image follows the minor, and every upgrade
    command changes."""
    old = plan("dev", *BASE, "kubernetesVersion=1.33.5")
    new = plan("dev", *BASE, "kubernetesVersion=1.34.1")
    assert set(old.by_name) == set(new.by_name)
    changed = {n for n, r in old.by_name.items() if r["inputs"] != new.by_name[n]["inputs"]}
    upgrades = {
        n for n in old.by_name if n.endswith(UPGRADE_SUFFIXES) and old.by_name[n]["type"] == COMMAND
    }
    assert len(upgrades) == 3 + 1 + 7
    addons = changed - upgrades
    assert upgrades <= changed
    assert addons and all(new.named(n)["type"].startswith("kubernetes:") for n in addons), addons
    assert {"dev-addons-daemonset-openstack-cloud-controller-manager"} <= addons
    for name in old.instances:
        assert "userData" in new.named(name)["options"]["ignoreChanges"]
        assert old.user_data(name) != new.user_data(name) or name.startswith("dev-discovery")
    for name in upgrades - {"dev-master-0-upgrade-credential"}:
        inputs = new.named(name)["inputs"]
        assert "create" not in inputs and "triggers" not in inputs  # triggers would replace it
        assert inputs["update"] == "sudo bash -s  # kubernetes 1.34.1 from pkgs.k8s.io"
        assert (
            old.named(name)["inputs"]["update"]
            == "sudo bash -s  # kubernetes 1.33.5 from pkgs.k8s.io"
        )
    credential = new.named("dev-master-0-upgrade-credential")["inputs"]
    assert "export TARGET_VERSION=1.34.1\n" in credential["stdin"]


def test_upgrade_order(plan):
    """first master -> master 1 -> master 2 -> the upgrade credential -> workers; within a
    pool a worker waits for the worker maxUnavailable places before it, and no other."""
    p = plan("dev", *BASE, "kubernetesVersion=1.34.1")
    assert "dev-master-0-init" in p.waits_for("dev-master-0-upgrade")
    assert "dev-master-0-upgrade" in p.waits_for("dev-master-1-upgrade")
    assert {"dev-master-1-upgrade", "dev-master-2-join"} <= p.waits_for("dev-master-2-upgrade")
    assert "dev-master-0-init" in p.waits_for("dev-master-0-upgrade-credential")
    checked = 0
    for pool, count in (("general", 5), ("edge", 2)):
        for i in range(count):
            node = f"dev-worker-{pool}-{i}"
            waits = p.waits_for(f"{node}-upgrade")
            assert {
                "dev-master-2-upgrade",
                "dev-master-0-upgrade-credential",
                f"{node}-join",
            } <= waits
            lane = {f"dev-worker-{pool}-{j}-upgrade" for j in range(i % 2, i, 2)}
            other_lane = {f"dev-worker-{pool}-{j}-upgrade" for j in range((i + 1) % 2, count, 2)}
            later = {f"dev-worker-{pool}-{j}-upgrade" for j in range(i, count)}
            assert lane <= waits
            assert not other_lane & waits, f"{node} waits for a worker of another lane"
            assert not later & waits
            checked += 1
    assert checked == 7


def test_upgrade_commands_reach_the_right_nodes(plan):
    """Masters upgrade on themselves; a worker upgrades on itself with the three step scripts
    and the node-upgrader token made on the first master."""
    import base64
    import re

    p = plan("dev", *BASE)
    raw = p.raw(
        ["dev-worker-edge-1-upgrade", "dev-master-1-upgrade", "dev-master-0-upgrade-credential"]
    )
    master0 = p.data["outputs"]["masterAddresses"][0]
    worker = raw["dev-worker-edge-1-upgrade"]
    assert worker["connection"]["host"] == p.data["outputs"]["workerAddresses"]["edge"][1]
    assert raw["dev-master-0-upgrade-credential"]["connection"]["host"] == master0
    stdin = worker["stdin"]
    assert re.search(r"^export KUBE_TOKEN=\S+$", stdin, re.M)
    assert "export KUBE_API=https://" in stdin and ":6443\n" in stdin
    for step in ("cordon", "node", "uncordon"):
        b64 = (
            re.search(rf"^export UPGRADE_{step.upper()}_B64=(\S+)$", stdin, re.M)
            .group(1)
            .strip("'")
        )
        assert base64.b64decode(b64).decode().startswith("#!/usr/bin/env bash")
    assert "export ROLE=master\n" in raw["dev-master-1-upgrade"]["stdin"]
    assert "kubeadm upgrade" in raw["dev-master-1-upgrade"]["stdin"]
