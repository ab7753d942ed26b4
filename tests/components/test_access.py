"""How remote commands reach the nodes: through the discovery node's floating IP (the
default), through the operator's bastion, or straight when Pulumi runs inside the network
(discovery.floatingIp: false with access.bastion or access.direct)."""

from __future__ import annotations

import pytest

import settings
from planning import COMMAND

BASTION = (
    "discovery.floatingIp=false",
    'access.bastion={"host":"203.0.113.5","user":"ops","port":2222}',
)
DIRECT = ("discovery.floatingIp=false", "access.direct=true")
RULE = "openstack:networking/secGroupRule:SecGroupRule"


def _ssh_sources(p, role: str) -> set[str]:
    sg = p.named(f"dev-network-sg-{role}")["urn"]
    return {
        r["inputs"].get("remoteIpPrefix") or "group"
        for r in p.of_type(RULE)
        if sg in r["dependencies"] and r["inputs"].get("portRangeMin") == 22
    }


def test_bastion_carries_every_command(plan):
    p = plan("dev", *BASTION)
    assert "dev-discovery-fip" not in p.by_name and "dev-discovery-fip-association" not in p.by_name
    names = [
        "dev-discovery-0-ready",
        "dev-master-0-init",
        "dev-worker-general-0-join",
        "dev-worker-general-0-sshd",
    ]
    raw = p.raw(names)
    for name in names:
        proxy = raw[name]["connection"]["proxy"]
        assert (proxy["host"], proxy["user"], proxy["port"]) == ("203.0.113.5", "ops", 2222), name
        assert "privateKey" not in proxy, (
            "without a key the operator's ssh-agent answers the bastion"
        )
    # The discovery node is dialled at its own address, through the bastion.
    assert raw["dev-discovery-0-ready"]["connection"]["host"].startswith("10.10.")
    # SSH from the bastion (and sshAllowedCidrs) reaches every node the commands dial.
    for role in ("discovery", "master", "worker"):
        assert "203.0.113.5/32" in _ssh_sources(p, role), role
    assert (
        "Host dev-jump\n  HostName 203.0.113.5\n  User ops\n  Port 2222"
        in p.data["outputs"]["sshConfig"]
    )
    assert len(p.of_type(COMMAND)) > 10


def test_direct_dials_every_node(plan):
    p = plan("dev", *DIRECT)
    raw = p.raw(["dev-master-0-init", "dev-worker-general-0-join"])
    for r in raw.values():
        assert "proxy" not in r["connection"]
        assert r["connection"]["host"].startswith("10.10.")
    assert "ProxyJump" not in p.data["outputs"]["sshConfig"]
    dev_ssh = plan("dev")
    assert _ssh_sources(dev_ssh, "worker") == {"group"}, "the default lets only the jump host in"
    assert _ssh_sources(p, "worker") - {"group"}, "direct: commands come from sshAllowedCidrs"


def test_default_goes_through_the_jump_host(plan):
    p = plan("dev")
    raw = p.raw(["dev-worker-general-0-join", "dev-discovery-0-ready"])
    assert raw["dev-worker-general-0-join"]["connection"]["proxy"]["user"] == "k8s"
    assert "proxy" not in raw["dev-discovery-0-ready"]["connection"]


@pytest.mark.parametrize(
    "extra,key,why",
    [
        ({"discovery": {"floatingIp": False}}, "discovery.floatingIp", "access.bastion"),
        ({"access": {"direct": True}}, "access.direct", "discovery.floatingIp: false"),
        (
            {
                "discovery": {"floatingIp": False},
                "access": {"direct": True, "bastion": {"host": "b", "user": "u"}},
            },
            "access.direct",
            "give one",
        ),
        (
            {
                "discovery": {"floatingIp": False},
                "access": {"bastion": {"host": "127.0.0.1", "user": "u"}},
            },
            "access.bastion.host",
            "loopback",
        ),
        (
            {
                "discovery": {"floatingIp": False},
                "access": {"bastion": {"host": "bastion.example.org", "user": "Root!"}},
            },
            "access.bastion.user",
            "user name",
        ),
    ],
)
def test_refused(extra, key, why, stack_settings):
    with pytest.raises(settings.ConfigError, match=why) as e:
        stack_settings(**extra)
    assert e.value.key == key
