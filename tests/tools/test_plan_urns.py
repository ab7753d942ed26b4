"""The offline plan's URNs are the engine's: what `pulumi up --replace <urn>` and `--target`
take (issue 24). The engine's URN of a child carries every parent type below the stack;
the Pulumi SDK's mock monitor keeps only the direct parent's, and the stack's."""

from __future__ import annotations

STACK = "urn:pulumi:dev::openstack-k8s::pulumi:pulumi:Stack::openstack-k8s-dev"
PREFIX = "urn:pulumi:dev::openstack-k8s::"


def test_a_node_urn_names_every_component_above_it(plan):
    p = plan("dev")
    assert p.named("dev-master-0")["urn"] == (
        PREFIX + "openstack-k8s:index:Cluster$openstack-k8s:index:ControlPlane"
        "$openstack:compute/instance:Instance::dev-master-0"
    )
    assert p.named("dev-worker-general-0-join")["urn"] == (
        PREFIX + "openstack-k8s:index:Cluster$openstack-k8s:index:WorkerPool"
        "$command:remote:Command::dev-worker-general-0-join"
    )


def test_the_top_component_has_no_stack_type_and_the_stack_as_parent(plan):
    cluster = plan("dev").named("dev")
    assert cluster["urn"] == PREFIX + "openstack-k8s:index:Cluster::dev"
    assert cluster["parent"] == STACK


def test_an_explicit_provider_follows_the_same_rule(plan):
    provider = plan("dev").named("dev-addons-provider")
    assert provider["type"] == "pulumi:providers:kubernetes"
    assert provider["urn"] == (
        PREFIX + "openstack-k8s:index:Cluster$openstack-k8s:index:ClusterAddons"
        "$pulumi:providers:kubernetes::dev-addons-provider"
    )


def test_every_urn_is_its_parents_type_chain(plan):
    """Walked up the parents, for every resource of a plan with every kind of component."""
    p = plan("dev", "masters.count=3", "discovery.count=3")
    checked = 0
    for r in p.resources:
        chain, parent = [r["type"]], r["parent"]
        while parent != STACK:
            up = p.by_urn[parent]
            chain.insert(0, up["type"])
            parent = up["parent"]
        assert r["urn"] == PREFIX + "$".join(chain) + "::" + r["name"]
        assert "pulumi:pulumi:Stack" not in r["urn"]
        assert set(r["dependencies"]) <= set(p.by_urn), r["name"]
        checked += 1
    assert checked == len(p.resources) > 100
