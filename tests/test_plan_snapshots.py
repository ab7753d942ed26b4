"""The offline plans of a fixed set of configurations match their recorded snapshots: a
refactoring changes nothing the engine or a node would see (tests/plan_snapshots.py says how
to record a deliberate change)."""

from __future__ import annotations

import json

import pytest

from plan_snapshots import CONFIGS, changes, path, snapshot


def test_at_least_ten_configurations_are_kept():
    assert len(CONFIGS) >= 10
    for name in CONFIGS:
        assert path(name).is_file(), f"no snapshot for {name}: run tests/plan_snapshots.py --update"


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_plan_matches_its_snapshot(name):
    stack, sets = CONFIGS[name]
    want = json.loads(path(name).read_text())
    got = snapshot(stack, sets)
    assert len(got["resources"]) > 50, "an empty plan would match nothing"
    diff = changes(want, got)
    assert not diff, (
        f"{name} ({stack} {' '.join(sets)}) differs from tests/snapshots/{name}.json:\n  "
        + "\n  ".join(diff[:40])
        + "\nIf the change is deliberate: .venv/bin/python tests/plan_snapshots.py --update"
    )
