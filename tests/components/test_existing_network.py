"""network.existing: the operator's network and subnet, read from the cloud; nothing of
theirs is created, and the cluster's own security groups still guard every port."""

from __future__ import annotations

import pytest

from component_args import worker_pools
from planning import run_plan
from tools.plan import user_data_text

NET_UUID = "3f1e2d4c-5b6a-4789-8abc-def012345678"
EXISTING = f'network={{"existing":{{"networkId":"{NET_UUID}","subnetId":"tenant-subnet"}}}}'
CREATED = {
    "openstack:networking/network:Network",
    "openstack:networking/subnet:Subnet",
    "openstack:networking/router:Router",
    "openstack:networking/routerInterface:RouterInterface",
}


def test_nothing_of_the_network_is_created(plan):
    p = plan("dev", EXISTING, "masters.count=3", "controlPlane.endpoint=octavia")
    assert not {r["type"] for r in p.resources} & CREATED
    assert CREATED <= {r["type"] for r in plan("dev").resources}, (
        "the comparison would prove nothing"
    )
    ports = [r for r in p.resources if r["type"] == "openstack:networking/port:Port"]
    assert len(ports) == 1 + 3 + 2
    for port in ports:
        # A UUID is used as it is; a name is looked up (the mock answers with an id).
        assert port["inputs"]["networkId"] == NET_UUID
        assert port["inputs"]["fixedIps"][0]["subnetId"]
    # The cluster's own groups guard the ports; rules from the subnet carry its range, read
    # from the cloud (the mock's subnet), under a name that does not wait for it.
    nodeports = p.named("dev-network-sg-worker-tcp-30000-32767-from-subnet")
    assert nodeports["inputs"]["remoteIpPrefix"] == "10.10.0.0/22"
    assert p.named("dev-master-lb-listener")["inputs"]["allowedCidrs"][0] == "10.10.0.0/22"
    # No VM waits for a router interface that is not the program's.
    for name in p.instances:
        assert not any("router" in w for w in p.waits_for(name)), name


def test_user_data_knows_the_subnet(under_mocks, stack_settings):
    """A worker's user-data carries the existing subnet's range, read from the cloud (the
    pool alone, in process, on the network as Cluster makes it)."""
    settings = stack_settings(
        network={"existing": {"networkId": NET_UUID, "subnetId": "tenant-subnet"}}
    )
    regs = under_mocks(lambda: worker_pools(settings), subnet="10.10.0.0/22").registrations
    vm = next(r for r in regs if r.name == "t-worker-general-0")
    assert "NETWORK_CIDR=10.10.0.0/22" in user_data_text(vm.raw_inputs["userData"])
    assert not [r for r in regs if r.type in CREATED], "the network is the operator's"


@pytest.mark.parametrize(
    "sets,message",
    [
        (
            (EXISTING, "podCidr=10.8.0.0/14"),
            "openstack-k8s:podCidr: 10.8.0.0/14 overlaps the existing subnet tenant-subnet",
        ),
        (
            ('network={"existing":{"networkId":"n","subnetId":"s"},"cidr":"10.30.0.0/22"}',),
            "openstack-k8s:network.cidr: is the existing subnet's own",
        ),
        (
            ('network={"existing":{"networkId":"n","subnetId":" "}}',),
            "openstack-k8s:network.existing.subnetId",
        ),
    ],
)
def test_refused(tmp_path, sets, message):
    result = run_plan(tmp_path / "plan", "dev", sets)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr[-2000:]
    assert not (tmp_path / "plan" / "plan.json").exists()
