"""The API endpoint in front of the masters, as the engine would receive it: a VIP
with keepalived and haproxy on every master, or an Octavia load balancer; a floating IP on
it; every address in the API certificate."""

from __future__ import annotations

import re

import pulumi
import yaml

from component_args import control_plane, kubeadm_files, waits_for
from tools.plan import user_data_text

# The private network's range in the stacks here (network.cidr's default).
SUBNET = "10.10.0.0/22"
PORT = "openstack:networking/port:Port"
LB = "openstack:loadbalancer/"


def test_vip_endpoint(plan):
    """A reserved VIP port, allowed on every master's port, VRRP between masters only, the
    floating IP on the VIP, and keepalived/haproxy on every master (distinct priorities,
    every master's apiserver a backend). haproxy listens on VIP:8443: kube-apiserver holds
    6443 on every address of the master it shares."""
    p = plan("prod")
    assert p.data["outputs"]["apiEndpoint"].endswith(":8443")
    cluster = next(d for d in _init_config(p) if d["kind"] == "ClusterConfiguration")
    assert cluster["controlPlaneEndpoint"].endswith(":8443")
    vip_port = p.named("prod-master-vip")
    assert vip_port["type"] == PORT
    masters = [f"prod-master-{i}" for i in range(3)]
    addresses = p.data["outputs"]["masterAddresses"]
    vip = _fip_target(p)
    assert vip not in addresses
    for name in masters:
        port = p.named(f"{name}-port")["inputs"]
        assert port["allowedAddressPairs"] == [{"ipAddress": vip}], name
    vrrp = [
        r
        for r in p.of_type("openstack:networking/secGroupRule:SecGroupRule")
        if r["inputs"]["protocol"] == "112"
    ]
    assert len(vrrp) == 1 and vrrp[0]["name"].startswith("prod-network-sg-master-")
    priorities = set()
    for i, name in enumerate(masters):
        cfg = yaml.safe_load(p.user_data(name))
        files = {f["path"]: f["content"] for f in cfg["write_files"]}
        haproxy = files["/etc/haproxy/haproxy.cfg"]
        keepalived = files["/etc/keepalived/keepalived.conf"]
        assert f"bind {vip}:8443" in haproxy
        for address in addresses:
            assert re.search(rf"server \S+ {re.escape(address)}:6443\b", haproxy), (name, address)
        assert vip in keepalived and f"unicast_src_ip {addresses[i]}" in keepalived
        priorities.add(re.search(r"priority (\d+)", keepalived).group(1))
        assert "haproxy" in cfg["packages"] and "keepalived" in cfg["packages"]
    assert len(priorities) == 3
    assert not [r for r in p.resources if r["type"].startswith(LB)]


def _control_plane(under_mocks, stack_settings, **control_plane_settings):
    """Three masters and their endpoint, the control plane alone in process: its
    registrations, its public address and the masters' addresses."""
    settings = stack_settings(
        masters={"count": 3},
        controlPlane={"floatingIp": True, **control_plane_settings},
        apiAllowedCidrs=["192.0.2.0/24"],
    )

    def build():
        masters = control_plane(settings)
        pulumi.export("public", masters.public_address)
        pulumi.export("masters", masters.master_addresses)

    ev = under_mocks(build, subnet=SUBNET)
    return ev.registrations, ev.outputs["public"][0], ev.outputs["masters"][0]


def test_octavia_endpoint(under_mocks, stack_settings):
    """A load balancer with a TCP listener on 6443, a pool, a /readyz monitor and one member
    per master; the floating IP on the load balancer's VIP port; no keepalived."""
    regs, public, addresses = _control_plane(under_mocks, stack_settings, endpoint="octavia")
    by_name = {r.name: r for r in regs}
    cluster = next(d for d in _init_config_of(regs) if d["kind"] == "ClusterConfiguration")
    assert cluster["controlPlaneEndpoint"].endswith(":6443")
    lbs = [r for r in regs if r.type == "openstack:loadbalancer/loadBalancer:LoadBalancer"]
    assert len(lbs) == 1
    listener = by_name["t-master-lb-listener"].inputs
    assert listener["protocol"] == "TCP" and listener["protocolPort"] == 6443
    assert by_name["t-master-lb-pool"].inputs["protocol"] == "TCP"
    monitor = by_name["t-master-lb-monitor"].inputs
    assert monitor["type"] == "HTTPS" and monitor["urlPath"] == "/readyz"
    members = [r for r in regs if r.type == "openstack:loadbalancer/member:Member"]
    assert len(addresses) == 3
    assert sorted(m.inputs["address"] for m in members) == sorted(addresses)
    assert all(m.inputs["protocolPort"] == 6443 for m in members)
    assert "t-master-vip" not in by_name
    for i in range(3):
        user_data = user_data_text(by_name[f"t-master-{i}"].raw_inputs["userData"])
        assert "#cloud-config" in user_data and "keepalived" not in user_data
        assert "allowedAddressPairs" not in by_name[f"t-master-{i}-port"].inputs
    assert public.startswith("203.0.113.")  # the floating IP, on the load balancer
    # the first master initialises behind a working load balancer
    assert {
        "t-master-lb-listener",
        "t-master-lb-monitor",
        "t-master-0-lb-member",
    } <= waits_for(regs, "t-master-0-init")


def test_single_master_is_its_own_endpoint(plan):
    """One master and no endpoint asked: the master's address, with the floating IP on its port."""
    p = plan("dev")
    assert "dev-master-vip" not in p.by_name and not [
        r for r in p.resources if r["type"].startswith(LB)
    ]
    assert _fip_target(p) == p.data["outputs"]["masterAddresses"][0]


def test_certificate_sans_cover_every_address(under_mocks, stack_settings):
    """VIP, its floating IP, every master and the DNS name are in the API certificate; the
    public address (the kubeconfig's server) is the DNS name when there is one, else the
    floating IP."""
    checked = 0
    for extra in ({}, {"dnsName": "api.prod.example.com"}):
        regs, public, addresses = _control_plane(
            under_mocks, stack_settings, endpoint="vip", **extra
        )
        cluster = next(d for d in _init_config_of(regs) if d["kind"] == "ClusterConfiguration")
        sans = set(cluster["apiServer"]["certSANs"])
        vip = cluster["controlPlaneEndpoint"].rsplit(":", 1)[0]
        assert len(addresses) == 3 and {vip, *addresses} <= sans
        assert public in sans
        if extra:
            assert public == "api.prod.example.com"
        else:
            assert public.startswith("203.0.113.")  # the mock's floating IPs
        checked += 1
    assert checked == 2
    assert len([s for s in sans if s.startswith("203.0.113.")]) == 1


def _fip_target(p) -> str:
    """The private address the API floating IP is associated with."""
    assoc = p.named(f"{p.data['stack']}-master-fip-association")
    port = next(p.by_urn[d]["name"] for d in assoc["dependencies"] if p.by_urn[d]["type"] == PORT)
    if port.endswith("-vip"):
        cluster = next(d for d in _init_config(p) if d["kind"] == "ClusterConfiguration")
        return cluster["controlPlaneEndpoint"].rsplit(":", 1)[0]
    index = int(port.removesuffix("-port").rsplit("-", 1)[1])
    return p.data["outputs"]["masterAddresses"][index]


def _init_config_of(registrations) -> list[dict]:
    return list(yaml.safe_load_all(kubeadm_files(registrations, "t-master-0")["kubeadm/init.yaml"]))


def _init_config(p) -> list[dict]:
    return list(
        yaml.safe_load_all(p.kubeadm_files(f"{p.data['stack']}-master-0")["kubeadm/init.yaml"])
    )
