"""What runs a command again on a running cluster (docs/lifecycle.md, "What runs a step
again"): its trigger, written down per step. An edit of a script's text re-runs nothing; a
raised step revision re-runs exactly that step, lane by lane, after the new step kit reached
every node.

Each test plans a copy of the program with one edit against the program as it is, through
`python -m tools.plan` (the program reads its scripts when it is imported), and asks
tools/plandiff what the engine would do about the difference."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from plan_snapshots import CONFIGS
from planning import ROOT, run_plan
from tools import plandiff

# What `python -m tools.plan` needs of the checkout.
PROGRAM = (
    "__main__.py",
    "Pulumi.yaml",
    "Pulumi.dev.yaml",
    "Pulumi.prod.yaml",
    "settings.py",
    "python_version.py",
    "VERSION",
    "addons",
    "cloud_init",
    "components",
    "rules",
    "tools",
)
RERUN_EFFECTS = {plandiff.RERUN, plandiff.REPLACE}


def program_copy(tmp: Path, edit) -> Path:
    root = tmp / "program"
    for name in PROGRAM:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, root / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            root.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / name)
    edit(root)
    return root


def plan_at(root: Path, out: Path, stack: str, sets: tuple[str, ...]) -> plandiff.Plan:
    result = run_plan(out, stack, sets, root=root)
    assert result.returncode == 0, result.stderr[-3000:]
    return plandiff.load_plan(out)


def reruns(old: plandiff.Plan, new: plandiff.Plan) -> dict[str, str]:
    """Every command the engine would run again (update that runs, or replace), by name,
    with its effect; and nothing else may be added or removed."""
    c = plandiff.compare(old, new)
    assert not c.added and not c.removed
    return {
        d.name: d.effect
        for d in c.changed
        if d.type == plandiff.COMMAND and d.effect in RERUN_EFFECTS
    }


def _comment_in_common_sh(root: Path) -> None:
    lib = root / "cloud_init" / "scripts" / "lib" / "common.sh"
    text = lib.read_text()
    lib.write_text(text + "# A comment added by tests/test_triggers.py: no behaviour changes.\n")


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_a_comment_in_common_sh_reruns_no_command(tmp_path, config):
    """In every snapshot configuration: the edit reaches the scripts every command ships
    (the kit, the run-once texts) and re-runs none of them on a running node."""
    stack, sets = CONFIGS[config]
    edited = program_copy(tmp_path, _comment_in_common_sh)
    assert (
        "added by tests/test_triggers.py"
        in (edited / "cloud_init" / "scripts" / "lib" / "common.sh").read_text()
    )
    old = plan_at(ROOT, tmp_path / "old", stack, sets)
    new = plan_at(edited, tmp_path / "new", stack, sets)
    comparison = plandiff.compare(old, new)
    # The edit is there: the step kits and run-once scripts carry it (ignored changes)...
    kits = {d.name for d in comparison.ignored if d.name.endswith("-step-kit")}
    assert kits and kits == {r["name"] for r in new.resources.values() if r["name"] in kits}
    assert len(kits) == sum(1 for r in new.resources.values() if r["name"].endswith("-step-kit"))
    # ...and no command runs again.
    assert reruns(old, new) == {}


def _raise_revision(row: str):
    """An edit of components/roles.py: the table's row `row` gets revision 2 (as a developer
    raises it: the row, before the table is made of the rows)."""

    def edit(root: Path) -> None:
        roles = root / "components" / "roles.py"
        text = roles.read_text()
        table = "STEPS: tuple[Step, ...] = ("
        assert text.count(table) == 1 and re.search(rf"^{row} = Step\(", text, re.M), row
        imports = "from dataclasses import dataclass\n"
        assert imports in text
        raised = f"{row} = dataclasses.replace({row}, revision=2)\n\n"
        text = text.replace(imports, imports + "import dataclasses\n")
        roles.write_text(text.replace(table, raised + table))

    return edit


POOLS = 'workerPools=[{"name":"general","count":5},{"name":"edge","count":2}]'


def test_raising_the_worker_upgrade_revision_reruns_exactly_that_step_lane_by_lane(tmp_path):
    sets = ("masters.count=3", POOLS, "upgrade.maxUnavailable=2")
    old = plan_at(ROOT, tmp_path / "old", "dev", sets)
    new = plan_at(
        program_copy(tmp_path, _raise_revision("UPGRADE_WORKER")), tmp_path / "new", "dev", sets
    )
    again = reruns(old, new)
    workers = [f"dev-worker-general-{i}" for i in range(5)] + [
        f"dev-worker-edge-{i}" for i in range(2)
    ]
    nodes = ["dev-discovery-0", *[f"dev-master-{i}" for i in range(3)], *workers]
    # The step itself on every worker, the token it authenticates with, and the new kit on
    # every node (replaced: bound to the kit's revision); nothing else.
    assert again == {
        **{f"{w}-upgrade": plandiff.RERUN for w in workers},
        "dev-master-0-upgrade-credential": plandiff.RERUN,
        **{f"{n}-step-kit": plandiff.REPLACE for n in nodes},
    }
    # Why, in the clear, on the command line of every worker's upgrade, and in the diff.
    for w in workers:
        line = new.resources[_urn(new, f"{w}-upgrade")]["inputs"]["update"]
        assert line.endswith("· upgrade revision 2"), line
    text = plandiff.render(plandiff.compare(old, new))
    assert "This change **runs steps again whose revision was raised**" in text
    assert "`upgrade` revision 1 → 2 on 7 nodes: `dev-worker-edge-0-upgrade`" in text
    assert f"({len(nodes)} `-step-kit` commands replaced)" in text
    # Lane by lane: two lanes per pool (maxUnavailable 2), each worker after the one two
    # places before it, as before; and after its own node's new kit.
    for pool, count in (("general", 5), ("edge", 2)):
        for i in range(count):
            waits = _waits(new, f"dev-worker-{pool}-{i}-upgrade")
            assert f"dev-worker-{pool}-{i}-step-kit" in waits
            lane = {f"dev-worker-{pool}-{i - 2}-upgrade"} if i >= 2 else set()
            others = {f"dev-worker-{pool}-{j}-upgrade" for j in range(count)} - lane
            assert lane <= waits and not others & waits, (pool, i, waits)


def test_raising_a_master_step_revision_reruns_only_it(tmp_path):
    old = plan_at(ROOT, tmp_path / "old", "dev", ("masters.count=3",))
    new = plan_at(
        program_copy(tmp_path, _raise_revision("APISERVER")),
        tmp_path / "new",
        "dev",
        ("masters.count=3",),
    )
    again = reruns(old, new)
    steps = {n for n, e in again.items() if e == plandiff.RERUN}
    assert steps == {f"dev-master-{i}-apiserver" for i in range(3)}
    assert {n for n, e in again.items() if e == plandiff.REPLACE} == {
        n["name"] for n in new.resources.values() if n["name"].endswith("-step-kit")
    }
    # One master after another, as every API server change.
    for i in (1, 2):
        assert f"dev-master-{i - 1}-apiserver" in _waits(new, f"dev-master-{i}-apiserver")


def _urn(plan: plandiff.Plan, name: str) -> str:
    return next(u for u, r in plan.resources.items() if r["name"] == name)


def _waits(plan: plandiff.Plan, name: str) -> set[str]:
    deps = plan.resources[_urn(plan, name)].get("dependencies") or []
    return {plan.resources[d]["name"] for d in deps if d in plan.resources}
