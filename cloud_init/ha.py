"""The masters' side of the `vip` API endpoint: keepalived moves the VIP, haproxy serves it.

Every master's kube-apiserver binds its own private address on the API port. With
`controlPlane.endpoint: vip` a reserved Neutron port's address (the VIP) is allowed on every
master port (allowed_address_pairs). keepalived (VRRP over unicast: multicast is unreliable on
Neutron) holds the VIP on exactly one master; haproxy on every master binds VIP:port (it may,
with net.ipv4.ip_nonlocal_bind=1, even where the VIP is not held) and balances TCP to all
masters' apiservers.

The VIP follows haproxy, not the apiserver: kubeadm init talks to the VIP before any apiserver
is healthy, so a VIP that waited for a healthy apiserver would never come up. haproxy's own
health checks keep dead apiservers out of rotation instead.

Everything here is a pure function of its arguments: no timestamps, no randomness.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

from cloud_init import kit, script

# keepalived cannot pick an interface by subnet. The boot script keepalived-interface.sh finds
# the interface holding an address in the masters' subnet and writes `$IFACE=<name>` here;
# keepalived.conf includes it and uses `interface $IFACE` (keepalived 2.x parameter substitution).
KEEPALIVED_INTERFACE_FILE = "/etc/keepalived/interface.conf"
KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
HAPROXY_CFG = "/etc/haproxy/haproxy.cfg"
INTERFACE_SCRIPT = "/usr/local/sbin/keepalived-interface.sh"
SYSCTL_FILE = "/etc/sysctl.d/90-apiserver-vip.conf"

# Highest priority goes to the first master; 10 apart so an operator can slot one in by hand.
_TOP_PRIORITY = 200
_PRIORITY_STEP = 10
MAX_MASTERS = (_TOP_PRIORITY - 1) // _PRIORITY_STEP  # keeps every priority in 1..254

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


@dataclass(frozen=True)
class Master:
    """A master as the endpoint sees it: its node name and private address."""

    name: str
    address: str


def _check_masters(masters: Sequence[Master], port: int | None = None) -> None:
    if not masters:
        raise ValueError("masters: at least one master is needed behind the API endpoint")
    if len(masters) > MAX_MASTERS:
        raise ValueError(
            f"masters: at most {MAX_MASTERS} masters are supported, got {len(masters)}"
        )
    names = [m.name for m in masters]
    addresses = [m.address for m in masters]
    for m in masters:
        if not _NAME.match(m.name):
            raise ValueError(f"masters: name {m.name!r} is not a DNS label (a-z, 0-9, '-')")
        try:
            ipaddress.IPv4Address(m.address)
        except ValueError:
            raise ValueError(
                f"masters: {m.name} address {m.address!r} is not an IPv4 address"
            ) from None
    if len(set(names)) != len(names):
        raise ValueError(f"masters: duplicate names in {names}")
    if len(set(addresses)) != len(addresses):
        raise ValueError(f"masters: duplicate addresses in {addresses}")
    if port is not None and not 1 <= port <= 65535:
        raise ValueError(f"port: {port} is not a TCP port (1-65535)")


def _check_vip(vip: str, masters: Sequence[Master]) -> ipaddress.IPv4Address:
    try:
        address = ipaddress.IPv4Address(vip)
    except ValueError:
        raise ValueError(f"vip: {vip!r} is not an IPv4 address") from None
    if vip in {m.address for m in masters}:
        raise ValueError(
            f"vip: {vip} is also a master's address; the VIP needs its own reserved port"
        )
    return address


def priority(index: int) -> int:
    """VRRP priority of the master at `index` (0-based) in the masters list: distinct, 1..254."""
    return _TOP_PRIORITY - _PRIORITY_STEP * index


def haproxy_config(
    *, vip: str, port: int, masters: Sequence[Master], backend_port: int | None = None
) -> str:
    """haproxy.cfg: VIP:port in TCP mode, balanced over every master's address:backend_port
    (default: the same port). On the masters themselves the two must differ: kube-apiserver
    listens on every address of its node, so haproxy cannot bind the VIP on the same port.

    Health checks are HTTPS `GET /readyz` expecting 200 (`check-ssl verify none`: the check
    only asks whether the apiserver is ready, the client's TLS goes through untouched). A plain
    tcp-check would keep an apiserver in rotation that accepts connections but cannot reach
    etcd; /readyz is served to anonymous clients by kubeadm's default RBAC
    (system:public-info-viewer), so it needs no credentials.
    """
    _check_masters(masters, port)
    _check_vip(vip, masters)
    sections: list[tuple[str, list[str]]] = [
        (
            "global",
            [
                "log /dev/log local0",
                "chroot /var/lib/haproxy",
                "stats socket /run/haproxy/admin.sock mode 660 level admin",
                "user haproxy",
                "group haproxy",
                "daemon",
            ],
        ),
        (
            "defaults",
            [
                "mode tcp",
                "log global",
                "option tcplog",
                "option dontlognull",
                "timeout connect 5s",
                # watches, exec and logs -f hold connections for a long time
                "timeout client 1h",
                "timeout server 1h",
                "timeout check 5s",
            ],
        ),
        (
            "frontend kube-apiserver",
            [
                f"bind {vip}:{port}",
                "default_backend kube-apiserver",
            ],
        ),
        (
            "backend kube-apiserver",
            [
                "balance roundrobin",
                "option httpchk",
                "http-check send meth GET uri /readyz",
                "http-check expect status 200",
                "default-server check check-ssl verify none inter 3s fall 3 rise 2",
                *(f"server {m.name} {m.address}:{backend_port or port}" for m in masters),
            ],
        ),
    ]
    return "".join(
        f"{head}\n" + "".join(f"    {line}\n" for line in body) + "\n" for head, body in sections
    )


def _keepalived_dump(blocks: list[tuple[str, Any]], indent: int = 0) -> str:
    """keepalived.conf syntax from data: (keyword, value) pairs; a list value is a { } block
    of pairs, a tuple value is a { } block of bare items, a str value follows the keyword."""
    pad = "    " * indent
    out = []
    for key, value in blocks:
        if isinstance(value, list):
            out.append(f"{pad}{key} {{\n{_keepalived_dump(value, indent + 1)}{pad}}}\n")
        elif isinstance(value, tuple):
            items = "".join(f"{pad}    {item}\n" for item in value)
            out.append(f"{pad}{key} {{\n{items}{pad}}}\n")
        elif value is None:
            out.append(f"{pad}{key}\n")
        else:
            out.append(f"{pad}{key} {value}\n")
    return "".join(out)


def keepalived_config(
    *,
    me: Master,
    masters: Sequence[Master],
    vip: str,
    interface_cidr: str,
    router_id: int,
    auth_pass: str,
) -> str:
    """keepalived.conf for master `me`: one VRRP instance, unicast to the other masters.

    All masters start BACKUP with `nopreempt`; the highest priority (first master) wins the
    first election and the VIP then stays where it is until its holder fails: every move cuts
    the open watch connections of every client.
    """
    _check_masters(masters)
    if me not in masters:
        raise ValueError(f"me: {me} is not one of the masters")
    try:
        subnet = ipaddress.IPv4Network(interface_cidr)
    except ValueError as e:
        raise ValueError(
            f"interface_cidr: {interface_cidr!r} is not an IPv4 network ({e})"
        ) from None
    address = _check_vip(vip, masters)
    if address not in subnet:
        raise ValueError(f"vip: {vip} is not in the masters' subnet {interface_cidr}")
    for m in masters:
        if ipaddress.IPv4Address(m.address) not in subnet:
            raise ValueError(f"masters: {m.name} address {m.address} is not in {interface_cidr}")
    if not 1 <= router_id <= 255:
        raise ValueError(f"router_id: {router_id} is not a VRRP virtual router id (1-255)")
    # VRRP PASS authentication carries at most 8 characters; keepalived would silently truncate.
    # '#' and '!' start comments in keepalived.conf, whitespace splits words: keep to a safe set.
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,8}", auth_pass):
        raise ValueError("auth_pass: must be 1 to 8 of A-Z a-z 0-9 . _ - (VRRP PASS limit)")
    peers = tuple(m.address for m in masters if m != me)
    instance: list[tuple[str, Any]] = [
        ("state", "BACKUP"),
        ("interface", "$IFACE"),
        ("virtual_router_id", str(router_id)),
        ("priority", str(priority(list(masters).index(me)))),
        ("nopreempt", None),
        ("advert_int", "1"),
        ("unicast_src_ip", me.address),
    ]
    if peers:  # keepalived rejects an empty unicast_peer block
        instance.append(("unicast_peer", peers))
    instance += [
        ("authentication", [("auth_type", "PASS"), ("auth_pass", auth_pass)]),
        ("virtual_ipaddress", (f"{vip}/{subnet.prefixlen} dev $IFACE",)),
        ("track_script", ("haproxy",)),
    ]
    config: list[tuple[str, Any]] = [
        (
            "global_defs",
            [
                ("router_id", me.name),
                ("enable_script_security", None),
                ("script_user", "root"),
            ],
        ),
        ("include", KEEPALIVED_INTERFACE_FILE),
        # haproxy dead on this master -> FAULT -> the VIP goes to a master whose haproxy lives
        (
            "vrrp_script haproxy",
            [
                ("script", '"/usr/bin/systemctl is-active --quiet haproxy.service"'),
                ("interval", "2"),
                ("fall", "2"),
                ("rise", "2"),
            ],
        ),
        ("vrrp_instance kube_apiserver", instance),
    ]
    return _keepalived_dump(config)


def ha_cloud_config(
    *,
    me: Master,
    masters: Sequence[Master],
    vip: str,
    port: int,
    backend_port: int | None = None,
    interface_cidr: str,
    router_id: int,
    auth_pass: str,
) -> dict:
    """The VIP part of a master's cloud-config (packages, write_files, runcmd) to merge in.

    The runcmd steps leave haproxy and keepalived running before cloud-init finishes, so they
    are up before the remote `kubeadm init` (haproxy starts with every backend down). The
    configs are written before the packages install; cloud-init installs with
    --force-confold, so the packages keep them.
    """
    haproxy = haproxy_config(vip=vip, port=port, masters=masters, backend_port=backend_port)
    keepalived = keepalived_config(
        me=me,
        masters=masters,
        vip=vip,
        interface_cidr=interface_cidr,
        router_id=router_id,
        auth_pass=auth_pass,
    )

    return {
        "packages": ["haproxy", "keepalived"],
        "write_files": [
            # haproxy binds the VIP on every master, held or not
            kit.file(SYSCTL_FILE, "net.ipv4.ip_nonlocal_bind = 1\n", "0644"),
            kit.file(HAPROXY_CFG, haproxy, "0644"),
            # holds the VRRP password
            kit.file(KEEPALIVED_CONF, keepalived, "0600"),
            kit.file(INTERFACE_SCRIPT, script("keepalived-interface.sh"), "0755"),
        ],
        # Each step fails the boot: a master whose VIP is not set up must not pass the ready gate.
        "runcmd": [
            kit.step(["sysctl", "--load", SYSCTL_FILE]),
            kit.step(
                [
                    "env",
                    f"INTERFACE_CIDR={interface_cidr}",
                    f"OUT={KEEPALIVED_INTERFACE_FILE}",
                    INTERFACE_SCRIPT,
                ]
            ),
            kit.step(["systemctl", "enable", "haproxy.service", "keepalived.service"]),
            # restart: the packages' postinst started them before the sysctl and interface file
            kit.step(["systemctl", "restart", "haproxy.service"]),
            kit.step(["systemctl", "restart", "keepalived.service"]),
        ],
    }
