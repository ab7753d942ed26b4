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


@pytest.fixture
def under_mocks():
    """under_mocks(build, settings=None) -> Evaluation: `build()` registers resources (one
    component on its own, say) under the mock engine in this process: milliseconds, where a
    plan of the whole program is a subprocess of seconds. The registrations are what the
    engine would receive, secrets redacted in `.inputs`, whole in `.raw_inputs`."""
    from tools import mockengine

    def run(build, *, stack: str = "dev", subnet: str = "10.0.0.0/24"):
        return mockengine.run(build, stack=stack, subnet=subnet)

    return run


@pytest.fixture
def stack_settings():
    """stack_settings(**overrides) -> Settings: a small valid stack, validated the one way."""
    import settings as config

    def make(**overrides):
        raw = {
            "clusterName": "t",
            "externalNetwork": "public",
            "image": "ubuntu-24.04",
            "sshAllowedCidrs": ["192.0.2.0/24"],
            **overrides,
        }
        return config.load(raw)

    return make
