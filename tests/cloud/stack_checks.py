"""What the cloud tests check about one stack in the local OpenStack, read with openstacksdk.

The stack's state (`pulumi stack export --show-secrets`) says what the program declared and
what ids the cloud gave it; `cloud_mismatches` reads every such object back from the cloud
(never from the state) and names each difference; `leftovers` names what is still in the cloud
after a destroy. Objects are the stack's by id, and by the cluster's name prefix, so that a
stray object of the stack the state forgot is found too.
"""

from __future__ import annotations

import base64
import gzip
import json
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
for extra in (ROOT, ROOT / "tests" / "engine"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from real import CLUSTER_SIDE, Engine, Exclusion, Stack, error_diagnostics, steps  # noqa: E402, F401
from tools.plandiff import REPLACE, Comparison, compare, load_plan  # noqa: E402, F401


# --- the state --------------------------------------------------------------------------------


SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


def revealed(value: Any) -> Any:
    """A `stack export --show-secrets` value with its secrets (`{sig: ..., plaintext: JSON}`)
    replaced by the values they hold."""
    if isinstance(value, dict):
        if value.get(SECRET_SIG[0]) == SECRET_SIG[1] and "plaintext" in value:
            return revealed(json.loads(value["plaintext"]))
        return {k: revealed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [revealed(v) for v in value]
    return value


def state_resources(export: dict[str, Any]) -> list[dict[str, Any]]:
    return export["deployment"].get("resources") or []


def of_type(export: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    """The state's OpenStack resources of one kind (`Instance`, `Port`, ...)."""
    return [
        r
        for r in state_resources(export)
        if r["type"].startswith("openstack:") and r["type"].rsplit(":", 1)[1] == kind
    ]


def urn_name(urn: str) -> str:
    return urn.rsplit("::", 1)[1]


def user_data_text(value: str) -> str:
    """Cloud-config text from what Nova or the state holds: plain, base64, or gzip + base64
    (cloud_init/userdata.render compresses large user-data)."""
    if value.startswith("#cloud-config"):
        return value
    raw = base64.b64decode(value)
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    return raw.decode()


# What differs between two stacks built from the same config: keys, certificates and random
# tokens are made fresh by each, and addresses are Neutron's (or the mock engine's) choice.
_VARYING = [
    (re.compile(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", re.S), r"<PEM \1>"),
    (re.compile(r"ssh-ed25519 [A-Za-z0-9+/=]+"), "<SSH KEY>"),
    (re.compile(r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b"), "<ADDRESS>"),
    (re.compile(r"\b[0-9a-f]{16,}\b"), "<HEX>"),
    (re.compile(r"^(\s*auth_pass) \S+$", re.M), r"\1 <VRRP PASSWORD>"),
]


def deterministic(user_data: str) -> str:
    """The user-data with what varies between two stacks of one config masked."""
    for pattern, mask in _VARYING:
        user_data = pattern.sub(mask, user_data)
    return user_data


# --- the cloud --------------------------------------------------------------------------------


def cluster_servers(conn, cluster: str) -> list:
    """The cluster's servers, filtered by Nova (its name filter is a regular expression): a
    listing of every server in a busy project makes Nova ask Neutron for all their ports in
    one URL, which the local Neutron refuses as too long past ~90 servers."""
    prefix = f"{cluster}-"
    return [
        s
        for s in conn.compute.servers(details=True, name=f"^{re.escape(prefix)}")
        if s.name.startswith(prefix)
    ]


def _same(label: str, cloud: Any, declared: Any, out: list[str]) -> None:
    if cloud != declared:
        out.append(f"{label}: cloud has {cloud!r}, the program declared {declared!r}")


def _servers(conn, export: dict[str, Any], cluster: str, out: list[str]) -> None:
    """Servers: ACTIVE, with the user-data, flavor, metadata, boot source and group declared."""
    instances = {r["id"]: r for r in of_type(export, "Instance")}
    servers = {s.id: s for s in cluster_servers(conn, cluster)}
    _same("servers of the cluster", sorted(servers), sorted(instances), out)
    groups = {g.id: g for g in conn.compute.server_groups()}
    for sid, res in instances.items():
        server, inputs = servers.get(sid), res["inputs"]
        if server is None:
            continue
        label = f"server {server.name}"
        _same(f"{label} status", server.status, "ACTIVE", out)
        _same(f"{label} name", server.name, inputs["name"], out)
        _same(
            f"{label} flavor", (server.flavor or {}).get("original_name"), inputs["flavorName"], out
        )
        _same(f"{label} metadata", dict(server.metadata or {}), inputs.get("metadata") or {}, out)
        _same(
            f"{label} user-data",
            user_data_text(server.user_data or ""),
            user_data_text(inputs["userData"]),
            out,
        )
        volumes = [conn.block_storage.get_volume(v["id"]) for v in server.attached_volumes or []]
        devices = inputs.get("blockDevices") or []
        if devices:
            _same(
                f"{label} boot volumes (size, status, bootable)",
                [(v.size, v.status, str(v.is_bootable).lower()) for v in volumes],
                [(int(d["volumeSize"]), "in-use", "true") for d in devices],
                out,
            )
        else:
            _same(f"{label} image", (server.image or {}).get("id"), inputs["imageId"], out)
            _same(f"{label} volumes", volumes, [], out)
        for hint in inputs.get("schedulerHints") or []:
            group = groups.get(hint.get("group"))
            if group is None or sid not in (group.member_ids or []):
                out.append(f"{label}: not a member of its server group {hint.get('group')}")


def _ports(conn, export: dict[str, Any], cluster: str, out: list[str]) -> None:
    """Ports: the network, security groups and allowed address pairs declared."""
    net, prefix = conn.network, f"{cluster}-"
    ports = {r["id"]: r for r in of_type(export, "Port")}
    cloud_ports = {p.id: p for p in net.ports() if (p.name or "").startswith(prefix)}
    _same("named ports of the cluster", sorted(cloud_ports), sorted(ports), out)
    for pid, res in ports.items():
        port, inputs = cloud_ports.get(pid), res["inputs"]
        if port is None:
            continue
        label = f"port {port.name}"
        _same(f"{label} network", port.network_id, inputs["networkId"], out)
        _same(
            f"{label} security groups",
            sorted(port.security_group_ids),
            sorted(inputs.get("securityGroupIds") or []),
            out,
        )
        _same(
            f"{label} allowed address pairs",
            sorted(p["ip_address"] for p in port.allowed_address_pairs or []),
            sorted(p["ipAddress"] for p in inputs.get("allowedAddressPairs") or []),
            out,
        )
        _same(
            f"{label} subnets",
            sorted(ip["subnet_id"] for ip in port.fixed_ips),
            sorted(ip["subnetId"] for ip in inputs.get("fixedIps") or []),
            out,
        )


def _network(conn, export: dict[str, Any], cluster: str, out: list[str]) -> None:
    """Network, subnet, router with its gateway and interface."""
    net, prefix = conn.network, f"{cluster}-"
    networks = {r["id"]: r for r in of_type(export, "Network")}
    _same(
        "networks of the cluster",
        sorted(n.id for n in net.networks() if (n.name or "").startswith(prefix)),
        sorted(networks),
        out,
    )
    for res in of_type(export, "Subnet"):
        subnet = net.get_subnet(res["id"])
        _same(f"subnet {subnet.name} network", subnet.network_id, res["inputs"]["networkId"], out)
        _same(f"subnet {subnet.name} cidr", subnet.cidr, res["inputs"]["cidr"], out)
        _same(
            f"subnet {subnet.name} dns",
            sorted(subnet.dns_nameservers or []),
            sorted(res["inputs"].get("dnsNameservers") or []),
            out,
        )
    routers = {r["id"]: r for r in of_type(export, "Router")}
    _same(
        "routers of the cluster",
        sorted(r.id for r in net.routers() if (r.name or "").startswith(prefix)),
        sorted(routers),
        out,
    )
    for rid, res in routers.items():
        router = net.get_router(rid)
        _same(
            f"router {router.name} gateway network",
            (router.external_gateway_info or {}).get("network_id"),
            res["inputs"]["externalNetworkId"],
            out,
        )
    for res in of_type(export, "RouterInterface"):
        interfaces = net.ports(
            device_id=res["inputs"]["routerId"], device_owner="network:router_interface"
        )
        _same(
            "router interface subnets",
            sorted(ip["subnet_id"] for p in interfaces for ip in p.fixed_ips),
            [res["inputs"]["subnetId"]],
            out,
        )


def _security_groups(conn, export: dict[str, Any], cluster: str, out: list[str]) -> None:
    """Security groups and every rule the program declared in them."""
    net, prefix = conn.network, f"{cluster}-"
    secgroups = {r["id"]: r for r in of_type(export, "SecGroup")}
    _same(
        "security groups of the cluster",
        sorted(g.id for g in net.security_groups() if (g.name or "").startswith(prefix)),
        sorted(secgroups),
        out,
    )
    declared_rules: dict[str, set[str]] = {gid: set() for gid in secgroups}
    for res in of_type(export, "SecGroupRule"):
        inputs = res["inputs"]
        declared_rules.setdefault(inputs["securityGroupId"], set()).add(res["id"])
        rule = net.get_security_group_rule(res["id"])
        label = f"rule {urn_name(res['urn'])}"
        _same(
            label,
            (
                rule.direction,
                rule.protocol,
                rule.port_range_min,
                rule.port_range_max,
                rule.remote_ip_prefix,
                rule.remote_group_id,
            ),
            (
                inputs["direction"],
                inputs.get("protocol"),
                inputs.get("portRangeMin"),
                inputs.get("portRangeMax"),
                inputs.get("remoteIpPrefix"),
                inputs.get("remoteGroupId"),
            ),
            out,
        )
    for gid, rule_ids in declared_rules.items():
        # Neutron adds the two egress-anywhere rules to every new group by itself.
        extra = [
            (r.direction, r.ether_type, r.protocol, r.remote_ip_prefix, r.remote_group_id)
            for r in net.security_group_rules(security_group_id=gid)
            if r.id not in rule_ids
        ]
        _same(
            f"undeclared rules of group {gid}",
            sorted(extra, key=str),
            [("egress", "IPv4", None, None, None), ("egress", "IPv6", None, None, None)],
            out,
        )


def _floating_ips(conn, export: dict[str, Any], cluster: str, out: list[str]) -> None:
    """Floating IPs: described, and associated with the declared port."""
    net = conn.network
    fips = {r["id"]: r for r in of_type(export, "FloatingIp")}
    cloud_fips = {f.id: f for f in net.ips() if (f.description or "").startswith(cluster)}
    _same("floating IPs of the cluster", sorted(cloud_fips), sorted(fips), out)
    by_address = {f.floating_ip_address: f for f in cloud_fips.values()}
    for res in of_type(export, "FloatingIpAssociate"):
        fip = by_address.get(res["inputs"]["floatingIp"])
        _same(
            f"floating IP {res['inputs']['floatingIp']} port",
            fip and fip.port_id,
            res["inputs"]["portId"],
            out,
        )


def _server_groups(conn, export: dict[str, Any], cluster: str, out: list[str]) -> None:
    """Server groups with their policy."""
    prefix = f"{cluster}-"
    groups = {g.id: g for g in conn.compute.server_groups()}
    declared_groups = {r["id"]: r for r in of_type(export, "ServerGroup")}
    _same(
        "server groups of the cluster",
        sorted(g.id for g in groups.values() if (g.name or "").startswith(prefix)),
        sorted(declared_groups),
        out,
    )
    for gid, res in declared_groups.items():
        group = groups.get(gid)
        _same(
            f"server group {res['inputs']['name']} policy",
            group and group.policy,
            res["inputs"]["policies"],
            out,
        )


def _application_credentials(conn, export: dict[str, Any], cluster: str, out: list[str]) -> None:
    """Application credentials with their access rules."""
    declared_creds = {r["id"]: r for r in of_type(export, "ApplicationCredential")}
    creds = {
        c.id: c
        for c in conn.identity.application_credentials(user=conn.current_user_id)
        if f"-{cluster}-" in (c.name or "")
    }
    _same("application credentials of the cluster", sorted(creds), sorted(declared_creds), out)
    for cid, res in declared_creds.items():
        cred, inputs = creds.get(cid), res["inputs"]
        if cred is None:
            continue
        _same(
            f"credential {cred.name} description", cred.description, inputs.get("description"), out
        )
        _same(
            f"credential {cred.name} access rules",
            sorted((r["service"], r["method"], r["path"]) for r in cred.access_rules or []),
            sorted((r["service"], r["method"], r["path"]) for r in inputs.get("accessRules") or []),
            out,
        )


def _load_balancers(conn, export: dict[str, Any], cluster: str, out: list[str]) -> None:
    """Octavia: the load balancer, its listener with the allowed CIDRs, the pool, its members
    and health monitor, all ACTIVE, as declared."""
    lbs = conn.load_balancer
    declared = {r["id"]: r for r in of_type(export, "LoadBalancer")}
    _same(
        "load balancers of the cluster",
        sorted(lb.id for lb in lbs.load_balancers() if (lb.name or "").startswith(f"{cluster}-")),
        sorted(declared),
        out,
    )
    for lid, res in declared.items():
        lb = lbs.get_load_balancer(lid)
        _same(
            f"load balancer {lb.name}",
            (lb.provisioning_status, lb.vip_subnet_id),
            ("ACTIVE", res["inputs"]["vipSubnetId"]),
            out,
        )
    for res in of_type(export, "Listener"):
        li, inputs = lbs.get_listener(res["id"]), res["inputs"]
        _same(
            f"listener {li.name or li.id}",
            (
                li.provisioning_status,
                li.loadbalancer_ids,
                li.protocol,
                li.protocol_port,
                sorted(li.allowed_cidrs or []),
            ),
            (
                "ACTIVE",
                [inputs["loadbalancerId"]],
                inputs["protocol"],
                int(inputs["protocolPort"]),
                sorted(inputs.get("allowedCidrs") or []),
            ),
            out,
        )
    for res in of_type(export, "Pool"):
        pool, inputs = lbs.get_pool(res["id"]), res["inputs"]
        _same(
            f"pool {pool.name or pool.id}",
            (pool.provisioning_status, pool.protocol, pool.lb_algorithm, pool.health_monitor_id),
            (
                "ACTIVE",
                inputs["protocol"],
                inputs["lbMethod"],
                next(
                    (
                        m["id"]
                        for m in of_type(export, "Monitor")
                        if m["inputs"]["poolId"] == res["id"]
                    ),
                    None,
                ),
            ),
            out,
        )
        _same(
            f"pool {pool.name or pool.id} members",
            sorted(
                (m.address, m.protocol_port, m.provisioning_status) for m in lbs.members(res["id"])
            ),
            sorted(
                (m["inputs"]["address"], int(m["inputs"]["protocolPort"]), "ACTIVE")
                for m in of_type(export, "Member")
                if m["inputs"]["poolId"] == res["id"]
            ),
            out,
        )
    for res in of_type(export, "Monitor"):
        mon, inputs = lbs.get_health_monitor(res["id"]), res["inputs"]
        _same(
            f"monitor {mon.name or mon.id}",
            (mon.provisioning_status, mon.type, mon.url_path, mon.delay, mon.timeout),
            (
                "ACTIVE",
                inputs["type"],
                inputs.get("urlPath"),
                int(inputs["delay"]),
                int(inputs["timeout"]),
            ),
            out,
        )


CHECKS = (
    _servers,
    _ports,
    _network,
    _security_groups,
    _floating_ips,
    _server_groups,
    _application_credentials,
)


def cloud_mismatches(conn, export: dict[str, Any], cluster: str) -> list[str]:
    """Every difference between the stack's OpenStack resources and the cloud, one line each."""
    out: list[str] = []
    for check in CHECKS:
        check(conn, export, cluster, out)
    return out


def cloud_objects(conn, cluster: str) -> dict[str, set[str]]:
    """Ids of everything in the cloud that belongs to the cluster by its name (or, for floating
    IPs, description; boot volumes are found through the cluster's servers)."""
    prefix = f"{cluster}-"
    net = conn.network

    def named(items: Iterable) -> set[str]:
        return {i.id for i in items if (i.name or "").startswith(prefix)}

    servers = cluster_servers(conn, cluster)
    return {
        "servers": {s.id for s in servers},
        "volumes": {v["id"] for s in servers for v in s.attached_volumes or []},
        "ports": named(net.ports()),
        "floating IPs": {f.id for f in net.ips() if (f.description or "").startswith(cluster)},
        "routers": named(net.routers()),
        "networks": named(net.networks()),
        "subnets": named(net.subnets()),
        "security groups": named(net.security_groups()),
        "server groups": named(conn.compute.server_groups()),
        "load balancers": named(conn.load_balancer.load_balancers()),
        "application credentials": {
            c.id
            for c in conn.identity.application_credentials(user=conn.current_user_id)
            if f"-{cluster}-" in (c.name or "")
        },
    }


def leftovers(conn, cluster: str, seen: dict[str, set[str]]) -> dict[str, list[str]]:
    """What of the cluster is still in the cloud: objects by name now, and any id seen while it
    was up that still resolves (volumes by id: a boot volume is nameless)."""
    now = cloud_objects(conn, cluster)
    volumes = set()
    for vid in seen.get("volumes", set()):
        if conn.block_storage.find_volume(vid, ignore_missing=True) is not None:
            volumes.add(vid)
    now["volumes"] = volumes
    return {kind: sorted(ids) for kind, ids in now.items() if ids}


# --- the offline plan -------------------------------------------------------------------------


def offline_plan(out: Path, stack_file: str, sets: Iterable[str]) -> Path:
    """`python -m tools.plan --stack STACK_FILE --set ... --out OUT`: the directory."""
    args = [sys.executable, "-m", "tools.plan", "--stack", stack_file, "--out", str(out)]
    for s in sets:
        args += ["--set", s]
    res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-4000:]
    return out


def offline_diff(old: Path, new: Path) -> Comparison:
    return compare(load_plan(old), load_plan(new))


def left_out(plan_dir: Path, exclusion: Exclusion) -> set[str]:
    """URNs of the offline plan that `--exclude ... --exclude-dependents` leaves out: the
    excluded packages' resources, their children and dependents, transitively."""
    resources = json.loads((plan_dir / "plan.json").read_text())["resources"]
    return exclusion.left_out({r["urn"]: r for r in resources})
