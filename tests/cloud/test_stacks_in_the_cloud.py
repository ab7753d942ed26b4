"""The program's stacks for real: the real Pulumi CLI against the local OpenStack
(tools/openstack.sh), read back with openstacksdk.

Every `up` leaves out the command:* and kubernetes:* resources and what depends on them (the
harness's CLUSTER_SIDE): remote commands run over SSH on booted VMs and Kubernetes objects need
the cluster those commands form, but the local cloud's fake Nova driver boots nothing, and
those two providers are stand-ins here that refuse to act. Everything else is real: the
network, router, security groups, ports, floating IPs, server groups, instances (and their boot
volumes), application credentials, and the tls/random resources whose values fill user-data.

Each stack has a cluster name of its own (a fresh suffix), so runs never collide, and is
destroyed at the end whatever happened; the destroy is then checked against the cloud.
One `up` of each stack is shared by the assertions that follow it, in order: the tier runs
in CI every time. The Octavia stack is tests/cloud/test_octavia.py.
"""

from __future__ import annotations

import contextlib
import copy
import uuid
from pathlib import Path

import pytest

from cloud.stack_checks import (
    CLUSTER_SIDE,
    REPLACE,
    ROOT,
    Engine,
    Stack,
    cloud_mismatches,
    cloud_objects,
    cluster_servers,
    deterministic,
    error_diagnostics,
    left_out,
    leftovers,
    of_type,
    offline_diff,
    offline_plan,
    revealed,
    steps,
    user_data_text,
)

from planning import CONNECT_FROM  # noqa: E402

pytestmark = pytest.mark.cloud

SAME = "same"
# Steps of a preview that put a new resource in place of an old one.
REPLACING = {"replace", "create-replacement", "delete-replaced"}


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.build()


@pytest.fixture(scope="module")
def os_env(openstack_cloud) -> dict[str, str]:
    """The local OpenStack's OS_* variables (the session fixture starts it if none runs)."""
    return openstack_cloud.env


@pytest.fixture(autouse=True)
def checkout_stack_files_untouched():
    """No test writes the checkout's Pulumi*.yaml (`pulumi stack init` would put its salt
    there; the harness runs it elsewhere): same files, same text, after each test."""

    def files() -> dict[str, str]:
        return {p.name: p.read_text() for p in ROOT.glob("Pulumi*.yaml")}

    before = files()
    assert "Pulumi.dev.yaml" in before and "Pulumi.prod.yaml" in before, sorted(before)
    yield
    assert files() == before, "a test wrote or created a Pulumi*.yaml in the checkout"


def export(stack: Stack) -> dict:
    """The state with secrets in the clear: the real user-data is in it."""
    return revealed(stack.run("stack", "export", "--show-secrets", check=True, config=False).json())


def key(urn: str) -> tuple[str, str]:
    """(type, name) of a URN: how a real step and an offline plan entry are paired (the offline
    plan's URNs may not carry the whole parent chain the engine puts in them)."""
    chain, _, name = urn.rpartition("::")
    return chain.rpartition("::")[2].split("$")[-1], name


def changes(preview_json: dict) -> dict[tuple[str, str], str]:
    """(type, name) -> op of every step of a preview that is not `same`."""
    return {key(urn): s["op"] for urn, s in steps(preview_json).items() if s["op"] != SAME}


def server_ids(conn, cluster: str) -> dict[str, str]:
    return {s.name: s.id for s in cluster_servers(conn, cluster)}


def check_up(
    conn, stack: Stack, cluster: str, plan_dir: Path, created: dict[str, tuple[str, Path]]
) -> dict:
    """The cloud holds exactly what the state says the program declared, and every server's
    user-data is the offline plan's, but for keys, certificates, tokens and addresses: the
    plan of the config the server was created with (`created`: name -> (server id, plan),
    updated here), as userData changes are ignored once a server exists."""
    state = export(stack)
    assert len(of_type(state, "Instance")) > 0, "the state has no instance: nothing was checked"
    assert cloud_mismatches(conn, state, cluster) == []
    for res in of_type(state, "Instance"):
        name = res["inputs"]["name"]
        if created.get(name, ("",))[0] != res["id"]:
            created[name] = (res["id"], plan_dir)
        planned = (created[name][1] / "user-data" / f"{name}.yaml").read_text()
        real = user_data_text(res["inputs"]["userData"])
        assert real.startswith("#cloud-config\n"), name
        assert deterministic(real) == deterministic(planned), (
            f"{name}: user-data differs from the plan"
        )
    return state


