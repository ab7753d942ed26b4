"""Everything one project holds in the cloud, as plain data, read with openstacksdk.

A test compares it with what the program declared ("exactly this was created") and, after a
destroy, with what was there before ("nothing is left"); `named` narrows it to one stack's
objects when others share the project:

    before = inventory(conn)
    ... pulumi up ...
    created = added(before, inventory(conn))      # {kind: [record, ...]} of new objects only
    ... pulumi destroy ...
    assert added(before, inventory(conn)) == {}

Records are dicts of plain values (str, int, bool, None, sorted lists, dicts), keyed by what a
stack declares (names, CIDRs, rules, policies), plus the ids that tie them together. Every
list is sorted so that two inventories compare with ==.
"""

from __future__ import annotations

KINDS = (
    "servers",
    "ports",
    "floating_ips",
    "routers",
    "networks",
    "subnets",
    "security_groups",
    "server_groups",
    "volumes",
    "load_balancers",
    "application_credentials",
)


def _sorted(records: list[dict]) -> list[dict]:
    return sorted(records, key=lambda r: (str(r.get("name") or ""), str(r.get("id") or "")))


def _server(conn, s) -> dict:
    return {
        "id": s.id,
        "name": s.name,
        "status": s.status,
        "host": s.compute_host,
        "flavor": s.flavor.get("original_name") if s.flavor else None,
        "image_id": (s.image or {}).get("id") or None,
        "user_data": s.user_data,
        "key_name": s.key_name,
        "availability_zone": s.availability_zone,
        "metadata": dict(s.metadata or {}),
        "security_groups": sorted({g["name"] for g in s.security_groups or []}),
        "volumes": sorted(v["id"] for v in s.attached_volumes or []),
        "server_groups": sorted(s.server_groups or []),
    }


def _port(p) -> dict:
    return {
        "id": p.id,
        "name": p.name,
        "network_id": p.network_id,
        "device_id": p.device_id or None,
        "device_owner": p.device_owner or None,
        "fixed_ips": sorted((ip["subnet_id"], ip["ip_address"]) for ip in p.fixed_ips or []),
        "security_group_ids": sorted(p.security_group_ids or []),
        "allowed_address_pairs": sorted(
            (pair["ip_address"], pair.get("mac_address")) for pair in p.allowed_address_pairs or []
        ),
        "port_security_enabled": p.is_port_security_enabled,
        "binding_host": p.binding_host_id or None,
        "status": p.status,
    }


def _rule(r) -> dict:
    return {
        "direction": r.direction,
        "ethertype": r.ether_type,
        "protocol": r.protocol,
        "port_range_min": r.port_range_min,
        "port_range_max": r.port_range_max,
        "remote_ip_prefix": r.remote_ip_prefix,
        "remote_group_id": r.remote_group_id,
        "description": r.description or "",
    }


def _rule_key(rule: dict) -> tuple:
    return tuple(str(rule[k]) for k in sorted(rule))


def _load_balancer(conn, lb) -> dict:
    lbs = conn.load_balancer
    listeners = [
        {
            "id": li.id,
            "name": li.name,
            "protocol": li.protocol,
            "protocol_port": li.protocol_port,
            "allowed_cidrs": sorted(li.allowed_cidrs or []),
            "default_pool_id": li.default_pool_id,
            "provisioning_status": li.provisioning_status,
        }
        for li in lbs.listeners(loadbalancer_id=lb.id)
    ]
    pools = []
    for pool in lbs.pools(loadbalancer_id=lb.id):
        monitor = lbs.get_health_monitor(pool.health_monitor_id) if pool.health_monitor_id else None
        pools.append(
            {
                "id": pool.id,
                "name": pool.name,
                "protocol": pool.protocol,
                "lb_algorithm": pool.lb_algorithm,
                "provisioning_status": pool.provisioning_status,
                "members": sorted(
                    (
                        {
                            "name": m.name,
                            "address": m.address,
                            "protocol_port": m.protocol_port,
                            "subnet_id": m.subnet_id,
                            "provisioning_status": m.provisioning_status,
                        }
                        for m in lbs.members(pool.id)
                    ),
                    key=lambda m: (m["address"], m["protocol_port"]),
                ),
                "monitor": None
                if monitor is None
                else {
                    "name": monitor.name,
                    "type": monitor.type,
                    "delay": monitor.delay,
                    "timeout": monitor.timeout,
                    "max_retries": monitor.max_retries,
                    "url_path": monitor.url_path,
                    "provisioning_status": monitor.provisioning_status,
                },
            }
        )
    return {
        "id": lb.id,
        "name": lb.name,
        "vip_address": lb.vip_address,
        "vip_subnet_id": lb.vip_subnet_id,
        "vip_port_id": lb.vip_port_id,
        "provider": lb.provider,
        "provisioning_status": lb.provisioning_status,
        "listeners": _sorted(listeners),
        "pools": _sorted(pools),
    }


