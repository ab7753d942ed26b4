"""Nova server metadata per node group (`metadata`): Nova's own rules, one line naming the
key, and what reaches every VM of the group."""

from __future__ import annotations

from ipaddress import IPv4Network

import pulumi
import pytest

import settings
from components.machine import GroupSpec, NodeImage, machine_instance, machine_port
from components.network import FirewallArgs, NetworkArgs, PrivateNetwork
from rules import metadata

BASE = {
    "clusterName": "t",
    "externalNetwork": "public",
    "image": "debian-12",
    "sshAllowedCidrs": ["192.0.2.0/24"],
}


@pytest.mark.parametrize(
    "where",
    [("masters",), ("discovery",), ("workerPools", 0)],
    ids=["masters", "discovery", "pool"],
)
@pytest.mark.parametrize(
    "items, says",
    [
        ({"": "x"}, "is not a Nova metadata key"),
        ({"team/web": "x"}, "is not a Nova metadata key"),
        ({"k" * 256: "x"}, "is not a Nova metadata key"),
        ({"openstack-k8s-role": "x"}, "keys starting with openstack-k8s- are the program's"),
        ({"team": "v" * 256}, "is 256 characters long, at most 255"),
        ({f"k{i}": "v" for i in range(127)}, "has 127 items"),
        ({"team": 3}, "Input should be a valid string"),
        ({"team": True}, "Input should be a valid string"),
    ],
    ids=["blank", "slash", "long-key", "ours", "long-value", "too-many", "number", "boolean"],
)
def test_bad_metadata_is_one_line_naming_the_key(where, items, says):
    raw = {**BASE}
    if where[0] == "workerPools":
        raw["workerPools"] = [{"name": "general", "count": 1, "metadata": items}]
        key = "workerPools[0].metadata"
    else:
        raw[where[0]] = {"metadata": items}
        key = f"{where[0]}.metadata"
    with pytest.raises(settings.ConfigError) as e:
        settings.load(raw)
    assert e.value.key.startswith(key), str(e.value)
    assert says in str(e.value) and "\n" not in str(e.value)


def test_limits_hold_at_the_limit():
    assert metadata.server_metadata({"k" * 255: "v" * 255}) == {"k" * 255: "v" * 255}
    assert len(metadata.server_metadata({f"k{i}": "v" for i in range(126)})) == 126
    assert metadata.server_metadata({"a-b_c:d.e f": ""}) == {"a-b_c:d.e f": ""}


def test_a_groups_metadata_reaches_its_vms_next_to_the_programs_own(under_mocks, stack_settings):
    """From the settings through Cluster to every VM of that group, and only that group's."""
    s = stack_settings(
        masters={"metadata": {"team": "platform", "cost-centre": "42"}},
        workerPools=[{"name": "general", "count": 2, "metadata": {"team": "web"}}],
    )
    from components.cluster import Cluster

    ev = under_mocks(lambda: Cluster("t", s))
    vms = {r.name: r.inputs["metadata"] for r in ev.registrations if r.type.endswith("Instance")}
    own = {"openstack-k8s-cluster": "t"}
    assert vms["t-master-0"] == {
        **own,
        "openstack-k8s-role": "master",
        "team": "platform",
        "cost-centre": "42",
    }
    for i in range(2):
        assert vms[f"t-worker-general-{i}"] == {
            **own,
            "openstack-k8s-role": "worker",
            "team": "web",
        }
    assert vms["t-discovery-0"] == {**own, "openstack-k8s-role": "discovery"}


def test_the_programs_keys_win_over_a_groups(under_mocks):
    """Even if a rule were bypassed, a group's metadata cannot hide which cluster and role a
    VM belongs to."""

    def build():
        net = PrivateNetwork(
            "t-network",
            NetworkArgs(
                cluster="t",
                external_network="public",
                firewall=FirewallArgs(
                    "10.0.0.0/24", (), (), (), True, None, "master", False, False
                ),
                cidr=IPv4Network("10.0.0.0/24"),
            ),
        )
        group = GroupSpec(
            role="worker",
            count=1,
            cluster="t",
            image=NodeImage(
                "img", pulumi.Output.from_input("0b0e9f4c-7b36-4f2e-9a53-3f0c1c2d5e6f")
            ),
            flavor="m1.small",
            ready_timeout=60,
            metadata={"openstack-k8s-role": "master"},
        )
        machine_instance(
            "t-w-0",
            group,
            index=0,
            port=machine_port("t-w-0", network=net, role="worker", parent=net),
            user_data=pulumi.Output.from_input("#cloud-config\n"),
            network=net,
            parent=net,
        )

    ev = under_mocks(build)
    vm = next(r for r in ev.registrations if r.type.endswith("Instance"))
    assert vm.inputs["metadata"]["openstack-k8s-role"] == "worker"
