"""PrivateNetwork on its own, under the mock engine in this process: what it asks of Neutron
for a network of its own and for the operator's existing one."""

from __future__ import annotations

from components.cluster import firewall_args, network_args
from components.network import PrivateNetwork, role_rules

NETWORK = "openstack:networking/network:Network"
SUBNET = "openstack:networking/subnet:Subnet"
ROUTER = "openstack:networking/router:Router"
GROUP = "openstack:networking/secGroup:SecGroup"
RULE = "openstack:networking/secGroupRule:SecGroupRule"


def _by_type(ev) -> dict[str, list]:
    out: dict[str, list] = {}
    for r in ev.registrations:
        out.setdefault(r.type, []).append(r)
    return out


def test_own_network_has_a_router_and_one_rule_per_role_rule(under_mocks, stack_settings):
    settings = stack_settings()
    ev = under_mocks(lambda: PrivateNetwork("t-network", network_args(settings)))
    got = _by_type(ev)
    assert [r.name for r in got[NETWORK]] == ["t-network-net"] and len(got[SUBNET]) == 1
    assert len(got[ROUTER]) == 1
    assert sorted(r.inputs["name"] for r in got[GROUP]) == ["t-discovery", "t-master", "t-worker"]
    want = sum(len(rules) for rules in role_rules(firewall_args(settings)).values())
    assert want > 10 and len(got[RULE]) == want
    # Every registration is a child of the component: nothing floats at the stack's root.
    component = next(r for r in ev.registrations if r.type == "openstack-k8s:index:PrivateNetwork")
    assert all(r.parent == component.urn for r in ev.registrations if r is not component)


def test_existing_network_creates_none_and_opens_its_subnet(under_mocks, stack_settings):
    """With the operator's network nothing but the groups and rules is created, and the rules
    that name the cluster's network take the existing subnet's range (read from Neutron)."""
    settings = stack_settings(
        network={
            "existing": {
                "networkId": "0b0e9f4c-7b36-4f2e-9a53-3f0c1c2d5e6f",
                "subnetId": "5d1d3f1a-2c4b-4e5f-8a9b-0c1d2e3f4a5b",
            }
        }
    )
    ev = under_mocks(
        lambda: PrivateNetwork("t-network", network_args(settings)), subnet="172.16.8.0/22"
    )
    got = _by_type(ev)
    assert NETWORK not in got and SUBNET not in got and ROUTER not in got
    nodeports = [r for r in got[RULE] if r.inputs.get("portRangeMin") == 30000]
    assert [r.inputs["remoteIpPrefix"] for r in nodeports] == ["172.16.8.0/22"]
