"""Node groups in the plan: boot volume types, availability zones, server groups, and the
upgrade lanes a percentage of a pool makes."""

from __future__ import annotations

from component_args import worker_pools
from planning import INSTANCE

ZONED = (
    "masters.count=3",
    'masters.availabilityZones=["az1","az2","az3"]',
    "masters.serverGroupPolicy=anti-affinity",
    'workerPools=[{"name":"general","count":2,"availabilityZone":"az2","volumeSize":20,"volumeType":"ssd",'
    '"serverGroupPolicy":"soft-anti-affinity"},{"name":"batch","count":1}]',
)


def test_zones_volume_types_and_server_groups(plan):
    p = plan("dev", *ZONED)
    zones = {n: p.named(n)["inputs"].get("availabilityZone") for n in p.instances}
    assert zones == {
        "dev-discovery-0": None,
        "dev-master-0": "az1",
        "dev-master-1": "az2",
        "dev-master-2": "az3",
        "dev-worker-general-0": "az2",
        "dev-worker-general-1": "az2",
        "dev-worker-batch-0": None,
    }
    volume = p.named("dev-worker-general-0")["inputs"]["blockDevices"][0]
    assert (volume["volumeType"], volume["volumeSize"], volume["destinationType"]) == (
        "ssd",
        20,
        "volume",
    )
    assert p.named("dev-master-spread")["inputs"]["policies"] == "anti-affinity"
    pool_group = p.named("dev-worker-general-spread")
    assert pool_group["inputs"]["policies"] == "soft-anti-affinity"
    hint = p.named("dev-worker-general-0")["inputs"]["schedulerHints"]
    assert hint and pool_group["urn"] in p.named("dev-worker-general-0")["dependencies"]
    # A pool that asks for no group has none: a group added later would replace its VMs.
    assert "dev-worker-batch-spread" not in p.by_name
    assert "schedulerHints" not in p.named("dev-worker-batch-0")["inputs"]


def test_placement_is_kept_and_a_zone_move_replaces(plan):
    """A new server-group policy makes a new group for new nodes and moves no running node
    (schedulerHints is ignored after create); a node's zone is not ignored: moving it is a
    replacement, which the plan diff reports."""
    p = plan("dev", *ZONED)
    for name in p.instances:
        ignored = p.named(name)["options"]["ignoreChanges"]
        assert "schedulerHints" in ignored and "availabilityZone" not in ignored, name
    from tools.plandiff import REPLACE, effect_of

    options = p.named("dev-master-1")["options"]
    assert effect_of(INSTANCE, "availabilityZone", options) == REPLACE


def test_percentage_rollout_lanes(under_mocks, stack_settings):
    """20% of a pool of 10 upgrades 2 at a time: worker i follows worker i - 2 (the pool
    alone, in process, its lanes from the settings as Cluster translates them)."""
    settings = stack_settings(workerPools=[{"name": "general", "count": 10}])
    assert settings.upgrade.max_unavailable == "20%"
    regs = under_mocks(lambda: worker_pools(settings)).registrations
    by_name = {r.name: r for r in regs}
    names = {r.urn: r.name for r in regs}
    deps = {
        n: {names[u] for u in by_name[f"t-worker-general-{n}-upgrade"].dependencies if u in names}
        for n in range(10)
    }
    for n in range(10):
        previous = {
            d for d in deps[n] if d.startswith("t-worker-general-") and d.endswith("-upgrade")
        }
        assert previous == ({f"t-worker-general-{n - 2}-upgrade"} if n >= 2 else set()), n
    assert len([r for r in regs if r.type == INSTANCE]) == 10


def test_settings_and_kubeadm_agree_on_labels(plan):
    """A label settings accepts (the kubelet may set beta.kubernetes.io/os) reaches the join
    config instead of failing deep in the program: one label rule serves both."""
    p = plan(
        "dev",
        'workerPools=[{"name":"general","count":1,"labels":{"beta.kubernetes.io/os":"linux","topology.kubernetes.io/zone":"az1"}}]',
    )
    stdin = p.raw(["dev-worker-general-0-join"])["dev-worker-general-0-join"]["stdin"]
    import base64
    import re

    config = base64.b64decode(
        re.search(r"KUBEADM_JOIN_CONFIG_B64=(\S+)", stdin).group(1).strip("'")
    ).decode()
    assert "beta.kubernetes.io/os=linux" in config and "topology.kubernetes.io/zone=az1" in config
