"""Credentials over a cluster's life: certificates pulumi-tls renews in state reach the
running nodes, and a discovery cluster that shrinks removes its leaving etcd members."""

from __future__ import annotations

import base64

from planning import COMMAND


def _script_env(p, name: str) -> str:
    return p.raw([name])[name]["stdin"]


def test_renewed_flannel_certificate_reaches_every_node(plan):
    p = plan("dev", "masters.count=3")
    nodes = [n for n in p.instances if "discovery" not in n]
    for node in nodes:
        cmd = p.named(f"{node}-flannel-renewal")
        assert "create" not in cmd["inputs"], "a new node has its certificate from user-data"
        assert cmd["inputs"]["update"].startswith(
            "sudo bash -s  # renewed flannel client certificate"
        )
        assert cmd["inputs"]["stdin"] == "[secret]"
        assert f"{node}-ready" in p.waits_for(f"{node}-flannel-renewal")
    stdin = _script_env(p, "dev-worker-general-0-flannel-renewal")
    assert "node-install-cert" in stdin and "export RESTART_UNITS=flanneld.service" in stdin
    assert "BEGIN CERTIFICATE" in stdin and "PRIVATE KEY" in stdin


def test_renewed_etcd_certificates_restart_one_member_at_a_time(plan):
    p = plan("dev", "discovery.count=3")
    for i in range(3):
        cmd = p.named(f"dev-discovery-{i}-etcd-renewal")
        assert "create" not in cmd["inputs"]
        if i:
            assert f"dev-discovery-{i - 1}-etcd-renewal" in p.waits_for(
                f"dev-discovery-{i}-etcd-renewal"
            )
    assert "export RESTART_UNITS=etcd.service" in _script_env(p, "dev-discovery-1-etcd-renewal")


def test_shrinking_discovery_removes_the_leaving_members(plan):
    """3 -> 1: the two leaving members' -etcd-leave commands are deleted (and run) one at a
    time, before their VMs and before the first member could go."""
    three, one = plan("dev", "discovery.count=3"), plan("dev")
    removed = set(three.by_name) - set(one.by_name)
    assert {"dev-discovery-1-etcd-leave", "dev-discovery-2-etcd-leave"} <= removed
    assert "dev-discovery-0-etcd-leave" not in three.by_name
    for i in (1, 2):
        leave = three.named(f"dev-discovery-{i}-etcd-leave")
        assert set(leave["inputs"]) >= {"delete", "connection"} and "create" not in leave["inputs"]
        waits = three.waits_for(f"dev-discovery-{i}-etcd-leave")
        assert f"dev-discovery-{i}" in waits and "dev-discovery-0-ready" in waits
        script = base64.b64decode(leave["inputs"]["delete"].split()[1]).decode()
        assert (
            f"export MEMBER_NAME=dev-discovery-{i}\n" in script
            and "export MEMBER_ADDRESS=10.10." in script
        )
    assert "dev-discovery-2-etcd-leave" in three.waits_for("dev-discovery-1-etcd-leave")
    assert all(r["type"] == COMMAND for r in three.resources if r["name"].endswith("-etcd-leave"))
