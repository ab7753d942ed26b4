"""A thousand workers plan, and no dependency chain grows with the pool.

The Pulumi SDK walks every resource's dependencies transitively and recursively (the same
code runs under the real CLI): a chain as long as the pool (worker i waiting for worker i-1)
blew its recursion limit at about 980 links. The plan at 1000 workers must succeed, and its
longest chain must be no longer than at 100 workers. Time and memory are in tools/bench.
"""

from __future__ import annotations

import pytest

from planning import COMMAND, INSTANCE

# Room for 1000 nodes: a /24 of pod network each, and their ports.
WIDE = ("podCidr=10.64.0.0/14", "network.cidr=10.10.0.0/20")


def pool(count: int) -> tuple[str, ...]:
    return (*WIDE, f"workerPools[0].count={count}")


def longest_chain(plan) -> int:
    """Links in the longest dependency chain of the plan's graph (iterative: the graph
    under test is the deep one)."""
    depth: dict[str, int] = {}
    for start in plan.by_urn:
        stack = [start]
        while stack:
            urn = stack[-1]
            if urn in depth:
                stack.pop()
                continue
            deps = [d for d in plan.by_urn[urn]["dependencies"] if d in plan.by_urn]
            todo = [d for d in deps if d not in depth]
            if todo:
                stack.extend(todo)
                continue
            depth[urn] = 1 + max((depth[d] for d in deps), default=0)
            stack.pop()
    return max(depth.values()) - 1


@pytest.fixture(scope="module")
def thousand(plan):
    return plan("dev", *pool(1000))


def test_a_thousand_workers_plan(thousand):
    """Every worker is there with its ready gate, join and upgrade command."""
    workers = [n for n in thousand.instances if "-worker-" in n]
    assert len(workers) == 1000
    commands = {r["name"] for r in thousand.of_type(COMMAND)}
    for step in ("ready", "join", "upgrade"):
        missing = [w for w in workers if f"{w}-{step}" not in commands]
        assert not missing, f"{len(missing)} workers lack -{step}, e.g. {missing[:3]}"
    assert len(thousand.of_type(INSTANCE)) == 1000 + 2  # and one master, one discovery


def test_no_dependency_chain_grows_with_the_pool(thousand, plan):
    """Ten times the workers, not one link more in the longest chain."""
    hundred = longest_chain(plan("dev", *pool(100)))
    assert hundred > 5  # the walk saw the graph: network, VMs, gates, init, joins
    assert longest_chain(thousand) == hundred
