"""Bad input that only the cloud can reveal, through the real CLI against the local OpenStack:
an operator's existing subnet that overlaps the pod network. The program reads the subnet
with an invoke before its first resource, so `pulumi preview` ends with the same one line the
offline plan prints, no traceback, and nothing registered but the stack itself."""

from __future__ import annotations

import json
import secrets

import pytest

from cloud.stack_checks import Engine, Stack, error_diagnostics, steps

pytestmark = pytest.mark.cloud


def test_an_existing_subnet_that_overlaps_the_pod_network_is_one_line(openstack_cloud, tmp_path):
    conn = openstack_cloud.connect()
    name = f"existing-{secrets.token_hex(3)}"
    network = conn.network.create_network(name=name)
    try:
        subnet = conn.network.create_subnet(
            name=name, network_id=network.id, ip_version=4, cidr="10.30.4.0/22"
        )
        existing = {"existing": {"networkId": network.id, "subnetId": subnet.id}}
        sets = [
            f"clusterName=ex{secrets.token_hex(3)}",
            f"network={json.dumps(existing)}",
            "podCidr=10.30.0.0/16",
            'sshAllowedCidrs=["203.0.113.0/24"]',
            'apiAllowedCidrs=["203.0.113.0/24"]',
        ]
        stack = Stack.from_stack_file(
            Engine.build(), tmp_path, "dev", sets, env=openstack_cloud.env
        )
        stack.init()
        res = stack.preview()
        assert res.returncode != 0, res.describe()
        doc = res.json()
        assert [e.removeprefix("error: ") for e in error_diagnostics(doc)] == [
            "openstack-k8s:podCidr: 10.30.0.0/16 overlaps the existing subnet "
            f"{subnet.id} (10.30.4.0/22); choose another podCidr"
        ], res.describe()
        assert "Traceback" not in res.stdout + res.stderr
        # Only the stack: the program stopped before its first resource.
        assert [urn.rsplit("::", 2)[1] for urn in steps(doc)] == ["pulumi:pulumi:Stack"]
    finally:
        conn.network.delete_network(network.id, ignore_missing=True)