def check_the_checker(conn, state: dict, cluster: str) -> None:
    """cloud_mismatches against the same cloud, with a state that declares something else:
    a port's security groups, a server's user-data, a rule it never made, and one rule less
    (the cloud's then undeclared). Proves the checks above can fail."""
    tampered = copy.deepcopy(state)
    port = of_type(tampered, "Port")[0]
    port["inputs"]["securityGroupIds"] = []
    instance = of_type(tampered, "Instance")[0]
    instance["inputs"]["userData"] = "#cloud-config\n{}\n"
    rules = of_type(tampered, "SecGroupRule")
    rules[0]["inputs"]["portRangeMin"] = 1
    tampered["deployment"]["resources"].remove(rules[1])
    found = cloud_mismatches(conn, tampered, cluster)
    wanted = [
        f"port {port['inputs']['name']} security groups",
        f"server {instance['inputs']['name']} user-data",
        f"rule {rules[0]['urn'].rsplit('::', 1)[1]}",
        "undeclared rules of group",
    ]
    assert [w for w in wanted if not any(line.startswith(w) for line in found)] == [], found
    assert len(found) == len(wanted), found


def no_changes(stack: Stack) -> None:
    """Right after `up`: preview and refresh find nothing to do, and a preview after the
    refresh (the state now read back from the cloud) neither."""
    first = stack.preview(exclude=CLUSTER_SIDE, expect_no_changes=True)
    assert first.ok, first.describe()
    assert changes(first.json()) == {}
    refreshed = stack.refresh(exclude=CLUSTER_SIDE, expect_no_changes=True, check=False)
    assert refreshed.ok, refreshed.describe()
    again = stack.preview(exclude=CLUSTER_SIDE, expect_no_changes=True)
    assert again.ok, again.describe()
    assert changes(again.json()) == {}


@contextlib.contextmanager
def destroyed_at_the_end(conn, stack: Stack, cluster: str):
    """Yield a dict to record what the stack had in the cloud; destroy the stack at the end
    whatever happened, then check that nothing of it is left in the cloud."""
    seen: dict[str, set[str]] = {}
    try:
        yield seen
    except BaseException:
        # Clean up, and let the test's own failure be the one reported.
        stack.destroy(check=False)
        raise
    seen.update({k: v | seen.get(k, set()) for k, v in cloud_objects(conn, cluster).items()})
    assert seen["servers"] and seen["networks"], "nothing was seen: the check would prove nothing"
    result = stack.destroy(check=False)
    assert result.ok, result.describe()
    assert leftovers(conn, cluster, seen) == {}


def test_dev_stack_up_no_change_grow_bump_resize_destroy(engine, openstack_cloud, os_env, tmp_path):
    """Pulumi.dev.yaml for real: `up` makes exactly what the program declares, the next
    preview and refresh find nothing; one more worker adds only its resources; a Kubernetes
    version bump replaces no server; `volumeSize` on the pool replaces what the offline diff
    says, and that `up` succeeds; `destroy` leaves nothing in the cloud."""
    cluster = f"cd{uuid.uuid4().hex[:6]}"
    # The dev stack plans once told where its user connects from (a documentation range).
    sets = [f"clusterName={cluster}", *CONNECT_FROM]
    stack = Stack.from_stack_file(engine, tmp_path / "stack", "dev", sets, env=os_env)
    plans = tmp_path / "plans"
    created: dict[str, tuple[str, Path]] = {}
    conn = openstack_cloud.connect()
    stack.init()
    with destroyed_at_the_end(conn, stack, cluster) as seen:
        up = stack.up(exclude=CLUSTER_SIDE, check=False)
        assert up.ok, up.describe()
        base = offline_plan(plans / "base", "dev", sets)
        check_the_checker(conn, check_up(conn, stack, cluster, base, created), cluster)
        no_changes(stack)
        before = server_ids(conn, cluster)
        assert sorted(before) == sorted(
            f"{cluster}-{n}"
            for n in ("discovery-0", "master-0", "worker-general-0", "worker-general-1")
        )

        # One more worker: the preview plans the offline plan's new resources (those the
        # exclusion keeps), all creates; `up` creates that server and touches no other.
        grown_sets = [*sets, "workerPools[0].count=3"]
        grown = offline_plan(plans / "grown", "dev", grown_sets)
        kept = {r["urn"] for r in offline_diff(base, grown).added} - left_out(grown, CLUSTER_SIDE)
        added = {key(urn) for urn in kept}
        assert ("openstack:compute/instance:Instance", f"{cluster}-worker-general-2") in added
        stack.set("workerPools[0].count=3")
        preview = stack.preview(exclude=CLUSTER_SIDE)
        assert preview.ok and not error_diagnostics(preview.json()), preview.describe()
        assert changes(preview.json()) == dict.fromkeys(added, "create")
        stack.up(exclude=CLUSTER_SIDE)
        after = server_ids(conn, cluster)
        assert after == {
            **before,
            f"{cluster}-worker-general-2": after[f"{cluster}-worker-general-2"],
        }
        check_up(conn, stack, cluster, grown, created)
        seen.update(cloud_objects(conn, cluster))

        # A Kubernetes version bump: nothing replaced, every server the same.
        bumped_sets = [*grown_sets, "kubernetesVersion=1.33.6"]
        bumped = offline_plan(plans / "bumped", "dev", bumped_sets)
        stack.set("kubernetesVersion=1.33.6")
        preview = stack.preview(exclude=CLUSTER_SIDE)
        assert preview.ok, preview.describe()
        assert {
            u: op for u, op in changes(preview.json()).items() if op in REPLACING | {"delete"}
        } == {}
        stack.up(exclude=CLUSTER_SIDE)
        assert server_ids(conn, cluster) == after
        check_up(conn, stack, cluster, bumped, created)

        # volumeSize on the pool: the replacement the offline diff announces, and it boots.
        sized_sets = [*bumped_sets, "workerPools[0].volumeSize=20"]
        sized = offline_plan(plans / "sized", "dev", sized_sets)
        diff = offline_diff(bumped, sized)
        announced = {key(d.urn) for d in diff.changed if d.effect == REPLACE}
        assert announced and not diff.added and not diff.removed, (announced, diff.added)
        stack.set("workerPools[0].volumeSize=20")
        preview = stack.preview(exclude=CLUSTER_SIDE)
        assert preview.ok, preview.describe()
        replaced = {u for u, op in changes(preview.json()).items() if op in REPLACING}
        assert replaced == announced
        stack.up(exclude=CLUSTER_SIDE)
        state = check_up(conn, stack, cluster, sized, created)
        pool = [r for r in of_type(state, "Instance") if "-worker-general-" in r["inputs"]["name"]]
        assert len(pool) == 3 and all(r["inputs"]["blockDevices"] for r in pool)
        now = server_ids(conn, cluster)
        for name, sid in after.items():
            assert (now[name] == sid) == ("-worker-general-" not in name), name
        seen.update({k: v | seen.get(k, set()) for k, v in cloud_objects(conn, cluster).items()})
        assert len(seen["volumes"]) == 3


