"""Replacing a node's VM, read from offline plans: what the engine would replace with it, in
which order, and what never connects to a node that has nothing to do.

The engine's rule (pkg/resource/deploy, dependent replacements): when a resource is replaced
delete-before-replace, every resource with a *property* dependency on it whose provider says
"replace" for that property goes first, deleted in reverse dependency order, and is created
again after it. For pulumi-command that property is `triggers`. The tests replay that rule on
the plan: the mock gives every instance a stable id, and a command bound to a VM carries that
id in its triggers.
"""

from __future__ import annotations

import pytest

from component_args import ComponentPlan, control_plane, waits_for, worker_pools
from components.cluster import network_args
from components.network import PrivateNetwork
from planning import COMMAND, INSTANCE
from tools.mockengine import _id


def bound_to(p, instance: str) -> set[str]:
    """Names of the resources replaced along with `instance` (their triggers hold its id)."""
    vm_id = _id(INSTANCE, p.named(instance)["name"])
    return {r["name"] for r in p.resources if vm_id in (r["inputs"].get("triggers") or [])}


def test_worker_replacement_drains_then_rejoins(plan):
    """A worker's VM is replaced delete-before-replace (the port stays, Nova refuses a port
    still bound); its ready gate, token, join and drain are replaced with it. The drain of the
    old node runs (its delete) before the old VM goes: it waits for the VM, so it is deleted
    first. The new VM then gets a fresh token and joins."""
    p = plan("dev")
    vm = "dev-worker-general-0"
    assert p.named(vm)["options"].get("deleteBeforeReplace") is True
    assert bound_to(p, vm) == {
        f"{vm}-{c}" for c in ("sshd", "ready", "step-kit", "token", "join", "drain")
    }
    drain = f"{vm}-drain"
    # Deleted in reverse dependency order: the drain waits for the VM (through the join and
    # the ready gate), hence is deleted, and drains, before the VM.
    assert vm in p.waits_for(drain)
    # Created again in dependency order: ready on the new VM, then token, then join.
    assert {vm, f"{vm}-ready", f"{vm}-token"} <= p.waits_for(f"{vm}-join")
    # The other worker is untouched.
    assert not bound_to(p, vm) & {r["name"] for r in p.resources if "general-1" in r["name"]}


def test_master_replacement_reinstalls_pki_and_rejoins(plan):
    """A joining master's VM takes its PKI again, a fresh token and its control-plane join;
    the first master's init is never bound (a second `kubeadm init` would found a new
    cluster: replacing the first master is a restore, docs/lifecycle.md)."""
    p = plan("dev", "masters.count=3")
    assert "dev-master-1-etcd-backup" in p.by_name, "the dev stack backs etcd up"
    assert bound_to(p, "dev-master-1") == {
        f"dev-master-1-{c}"
        for c in (
            "sshd",
            "ready",
            "step-kit",
            "kubeadm-files",
            "etcd-backup",
            "token",
            "join",
            "drain",
        )
    }
    assert bound_to(p, "dev-master-0") == {
        f"dev-master-0-{c}" for c in ("sshd", "ready", "step-kit", "kubeadm-files", "etcd-backup")
    }
    assert all(p.named(n)["options"].get("deleteBeforeReplace") for n in p.instances)


def test_backup_bundle_follows_a_replaced_vm(plan):
    p = plan("dev")
    assert bound_to(p, "dev-discovery-0") == {
        "dev-discovery-0-ready",
        "dev-discovery-0-step-kit",
        "dev-discovery-0-etcd-backup",
    }


def _first_worker(under_mocks, stack_settings, **overrides) -> dict:
    """The first worker's instance, its pool planned alone in process."""
    settings = stack_settings(**overrides)
    regs = under_mocks(lambda: worker_pools(settings)).registrations
    return {r.name: r for r in regs}


VOLUMES = {"workerPools": [{"name": "general", "count": 2, "volumeSize": 20}]}


@pytest.mark.parametrize("volumes", [False, True], ids=["image", "volume"])
def test_ignored_paths_exist_on_both_sides_of_a_volume_change(under_mocks, stack_settings, volumes):
    """Every ignoreChanges path of an instance exists in its inputs with and without a boot
    volume: a node gaining or losing volumeSize is then a plain replacement, never an engine
    error about a path missing on one side (or an ignored image id copied into a server that
    boots from a volume)."""
    vm = "t-worker-general-0"
    with_image = _first_worker(under_mocks, stack_settings)[vm]
    with_volume = _first_worker(under_mocks, stack_settings, **VOLUMES)[vm]
    assert "blockDevices" in with_volume.inputs and "blockDevices" not in with_image.inputs
    ignored = (with_volume if volumes else with_image).options["ignoreChanges"]
    assert ignored, "the instance ignores nothing: the test would prove nothing"
    for path in ignored:
        # Present on both sides, or absent on both (a node in no server group has no hints).
        head = path.split("[")[0].split(".")[0]
        assert (head in with_image.inputs) == (head in with_volume.inputs), path


def test_image_by_id_pinned_per_node(under_mocks, stack_settings):
    """Servers boot by image id (a name can match several images, or none when the stack
    gives a UUID); the id is recorded once per node, so a re-uploaded image replaces
    nothing, and new nodes get the current one."""
    uuid = "0f9a2c4e-1b3d-4e5f-8a7b-9c0d1e2f3a4b"
    p = _first_worker(under_mocks, stack_settings, image=uuid)
    vm = p["t-worker-general-0"]
    assert "imageName" not in vm.inputs
    assert vm.inputs["imageId"] == uuid
    pin = p["t-worker-general-0-image"]
    assert pin.inputs["keepers"] == {"imageId": uuid}
    assert pin.options["ignoreChanges"] == ["keepers"]
    volume = _first_worker(under_mocks, stack_settings, image=uuid, **VOLUMES)
    assert volume["t-worker-general-0"].inputs["blockDevices"][0]["uuid"] == uuid
    assert "imageId" not in volume["t-worker-general-0"].inputs


