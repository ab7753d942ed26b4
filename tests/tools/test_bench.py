"""The benchmark's arithmetic (tools/bench.py), on graphs small enough to check by hand, and
its duration table covering every resource the program registers. No timing here: the
numbers live in the README, measured by `python -m tools.bench`."""

from __future__ import annotations

import pytest

from tools import bench


GROUP_TYPES = {
    "master": "openstack-k8s:index:ControlPlane",
    "worker": "openstack-k8s:index:WorkerPool",
}


def node(name, kind, deps=(), parent="root", type_="x", group=None):
    """A resource as the bench reads it; `group` puts it under that node group's component,
    as its URN then says (a URN names the types of all parents)."""
    parents = f"openstack-k8s:index:Cluster${GROUP_TYPES[group]}$" if group else ""
    return {
        "urn": f"urn:{parents}{type_}::{name}",
        "name": name,
        "kind": kind,
        "type": type_,
        "parent": parent,
        "deps": deps,
    }


def graph(*nodes):
    """The nodes with their dependencies as URNs, as in a plan."""
    urns = {n["name"]: n["urn"] for n in nodes}
    return [{**n, "dependencies": [urns[d] for d in n["deps"]]} for n in nodes]


def test_critical_path_is_the_longest_chain():
    """vm(60) -> ready(300) -> init(120) beats the parallel branch vm(60) -> worker ready(270)."""
    done = bench.finish_times(
        graph(
            node("net", "api"),
            node("m0", "vm-boot", ["net"]),
            node("w0", "vm-boot", ["net"]),
            node("m0-ready", "ready-master", ["m0"]),
            node("w0-ready", "ready-worker", ["w0"]),
            node("m0-init", "init", ["m0-ready"]),
            node("w0-join", "worker-join", ["w0-ready", "m0-init"]),
        )
    )
    assert done["m0-init"] == 5 + 60 + 300 + 120
    assert done["w0-join"] == done["m0-init"] + 45
    assert max(done.values()) == 530


def test_waiting_on_a_component_waits_for_its_children():
    pool = node("pool", "component", type_="openstack-k8s:index:WorkerPool")
    assert (
        bench.finish_times(
            graph(
                pool,
                node("w0", "vm-boot", parent=pool["urn"]),
                node("w1", "vm-boot-volume", parent=pool["urn"]),
                node("after", "api", ["pool"]),
            )
        )["after"]
        == 80 + 5
    )


def test_sequential_ordering_serialises_configuration():
    """Workers boot after the first master's init; each node's bootstrap waits for the
    previous node's last step. Node groups come from the components in the URNs: the worker
    listed first is still ordered after the master."""
    vm, C = "openstack:compute/instance:Instance", "command:remote:Command"
    nodes = graph(
        node("c-worker-a-0", "vm-boot", type_=vm, group="worker"),
        node("c-master-0", "vm-boot", type_=vm, group="master"),
        node("c-worker-a-1", "vm-boot", type_=vm, group="worker"),
        node("c-master-0-ready", "ready-master", ["c-master-0"], type_=C, group="master"),
        node("c-master-0-init", "init", ["c-master-0-ready"], type_=C, group="master"),
        *[
            node(
                f"c-worker-a-{i}-ready",
                "ready-worker",
                [f"c-worker-a-{i}"],
                type_=C,
                group="worker",
            )
            for i in (0, 1)
        ],
        *[
            node(
                f"c-worker-a-{i}-join",
                "worker-join",
                [f"c-worker-a-{i}-ready", "c-master-0-init"],
                type_=C,
                group="worker",
            )
            for i in (0, 1)
        ],
    )
    extra, serial = bench.sequential_ordering(nodes)
    assert extra == {"c-worker-a-0": {"c-master-0-init"}, "c-worker-a-1": {"c-master-0-init"}}
    assert serial == [
        "c-master-0-ready",
        "c-master-0-init",
        "c-worker-a-0-ready",
        "c-worker-a-0-join",
        "c-worker-a-1-ready",
        "c-worker-a-1-join",
    ]
    sequential = bench.finish_times(nodes, extra, serial)
    ours = bench.finish_times(nodes)
    assert max(sequential.values()) == 60 + 300 + 120 + 60 + 2 * (270 + 45)
    assert max(ours.values()) == 60 + 300 + 120 + 45


def test_every_resource_of_a_real_plan_has_a_duration(plan):
    p = plan("prod", "controlPlane.endpoint=octavia")
    kinds = {bench.kind_of(r) for r in p.resources}
    assert {
        "octavia-lb",
        "vm-boot-volume",
        "ready-master",
        "init",
        "cp-join",
        "worker-join",
        "engine-only",
        "k8s-workload",
    } <= kinds
    assert kinds <= set(bench.DURATIONS) | {"component"}


def test_unknown_resources_are_refused():
    with pytest.raises(ValueError, match="no duration"):
        bench.kind_of({"type": "aws:s3/bucket:Bucket", "name": "b", "urn": "urn:b", "inputs": {}})


def test_commands_are_told_apart_by_role_and_group():
    """A join is a control-plane join under the ControlPlane, a worker join under a pool,
    whatever the names say; a command of no known role is refused."""
    C = "command:remote:Command"
    join = {"create": True}
    assert (
        bench.kind_of(node("x-join", "", type_=C, group="master") | {"inputs": join}) == "cp-join"
    )
    assert (
        bench.kind_of(node("x-join", "", type_=C, group="worker") | {"inputs": join})
        == "worker-join"
    )
    assert (
        bench.kind_of(node("x-ready", "", type_=C, group="worker") | {"inputs": join})
        == "ready-worker"
    )
    assert (
        bench.kind_of(node("x-drain", "", type_=C, group="worker") | {"inputs": {}})
        == "engine-only"
    )
    with pytest.raises(ValueError, match="no duration for command x-frobnicate"):
        bench.kind_of(node("x-frobnicate", "", type_=C, group="worker") | {"inputs": join})


def test_a_key_rotation_has_durations(plan):
    """The rotation's steps are commands of their own roles, with durations of their own."""
    p = plan("dev", "masters.count=3", "apiServer.encryption.keyGeneration=2")
    kinds = {r["name"]: bench.kind_of(r) for r in p.resources}
    assert kinds["dev-master-1-encryption-promote-2"] == "encryption-step"
    assert kinds["dev-master-encryption-rewrite-2"] == "secrets-rewrite"
