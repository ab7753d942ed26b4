"""The benchmark's arithmetic (tools/bench.py), on graphs small enough to check by hand, and
its duration table covering every resource the program registers. No timing here: the
numbers live in the README, measured by `python -m tools.bench`."""

from __future__ import annotations

import sys
from pathlib import Path

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


# --real: the plumbing, with a fake stack and a fake clock (the real runs are measured by
# `python -m tools.bench --real`, their numbers are in the README).


class FakeResult:
    def __init__(self, doc=None, ok=True):
        self.doc, self.ok = doc, ok

    def json(self):
        return self.doc

    def describe(self):
        return "`pulumi ...` exited 255"


class FakeStack:
    """Records what the bench asks of a harness Stack; `fail` names a step that goes wrong."""

    def __init__(self, name, sets, fail=None):
        self.name, self.sets, self.fail, self.calls = name, sets, fail, []

    def init(self):
        self.calls.append("init")

    def preview(self, **kw):
        self.calls.append(("preview", kw))
        if self.fail == "preview":
            return FakeResult(ok=False)
        ops = ["create"] * 5 + ["same"] if not kw else ["same"] * 4
        return FakeResult({"steps": [{"op": op} for op in ops]})

    def up(self, **kw):
        self.calls.append(("up", kw))
        if self.fail == "up":
            raise RuntimeError("up failed")
        return FakeResult()

    def export(self):
        self.calls.append("export")
        types = ["pulumi:pulumi:Stack", "tls:index/privateKey:PrivateKey"] + 2 * [
            "openstack:networking/port:Port"
        ]
        return {"deployment": {"resources": [{"type": t} for t in types]}}

    def destroy(self):
        self.calls.append("destroy")
        return FakeResult()


@pytest.fixture
def fake_real(monkeypatch):
    """bench.real_scenario's collaborators faked: the offline evaluation (records its sets),
    the stacks it opens, a clock that advances 1, 2, 3, ... seconds per step and a load
    average that rises by one per reading."""
    evaluated, stacks = [], []

    def evaluate(sets):
        evaluated.append(sets)
        return {"resources": [{}] * 7, "seconds": 1.5}

    monkeypatch.setattr(bench, "evaluate", evaluate)

    def run(fail=None):
        ticks = iter([0, 1, 10, 12, 20, 23, 30, 34])
        loads = iter([3.0, 9.0, 4.0, 5.0])

        def open_stack(name, sets):
            stacks.append(FakeStack(name, sets, fail))
            return stacks[-1]

        r = bench.real_scenario(
            1, 3, open_stack, "EXCLUDE", clock=lambda: next(ticks), load=lambda: next(loads)
        )
        return r

    return run, evaluated, stacks


def test_real_runs_preview_up_no_change_preview_and_destroy_in_order(fake_real):
    run, evaluated, stacks = fake_real
    r = run()
    (stack,) = stacks
    assert stack.calls == [
        "init",
        ("preview", {}),
        ("up", {"exclude": "EXCLUDE"}),
        "export",
        ("preview", {"exclude": "EXCLUDE", "expect_no_changes": True}),
        "destroy",
    ]
    assert r == {
        "masters": 1,
        "workers": 3,
        "resources": 7,
        "evaluation": 1.5,
        "planned": 5,
        "created": 4,
        "openstack": 2,
        "load": 9.0,
        "preview": 1,
        "up": 2,
        "again": 3,
        "destroy": 4,
    }


def test_real_stack_is_the_offline_stack_with_its_own_cluster_name(fake_real):
    """The offline evaluation and the real stack get the same sets, as the harness reads
    them (KEY=JSON on dev's stack file)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))
    from real import stack_file_config

    run, evaluated, stacks = fake_real
    run()
    (sets,), (stack,) = evaluated, stacks
    assert stack.name == "bench1m3w"
    assert sets == [*bench.stack_sets(1, 3), ("clusterName", "bench1m3w")]
    config = stack_file_config("dev", stack.sets)
    assert config["openstack-k8s:clusterName"] == "bench1m3w"
    assert config["openstack-k8s:masters"] == {"count": 1}
    assert config["openstack-k8s:workerPools"] == [{"name": "general", "count": 3}]
    assert config["openstack-k8s:network"] == {"cidr": "10.10.0.0/20"}


@pytest.mark.parametrize("step", ["preview", "up"])
def test_real_destroys_whatever_fails(fake_real, step):
    run, _, stacks = fake_real
    with pytest.raises((SystemExit, RuntimeError), match="preview failed|up failed"):
        run(fail=step)
    assert stacks[0].calls[-1] == "destroy"


def test_real_table_has_a_row_per_size():
    row = {
        **dict(masters=1, workers=30, resources=482, evaluation=2.6, planned=482),
        **dict(created=300, openstack=120, load=7.4, preview=11.0, up=95.25, again=9.0),
        "destroy": 40.0,
    }
    lines = bench.real_table([row]).splitlines()
    assert len(lines) == 3
    assert lines[2] == (
        "| 1 | 30 | 482 | 2.6 s | 11.0 s | 300 (120) | 95.2 s | 9.0 s | 40.0 s | 7 |"
    )


def test_real_mode_sizes_and_readme_section(monkeypatch, tmp_path):
    """--real defaults to 1 master and 3, 30 and 100 workers, and --readme fills the
    bench-real section, leaving the model's section alone."""
    asked = []
    monkeypatch.setattr(bench, "run_real", lambda sizes: asked.append(sizes) or "TABLE")
    readme = tmp_path / "README.md"
    text = "a\n<!-- bench:start -->\nmodel\n<!-- bench:end -->\n<!-- bench-real:start -->\nold\n<!-- bench-real:end -->\nb\n"
    readme.write_text(text)
    assert bench.main(["--real", "--readme", str(readme)]) == 0
    assert asked == [[(1, 3), (1, 30), (1, 100)]]
    assert readme.read_text() == text.replace("old", "TABLE")
