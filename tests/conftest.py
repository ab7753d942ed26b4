"""Shared fixtures: offline plans of the stacks, made once per session by the real CLI."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from planning import Plan, run_plan  # noqa: E402


@pytest.fixture(scope="session")
def plan(tmp_path_factory):
    """plan(stack="dev", *sets) -> Plan; each distinct request is planned once."""
    cache: dict[tuple, Plan] = {}

    def make(stack: str = "dev", *sets: str) -> Plan:
        key = (stack, *sets)
        if key not in cache:
            tag = hashlib.sha256(repr(key).encode()).hexdigest()[:12]
            out = tmp_path_factory.mktemp(f"plan-{stack}-{tag}") / "plan"
            result = run_plan(out, stack, sets)
            assert result.returncode == 0, f"plan {key} failed:\n{result.stderr[-4000:]}"
            cache[key] = Plan.load(out, sets)
        return cache[key]

    return make
