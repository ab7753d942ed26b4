"""What the cloud is told, read from offline plans: security group rules, the API load
balancer, application credentials. Each of these is something a real Neutron, Octavia or
Keystone refuses or gets wrong, and the mock engine accepts."""

from __future__ import annotations

from collections import Counter

from component_args import ComponentPlan, control_plane
from components.cluster import network_args
from components.network import PrivateNetwork
from planning import run_plan

RULE = "openstack:networking/secGroupRule:SecGroupRule"
LISTENER = "openstack:loadbalancer/listener:Listener"
CREDENTIAL = "openstack:identity/applicationCredential:ApplicationCredential"


def _rules(p, group: str) -> list[dict]:
    sg = p.named(f"dev-network-sg-{group}")
    return [r for r in p.of_type(RULE) if sg["urn"] in r["dependencies"]]


def test_overlapping_sources_make_one_rule(under_mocks, stack_settings):
    """nodePortAllowedCidrs naming the cluster's own network is the rule the program makes
    anyway: two registrations of one name stop the real engine (duplicate URN). One rule.
    (The network alone, in process: the rules are all its own.)"""
    settings = stack_settings(
        network={"cidr": "10.10.0.0/22"}, nodePortAllowedCidrs=["10.10.0.0/22"]
    )
    regs = under_mocks(lambda: PrivateNetwork("t-network", network_args(settings))).registrations
    rules = [r for r in regs if r.type == RULE]
    names = Counter(r.name for r in rules)
    assert names and max(names.values()) == 1
    sg = next(r for r in regs if r.name == "t-network-sg-worker")
    nodeports = [
        r for r in rules if sg.urn in r.dependencies and r.inputs.get("portRangeMin") == 30000
    ]
    assert [r.inputs["remoteIpPrefix"] for r in nodeports] == ["10.10.0.0/22"]


def test_kubelet_answers_workers(plan):
    """metrics-server runs on a worker, and flannel masquerades its scrapes with the worker's
    address: every kubelet must accept 10250 from workers, not only from masters."""
    p = plan("dev")
    groups = {r["name"]: r for r in p.of_type("openstack:networking/secGroup:SecGroup")}
    for role in ("master", "worker"):
        sources = {
            r["inputs"]["remoteGroupId"]
            for r in _rules(p, role)
            if r["inputs"].get("portRangeMin") == 10250 and r["inputs"].get("portRangeMax") == 10250
        }
        assert len(sources) == 2, role
    assert len(groups) == 3


def _octavia_masters(under_mocks, stack_settings, api_allowed: list[str]) -> ComponentPlan:
    """Three masters behind Octavia: the control plane alone, in process, named as in dev."""
    settings = stack_settings(
        clusterName="dev",
        masters={"count": 3},
        controlPlane={"endpoint": "octavia"},
        apiAllowedCidrs=api_allowed,
    )
    return ComponentPlan(under_mocks(lambda: control_plane(settings), subnet="10.10.0.0/22"))


def test_octavia_listener_admits_only_allowed_cidrs(under_mocks, stack_settings):
    """The amphora forwards from its own address, so the masters' security group cannot tell
    clients apart: the listener itself admits the cluster network and apiAllowedCidrs only,
    on the amphora provider (OVN knows neither allowed CIDRs nor HTTPS monitors)."""
    p = _octavia_masters(under_mocks, stack_settings, ["198.51.100.0/24"])
    listener = p.named("dev-master-lb-listener")["inputs"]
    assert listener["allowedCidrs"] == ["10.10.0.0/22", "198.51.100.0/24"]
    assert p.named("dev-master-lb")["inputs"]["loadbalancerProvider"] == "amphora"
    assert p.named("dev-master-lb-monitor")["inputs"]["type"] == "HTTPS"
    # Never open to the world by default: no allowed CIDRs still means the network only.
    q = _octavia_masters(under_mocks, stack_settings, [])
    assert q.named("dev-master-lb-listener")["inputs"]["allowedCidrs"] == ["10.10.0.0/22"]


def test_application_credentials_unique_per_stack_and_replaced_delete_first(plan, tmp_path):
    """Keystone keeps application credential names unique per user (409 on a second one), and
    every field is ForceNew: the old one goes first, and two stacks with one cluster name
    under one operator do not collide."""
    p = plan("dev", "etcd.backup.container=etcd-snapshots")
    creds = p.of_type(CREDENTIAL)
    assert len(creds) == 2, [c["name"] for c in creds]
    for c in creds:
        assert c["options"].get("deleteBeforeReplace") is True, c["name"]
        assert c["inputs"]["name"] == f"openstack-k8s-dev-{c['name']}"
    # The same cluster name in another stack: other Keystone names.
    other = run_plan(
        tmp_path / "other", "prod", ("clusterName=dev", "etcd.backup.container=etcd-snapshots")
    )
    assert other.returncode == 0, other.stderr[-2000:]
    import json

    theirs = {
        r["inputs"]["name"]
        for r in json.loads((tmp_path / "other" / "plan.json").read_text())["resources"]
        if r["type"] == CREDENTIAL
    }
    assert theirs and not theirs & {c["inputs"]["name"] for c in creds}
