"""The benchmark's arithmetic (tools/bench.py), on graphs small enough to check by hand, and
its duration table covering every resource the program registers. No timing here: the
numbers live in the README, measured by `python -m tools.bench`."""
from __future__ import annotations

import pytest

from tools import bench


def node(name, kind, deps=(), parent="root", type_="x"):
    return {"urn": f"urn:{name}", "name": name, "kind": kind, "type": type_, "parent": parent,
            "dependencies": [f"urn:{d}" for d in deps]}


def test_critical_path_is_the_longest_chain():
    """vm(60) -> ready(300) -> init(120) beats the parallel branch vm(60) -> worker ready(270)."""
    graph = [
        node("net", "api"), node("m0", "vm-boot", ["net"]), node("w0", "vm-boot", ["net"]),
        node("m0-ready", "ready-master", ["m0"]), node("w0-ready", "ready-worker", ["w0"]),
        node("m0-init", "init", ["m0-ready"]), node("w0-join", "worker-join", ["w0-ready", "m0-init"]),
    ]
    done = bench.finish_times(graph)
    assert done["m0-init"] == 5 + 60 + 300 + 120
    assert done["w0-join"] == done["m0-init"] + 45
    assert max(done.values()) == 530


def test_waiting_on_a_component_waits_for_its_children():
    graph = [
        node("pool", "component", type_="openstack-k8s:index:WorkerPool"),
        node("w0", "vm-boot", parent="urn:pool"), node("w1", "vm-boot-volume", parent="urn:pool"),
        node("after", "api", ["pool"]),
    ]
    assert bench.finish_times(graph)["after"] == 80 + 5


def test_seed_ordering_serialises_configuration():
    """Workers boot after the first master's init; each node's bootstrap waits for the
    previous node's last step."""
    I = "openstack:compute/instance:Instance"
    graph = [
        node("c-master-0", "vm-boot", type_=I), node("c-worker-a-0", "vm-boot", type_=I),
        node("c-worker-a-1", "vm-boot", type_=I),
        node("c-master-0-ready", "ready-master", ["c-master-0"]),
        node("c-master-0-init", "init", ["c-master-0-ready"]),
        *[node(f"c-worker-a-{i}-ready", "ready-worker", [f"c-worker-a-{i}"]) for i in (0, 1)],
        *[node(f"c-worker-a-{i}-join", "worker-join", [f"c-worker-a-{i}-ready", "c-master-0-init"]) for i in (0, 1)],
    ]
    extra, serial = bench.seed_ordering(graph)
    assert extra == {"c-worker-a-0": {"c-master-0-init"}, "c-worker-a-1": {"c-master-0-init"}}
    assert serial == ["c-master-0-ready", "c-master-0-init", "c-worker-a-0-ready", "c-worker-a-0-join",
                      "c-worker-a-1-ready", "c-worker-a-1-join"]
    seed = bench.finish_times(graph, extra, serial)
    ours = bench.finish_times(graph)
    assert max(seed.values()) == 60 + 300 + 120 + 60 + 2 * (270 + 45)
    assert max(ours.values()) == 60 + 300 + 120 + 45


def test_every_resource_of_a_real_plan_has_a_duration(plan):
    p = plan("prod", "controlPlane.endpoint=octavia")
    kinds = {bench.kind_of(r["type"], r["name"], {k: True for k in r["inputs"]}) for r in p.resources}
    assert {"octavia-lb", "vm-boot-volume", "ready-master", "init", "cp-join", "worker-join",
            "engine-only", "k8s-workload"} <= kinds
    assert kinds <= set(bench.DURATIONS) | {"component"}


def test_unknown_resources_are_refused():
    with pytest.raises(ValueError, match="no duration"):
        bench.kind_of("aws:s3/bucket:Bucket", "b", {})