def inventory(conn) -> dict[str, list[dict]]:
    """{kind: [record, ...]} for every kind in KINDS, for the connection's project (and, for
    application credentials, its user)."""
    project = conn.current_project_id
    net = conn.network
    routers = []
    for router in net.routers(project_id=project):
        gateway = router.external_gateway_info or {}
        interfaces = net.ports(device_id=router.id, device_owner="network:router_interface")
        routers.append(
            {
                "id": router.id,
                "name": router.name,
                "external_network_id": gateway.get("network_id"),
                "external_fixed_ips": sorted(
                    ip["ip_address"] for ip in gateway.get("external_fixed_ips") or []
                ),
                "interface_subnet_ids": sorted(
                    ip["subnet_id"] for port in interfaces for ip in port.fixed_ips
                ),
            }
        )
    groups = []
    for group in net.security_groups(project_id=project):
        rules = [_rule(r) for r in net.security_group_rules(security_group_id=group.id)]
        groups.append({"id": group.id, "name": group.name, "rules": sorted(rules, key=_rule_key)})
    return {
        "servers": _sorted([_server(conn, s) for s in conn.compute.servers(details=True)]),
        "ports": _sorted([_port(p) for p in net.ports(project_id=project)]),
        "floating_ips": _sorted(
            [
                {
                    "id": ip.id,
                    "name": ip.floating_ip_address,
                    "floating_network_id": ip.floating_network_id,
                    "description": ip.description,
                    "port_id": ip.port_id,
                    "fixed_ip_address": ip.fixed_ip_address,
                }
                for ip in net.ips(project_id=project)
            ]
        ),
        "routers": _sorted(routers),
        "networks": _sorted(
            [
                {
                    "id": n.id,
                    "name": n.name,
                    "external": n.is_router_external,
                    "mtu": n.mtu,
                    "port_security_enabled": n.is_port_security_enabled,
                }
                for n in net.networks(project_id=project)
            ]
        ),
        "subnets": _sorted(
            [
                {
                    "id": s.id,
                    "name": s.name,
                    "network_id": s.network_id,
                    "cidr": s.cidr,
                    "gateway_ip": s.gateway_ip,
                    "dns_nameservers": sorted(s.dns_nameservers or []),
                    "enable_dhcp": s.is_dhcp_enabled,
                }
                for s in net.subnets(project_id=project)
            ]
        ),
        "security_groups": _sorted(groups),
        "server_groups": _sorted(
            [
                {
                    "id": g.id,
                    "name": g.name,
                    "policy": g.policy,
                    "members": sorted(g.member_ids or []),
                }
                for g in conn.compute.server_groups()
            ]
        ),
        "volumes": _sorted(
            [
                {
                    "id": v.id,
                    "name": v.name,
                    "size": v.size,
                    "status": v.status,
                    "bootable": str(v.is_bootable).lower() == "true",
                    "attached_to": sorted(a["server_id"] for a in v.attachments or []),
                }
                for v in conn.block_storage.volumes(details=True)
            ]
        ),
        "load_balancers": _sorted(
            [
                _load_balancer(conn, lb)
                for lb in conn.load_balancer.load_balancers(project_id=project)
            ]
        ),
        "application_credentials": _sorted(
            [
                {
                    "id": c.id,
                    "name": c.name,
                    "description": c.description,
                    "unrestricted": c.unrestricted,
                    "expires_at": c.expires_at,
                    "roles": sorted(r["name"] for r in c.roles or []),
                    "access_rules": sorted(
                        (r["service"], r["method"], r["path"]) for r in c.access_rules or []
                    ),
                }
                for c in conn.identity.application_credentials(user=conn.current_user_id)
            ]
        ),
    }


def added(before: dict[str, list[dict]], after: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """The objects (by id) in `after` that were not in `before`; kinds with none are left out."""
    out = {}
    for kind in KINDS:
        seen = {r["id"] for r in before.get(kind, [])}
        new = [r for r in after.get(kind, []) if r["id"] not in seen]
        if new:
            out[kind] = new
    return out


def named(inv: dict[str, list[dict]], prefix: str) -> dict[str, list[dict]]:
    """Only the records whose name (or, for floating IPs, description) starts with `prefix`;
    kinds with none are left out. For a test that shares the project with others."""
    out = {}
    for kind, records in inv.items():
        mine = [
            r
            for r in records
            if any(str(r.get(k) or "").startswith(prefix) for k in ("name", "description"))
        ]
        if mine:
            out[kind] = mine
    return out