def test_flavor_change_resizes_no_running_node(plan):
    """Nova resizes in place with a reboot: all masters at once lose etcd quorum. A new flavor
    reaches new nodes; running ones move one at a time by replacement."""
    p = plan("dev", "masters.count=3")
    for name in p.instances:
        assert "flavorName" in p.named(name)["options"]["ignoreChanges"], name


def test_run_once_commands_never_update(plan):
    """init, join, token, ready and kubeadm-files ignore a new script text or jump host: a
    change there is not even a no-op update, which would connect to every node (and fail
    the whole `pulumi up` on one that is gone)."""
    p = plan("dev", "masters.count=3")
    run_once = [
        r
        for r in p.of_type(COMMAND)
        if r["name"].rsplit("-", 1)[-1] in ("init", "join", "token", "ready", "sshd")
        or r["name"].endswith("kubeadm-files")
    ]
    assert len(run_once) >= 12
    for r in run_once:
        assert set(r["options"].get("ignoreChanges", [])) == {"stdin", "connection"}, r["name"]
        assert r["inputs"]["update"] == "true", r["name"]


def test_no_command_sends_its_previous_output(plan):
    """pulumi-command puts the previous stdout (a token) into the environment of every update
    unless told not to."""
    p = plan("dev", "masters.count=3")
    commands = p.of_type(COMMAND)
    assert commands
    for r in commands:
        assert r["inputs"].get("addPreviousOutputInEnv") is False, r["name"]


def test_join_tokens_minted_right_before_their_join(under_mocks, stack_settings):
    """Seven masters joining one after another can take longer than a token lives: each
    master's token waits for the previous master's join. (The masters and the worker pool
    alone, in process.)"""
    settings = stack_settings(
        clusterName="dev",
        masters={"count": 5},
        workerPools=[{"name": "general", "count": 2}],
    )

    def build():
        network = PrivateNetwork("dev-network", network_args(settings))
        worker_pools(settings, network=network, masters=control_plane(settings, network=network))

    p = ComponentPlan(under_mocks(build, subnet="10.10.0.0/22"))
    for i in range(2, 5):
        assert f"dev-master-{i - 1}-join" in p.waits_for(f"dev-master-{i}-token")
    # Workers still join in parallel, right after init.
    worker_token = p.waits_for("dev-worker-general-1-token")
    assert "dev-master-0-init" in worker_token
    assert not any(n.endswith("-join") for n in worker_token)


def test_upgrade_token_follows_the_worker_upgrade_revision(plan):
    """A raised revision of the workers' upgrade step runs every worker's upgrade again: their
    token must be new too, so the revision is part of what makes the token."""
    from components import roles

    p = plan("dev")
    env = p.raw(["dev-master-0-upgrade-credential"])["dev-master-0-upgrade-credential"]["stdin"]
    assert f"export WORKER_UPGRADE_REVISION={roles.UPGRADE_WORKER.revision}\n" in env


def test_upgrade_chains_stay_short_whatever_the_pool_size():
    """Lanes: maxUnavailable, or more for pools so big that a lane would be longer than
    MAX_LANE_LENGTH (each link deepens every dependency walk of the SDK)."""
    from rules.rollout import MAX_LANE_LENGTH, lanes as upgrade_lanes

    assert upgrade_lanes(1, 10) == 1
    assert upgrade_lanes(3, 10) == 3
    for count in (1, 49, 50, 51, 300, 1000, 5000):
        lanes = upgrade_lanes(1, count)
        assert -(-count // lanes) <= MAX_LANE_LENGTH, count


def test_upgrade_chain_of_a_big_pool(under_mocks, stack_settings):
    """A pool of 120 (the pool alone, in process: the chain is the pool's own) upgrades in
    lanes whose chains stay short."""
    settings = stack_settings(workerPools=[{"name": "general", "count": 120}])
    regs = under_mocks(lambda: worker_pools(settings)).registrations
    longest = 0
    for i in range(120):
        chain = [
            n
            for n in waits_for(regs, f"t-worker-general-{i}-upgrade")
            if n.endswith("-upgrade") and "worker" in n
        ]
        longest = max(longest, len(chain))
    assert 0 < longest < 50
    assert len([r for r in regs if r.type == INSTANCE and "worker" in r.name]) == 120


def test_private_nodes_are_waited_for_from_the_jump_host(plan):
    """Before a private node's ready gate dials through the jump host, the jump host itself
    waits, bounded, for that node's sshd banner (the provider retries a proxied dial on the
    connection that already failed). The jump host's own gate needs no such wait."""
    p = plan("dev", "masters.count=3", "discovery.count=3")
    private = [n for n in p.instances if n != "dev-discovery-0"]
    raw = p.raw([f"{n}-sshd" for n in private])
    for node in private:
        sshd = p.named(f"{node}-sshd")
        assert f"{node}-sshd" in p.waits_for(f"{node}-ready"), node
        assert node in p.waits_for(f"{node}-sshd")
        stdin, connection = raw[f"{node}-sshd"]["stdin"], raw[f"{node}-sshd"]["connection"]
        assert "discovery-wait-sshd" in stdin and "export TARGET_HOST=10.10." in stdin
        assert "proxy" not in connection, "the wait runs on the jump host itself"
        assert sshd["options"]["ignoreChanges"] == ["connection", "stdin"] or set(
            sshd["options"]["ignoreChanges"]
        ) == {"stdin", "connection"}
    assert "dev-discovery-0-sshd" not in p.by_name
