"""A thousand workers plan, and no dependency chain grows with the pool.

The Pulumi SDK walks every resource's dependencies transitively and recursively (the same
code runs under the real CLI): a chain as long as the pool (worker i waiting for worker i-1)
blew its recursion limit at about 980 links. A pool of 1000 workers must plan, and its
longest chain must be no longer than a pool of 100's. Time and memory are in tools/bench.

The pool is planned on its own (components/worker_pool.worker_pool, as Cluster calls it,
with stand-ins for the rest of the cluster: tests/component_args.py), in this process under
the mock engine: the pool is what grows, and the rest of the program (network, discovery,
one master, add-ons) is the same at any pool size.
"""

from __future__ import annotations

import pytest

import settings as config
from component_args import CONTROL_PLANE_UPGRADED, CREDENTIAL, INITIALIZED, worker_pools
from components.roles import Role, role_of
from tools import mockengine

INSTANCE = "openstack:compute/instance:Instance"
COMMAND = "command:remote:Command"
# Room for 1000 nodes: a /24 of pod network each, and their ports.
WIDE = {"podCidr": "10.64.0.0/14", "network": {"cidr": "10.10.0.0/20"}}


def pool(count: int) -> list:
    """The registrations of one pool of `count` workers."""
    settings = config.load(
        {
            "clusterName": "t",
            "externalNetwork": "public",
            "image": "ubuntu-24.04",
            "sshAllowedCidrs": ["192.0.2.0/24"],
            **WIDE,
            "workerPools": [{"name": "general", "count": count}],
        }
    )
    return mockengine.run(lambda: worker_pools(settings), subnet="10.10.0.0/20").registrations


def longest_chain(registrations) -> int:
    """Links in the longest dependency chain of the registrations' graph (iterative: the
    graph under test is the deep one)."""
    by_urn = {r.urn: r for r in registrations}
    depth: dict[str, int] = {}
    for start in by_urn:
        stack = [start]
        while stack:
            urn = stack[-1]
            if urn in depth:
                stack.pop()
                continue
            deps = [d for d in by_urn[urn].dependencies if d in by_urn]
            todo = [d for d in deps if d not in depth]
            if todo:
                stack.extend(todo)
                continue
            depth[urn] = 1 + max((depth[d] for d in deps), default=0)
            stack.pop()
    return max(depth.values()) - 1


@pytest.fixture(scope="module")
def thousand():
    return pool(1000)


def test_a_thousand_workers_plan(thousand):
    """Every worker is there with its ready gate, join and upgrade command."""
    workers = [r.name for r in thousand if r.type == INSTANCE]
    assert len(workers) == 1000 and len(set(workers)) == 1000
    assert all(w.startswith("t-worker-general-") for w in workers)
    commands = {r.name for r in thousand if r.type == COMMAND}
    for step in ("ready", "join", "upgrade"):
        missing = [w for w in workers if f"{w}-{step}" not in commands]
        assert not missing, f"{len(missing)} workers lack -{step}, e.g. {missing[:3]}"


def test_no_dependency_chain_grows_with_the_pool(thousand):
    """Ten times the workers, not one link more in the longest chain."""
    hundred_pool = pool(100)
    hundred = longest_chain(hundred_pool)
    # The walk saw the graph: network, VMs, gates, joins, upgrade lanes.
    assert hundred > 5
    assert longest_chain(thousand) == hundred
    # The upgrades did chain (lanes), and waited for what the rest of the cluster hands them.
    upgrades = [r for r in thousand if r.type == COMMAND and role_of(r.name) is Role.UPGRADE]
    names = {r.urn: r.name for r in thousand}
    chained = [
        r
        for r in upgrades
        if any(role_of(names.get(d, "")) is Role.UPGRADE for d in r.dependencies)
    ]
    assert len(upgrades) == 1000 and 0 < len(chained) < 1000
    waited = {names[d] for r in upgrades for d in r.dependencies if d in names}
    assert {CREDENTIAL, CONTROL_PLANE_UPGRADED} <= waited
    tokens = [r for r in thousand if r.type == COMMAND and role_of(r.name) is Role.TOKEN]
    assert len(tokens) == 1000
    assert all(INITIALIZED in {names.get(d) for d in t.dependencies} for t in tokens)