def test_ha_vip_stack_with_gateway_pool_up_no_change_destroy(
    engine, openstack_cloud, os_env, tmp_path
):
    """Pulumi.prod.yaml for real, with one general worker instead of three (time): three
    masters behind a keepalived VIP (allowed address pairs on their ports, a floating IP on
    the VIP), three discovery members, a gateway pool with floating IPs, 40 GB boot volumes,
    soft-anti-affinity server groups, and the etcd backup's application credential with its
    Swift access rules. `up` makes exactly that, preview and refresh then find nothing, and
    `destroy` leaves nothing in the cloud."""
    cluster = f"ch{uuid.uuid4().hex[:6]}"
    sets = [f"clusterName={cluster}", "workerPools[0].count=1"]
    stack = Stack.from_stack_file(engine, tmp_path / "stack", "prod", sets, env=os_env)
    conn = openstack_cloud.connect()
    stack.init()
    with destroyed_at_the_end(conn, stack, cluster) as seen:
        up = stack.up(exclude=CLUSTER_SIDE, check=False)
        assert up.ok, up.describe()
        state = check_up(conn, stack, cluster, offline_plan(tmp_path / "plan", "prod", sets), {})
        # What this stack is for, beyond "as declared": the VIP on every master's port, the
        # floating IPs, the volumes, the credential's rules.
        vip = next(r for r in of_type(state, "Port") if r["inputs"]["name"] == f"{cluster}-api-vip")
        masters = [r for r in of_type(state, "Port") if "-master-" in r["inputs"]["name"]]
        assert len(masters) == 3
        for port in masters:
            pairs = conn.network.get_port(port["id"]).allowed_address_pairs
            assert [p["ip_address"] for p in pairs] == vip["outputs"]["allFixedIps"], port[
                "inputs"
            ]["name"]
        fips = of_type(state, "FloatingIpAssociate")
        assert len(fips) == 4  # API VIP, jump host, two gateway workers
        creds = of_type(state, "ApplicationCredential")
        assert any(c["inputs"].get("accessRules") for c in creds), creds
        assert sorted(g["inputs"]["policies"] for g in of_type(state, "ServerGroup")) == [
            "soft-anti-affinity",
            "soft-anti-affinity",
        ]
        no_changes(stack)
        seen.update(cloud_objects(conn, cluster))
        assert len(seen["volumes"]) == 3 + 1 + 2  # masters and both pools boot from volumes
