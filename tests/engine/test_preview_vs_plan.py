"""A real `pulumi preview --json` plans exactly what the offline plan (`python -m tools.plan`, the
mock engine) says: no error diagnostics, the same resources by URN, the same parents and the same
dependencies. A disagreement is a bug in the mock recorder or in the program; the test names
each one. Twice: against the local OpenStack (cloud tier), and in the engine tier against a
read-only stub of the three APIs the program's data sources read (openstack_stub.py), so the
comparison runs on every engine run without a cloud.

The real preview has what the offline plan leaves out by design: the stack resource itself and
the default providers (`pulumi:providers:<pkg>::default_<version>`, not steps of a preview).
Nothing is excluded: a preview creates nothing, so the stand-in providers only check and diff."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from openstack_stub import OpenStackStub
from planning import with_access
from real import CLUSTER_SIDE, ROOT, Stack, dependents_closure, error_diagnostics, steps

# name -> (stack file, overrides): the shipped stacks and a 3-master Octavia stack with two pools
CASES = {
    "dev": ("dev", ()),
    "prod": ("prod", ()),
    "prod-octavia": ("prod", ("masters.count=3", "controlPlane.endpoint=octavia")),
}


def offline_plan(tmp_path, stack: str, sets: tuple[str, ...]) -> dict:
    out = tmp_path / "plan"
    args = [sys.executable, "-m", "tools.plan", "--stack", stack, "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    return json.loads((out / "plan.json").read_text())


def is_plan_resource(step: dict) -> bool:
    """What the offline plan records: everything the program registers, not the stack itself."""
    return step["newState"]["type"] != "pulumi:pulumi:Stack"


def disagreements(real: dict[str, dict], plan: dict[str, dict]) -> list[str]:
    """Every difference of resources, parents and dependencies, one line each."""
    out = [f"only in the real preview: {urn}" for urn in sorted(set(real) - set(plan))]
    out += [f"only in the offline plan: {urn}" for urn in sorted(set(plan) - set(real))]
    for urn in sorted(set(real) & set(plan)):
        state, mock = real[urn]["newState"], plan[urn]
        if state.get("parent") != mock.get("parent"):
            out.append(f"{urn}: parent {state.get('parent')} (real) != {mock.get('parent')} (plan)")
        deps, mock_deps = (
            sorted(state.get("dependencies") or []),
            sorted(mock.get("dependencies") or []),
        )
        if deps != mock_deps:
            out.append(
                f"{urn}: dependencies only real {sorted(set(deps) - set(mock_deps))}, "
                f"only plan {sorted(set(mock_deps) - set(deps))}"
            )
    return out


def compare(engine, tmp_path, case: str, env: dict[str, str]) -> None:
    stack_file, sets = CASES[case]
    sets = with_access(stack_file, sets)  # dev plans once it says where you connect from
    stack = Stack.from_stack_file(engine, tmp_path / "real", stack_file, sets, env=env)
    stack.init()
    res = stack.preview()
    doc = res.json()
    assert error_diagnostics(doc) == [], res.describe()
    assert res.ok, res.describe()
    real = {urn: s for urn, s in steps(doc).items() if is_plan_resource(s)}
    assert {s["op"] for s in real.values()} == {"create"}, res.describe()

    plan = {r["urn"]: r for r in offline_plan(tmp_path, stack_file, sets)["resources"]}
    assert len(plan) > 100  # the whole stack, not a stub
    problems = disagreements(real, plan)
    assert problems == [], f"{len(problems)} disagreements:\n" + "\n".join(problems)


@pytest.mark.engine
@pytest.mark.parametrize("case", list(CASES))
def test_a_real_preview_against_the_api_stub_plans_what_the_offline_plan_says(
    engine, tmp_path, case
):
    with OpenStackStub() as stub:
        compare(engine, tmp_path, case, stub.env)
    # The preview read the external network and the image by the stack file's names; nothing
    # else reached the cloud (a 404 would have failed the preview anyway).
    assert any(r.startswith("GET /network/v2.0/networks?name=public&") for r in stub.requests), (
        stub.requests
    )
    assert any(
        r.startswith("GET /image/v2/images?name=ubuntu-24.04-server-cloudimg-amd64&")
        for r in stub.requests
    )


@pytest.mark.engine
@pytest.mark.cloud
@pytest.mark.parametrize("case", list(CASES))
def test_a_real_preview_against_the_local_openstack_plans_what_the_offline_plan_says(
    engine, openstack_env, tmp_path, case
):
    compare(engine, tmp_path, case, openstack_env)


def test_disagreements_name_each_difference():
    """The comparison itself bites: a missing resource, an extra one, a parent, a dependency."""
    a, b, c = (f"urn:pulumi:dev::openstack-k8s::t::{n}" for n in "abc")
    real = {
        a: {"newState": {"parent": "S", "dependencies": [b]}},
        b: {"newState": {"parent": "S"}},
        c: {"newState": {"parent": "S"}},
    }
    plan = {a: {"parent": "S", "dependencies": []}, b: {"parent": "X", "dependencies": []}}
    assert disagreements(real, plan) == [
        f"only in the real preview: {c}",
        f"{a}: dependencies only real [{b!r}], only plan []",
        f"{b}: parent S (real) != X (plan)",
    ]
    same = {
        urn: {"parent": "S", "dependencies": s["newState"].get("dependencies", [])}
        for urn, s in real.items()
    }
    assert disagreements(real, same) == []


@pytest.mark.engine
def test_cluster_side_excludes_command_and_kubernetes_resources_and_their_dependents(
    engine, tmp_path
):
    """The harness's CLUSTER_SIDE, as the cloud tests use it for `up`: the preview plans every
    resource but the command:* and kubernetes:* ones and what depends on them."""
    with OpenStackStub() as stub:
        stack = Stack.from_stack_file(engine, tmp_path, "dev", with_access("dev"), env=stub.env)
        stack.init()
        full = stack.preview()
        cut = stack.preview(exclude=CLUSTER_SIDE)
    assert full.ok and cut.ok, full.describe() + cut.describe()
    states = {urn: s["newState"] for urn, s in steps(full.json()).items()}
    roots = {urn for urn in states if CLUSTER_SIDE.matches(urn)}
    assert len(roots) > 90  # dev: 30 commands, 70-odd Kubernetes objects
    planned = {urn for urn, s in steps(cut.json()).items() if s["op"] == "create"}
    assert planned == set(states) - dependents_closure(states, roots)
    kept_types = {states[urn]["type"].split(":")[0] for urn in planned}
    assert kept_types == {"pulumi", "openstack-k8s", "openstack", "tls", "random"}, kept_types
