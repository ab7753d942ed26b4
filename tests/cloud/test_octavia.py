"""An Octavia stack for real: `pulumi up` of 3 masters behind an Octavia load balancer, two
worker pools, against the local OpenStack (tools/openstack.sh), then what openstacksdk finds.

Left out of every command: the harness's CLUSTER_SIDE, i.e. every `command:*` and
`kubernetes:*` resource and everything that depends on one. Remote commands run over SSH on
booted VMs and the fake Nova driver boots nothing; Kubernetes objects need the cluster those
commands would form; and both providers are stand-ins here that refuse to create. Everything
of the OpenStack side (network, router, security groups, ports, servers, server groups,
floating IPs, the application credential, the load balancer and its children) is created.

With the noop amphora driver of the local Octavia every object goes ACTIVE (provisioning).
Operating statuses come from amphora heartbeats, which no amphora sends here: the load
balancer, listener, pool and members stay OFFLINE and the monitor reports ONLINE (measured
with openstacksdk on this cloud); the test asserts exactly that, so a cloud that changes it is
noticed.

The load balancer's VIP port must be a real Neutron port: the OpenStack provider reads its
security groups right after the create, and the API's floating IP goes on it. Octavia's stock
noop network driver invents one (and the address 198.51.100.1), and `up` fails with "Error
getting port security groups for openstack_lb_loadbalancer_v2 ... 404 PortNotFound"; the local
cloud's own driver (tools/openstack/osk8s_octavia.py) makes it real, and the test checks that.
"""

from __future__ import annotations

import ipaddress
import secrets
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "engine"))

from real import CLUSTER_SIDE, Engine, Stack  # noqa: E402

API_PORT = 6443
ALLOWED = ["192.0.2.0/24", "198.51.100.0/24"]
CIDR = "10.77.0.0/22"
LB = "openstack:loadbalancer/loadBalancer:LoadBalancer"
# Operating status by object as the noop amphora driver leaves it (no heartbeats).
NOOP_OPERATING = {
    "load balancer": "OFFLINE",
    "listener": "OFFLINE",
    "pool": "OFFLINE",
    "member": "OFFLINE",
    "monitor": "ONLINE",
}


def overrides(cluster: str) -> list[str]:
    """dev's stack file made an Octavia stack: 3 masters, the API's floating IP on the load
    balancer, a general pool and a gateway pool with floating IPs, a network of its own."""
    pools = (
        '[{"name": "general", "count": 1, "flavor": "m1.medium"},'
        ' {"name": "gateway", "count": 1, "flavor": "m1.medium",'
        ' "floatingIp": true, "gateway": true}]'
    )
    return [
        f"clusterName={cluster}",
        "masters.count=3",
        "controlPlane.endpoint=octavia",
        "controlPlane.floatingIp=true",
        f"network.cidr={CIDR}",
        f"apiAllowedCidrs={ALLOWED}".replace("'", '"'),
        'sshAllowedCidrs=["192.0.2.0/24"]',
        f"workerPools={pools}",
    ]


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.build()


def servers(conn, cluster: str) -> list:
    """The cluster's servers, through Nova's name filter (a regex): an unfiltered listing in a
    busy project fails here (Nova's port query to Neutron outgrows the request line)."""
    return list(conn.compute.servers(name=f"^{cluster}-"))


def cloud_ids(conn, cluster: str) -> dict[str, set[str]]:
    """Every object id of the project by kind (what a stack of this program can leave)."""
    net, project = conn.network, conn.current_project_id
    return {
        "servers": {s.id for s in servers(conn, cluster)},
        "server_groups": {g.id for g in conn.compute.server_groups()},
        "volumes": {v.id for v in conn.block_storage.volumes()},
        "networks": {n.id for n in net.networks(project_id=project)},
        "subnets": {s.id for s in net.subnets(project_id=project)},
        "ports": {p.id for p in net.ports(project_id=project)},
        "routers": {r.id for r in net.routers(project_id=project)},
        "security_groups": {g.id for g in net.security_groups(project_id=project)},
        "security_group_rules": {r.id for r in net.security_group_rules(project_id=project)},
        "floating_ips": {f.id for f in net.ips(project_id=project)},
        "load_balancers": {lb.id for lb in conn.load_balancer.load_balancers()},
        "listeners": {li.id for li in conn.load_balancer.listeners()},
        "pools": {p.id for p in conn.load_balancer.pools()},
        "health_monitors": {m.id for m in conn.load_balancer.health_monitors()},
        "application_credentials": {
            c.id for c in conn.identity.application_credentials(user=conn.current_user_id)
        },
    }


def named(conn, cluster: str) -> list[str]:
    """Objects whose name (or description, for floating IPs) says they belong to the cluster."""
    prefix = f"{cluster}-"
    out = [f"server {s.name}" for s in servers(conn, cluster) if s.name.startswith(prefix)]
    out += [
        f"{kind} {o.name}"
        for kind, objects in (
            ("server group", conn.compute.server_groups()),
            ("network", conn.network.networks()),
            ("router", conn.network.routers()),
            ("security group", conn.network.security_groups()),
            ("port", conn.network.ports()),
            ("load balancer", conn.load_balancer.load_balancers()),
        )
        for o in objects
        if (o.name or "").startswith(prefix)
    ]
    out += [
        f"floating ip {f.floating_ip_address} ({f.description})"
        for f in conn.network.ips()
        if (f.description or "").startswith(cluster)
    ]
    out += [
        f"application credential {c.name}"
        for c in conn.identity.application_credentials(user=conn.current_user_id)
        if f"-{cluster}-" in c.name
    ]
    return out


def state_ids(exported: dict) -> dict[str, str]:
    """id -> type of every OpenStack resource in the stack's state."""
    return {
        r["id"]: r["type"]
        for r in exported["deployment"].get("resources", [])
        if r["type"].startswith("openstack:") and r.get("id")
    }


@pytest.mark.cloud
def test_an_octavia_stack_comes_up_as_declared_and_goes_away(engine, openstack_cloud, tmp_path):
    cluster = f"oct{secrets.token_hex(3)}"  # its own names: a crashed earlier run stays apart
    conn = openstack_cloud.connect()
    stack = Stack.from_stack_file(
        engine, tmp_path, "dev", overrides(cluster), name="octavia", env=openstack_cloud.env
    )
    stack.init()
    try:
        stack.up(exclude=CLUSTER_SIDE)
        exported = stack.export()
        ids = state_ids(exported)
        outputs = next(
            r["outputs"]
            for r in exported["deployment"]["resources"]
            if r["type"] == "pulumi:pulumi:Stack"
        )

        # The load balancer: one, amphora, its VIP in the cluster's subnet.
        lbs = [lb for lb in conn.load_balancer.load_balancers() if lb.name == f"{cluster}-api"]
        assert len(lbs) == 1, [lb.name for lb in lbs]
        lb = lbs[0]
        assert ids[lb.id] == LB
        subnet = conn.network.find_subnet(f"{cluster}-subnet")
        assert subnet is not None and subnet.cidr == CIDR
        assert (lb.provider, lb.vip_subnet_id) == ("amphora", subnet.id)
        assert ipaddress.ip_address(lb.vip_address) in ipaddress.ip_network(CIDR)
        vip_port = conn.network.get_port(lb.vip_port_id)  # a real port: NotFound fails here
        assert vip_port.fixed_ips[0]["ip_address"] == lb.vip_address
        statuses = {"load balancer": (lb.provisioning_status, lb.operating_status)}

        # The listener: TCP on the API port, open to the cluster subnet and apiAllowedCidrs only.
        # By the load balancer's own references: the list calls ignore a loadbalancer_id filter.
        listeners = [conn.load_balancer.get_listener(ref["id"]) for ref in lb.listeners]
        assert len(listeners) == 1
        li = listeners[0]
        assert (li.protocol, li.protocol_port) == ("TCP", API_PORT)
        assert sorted(li.allowed_cidrs) == sorted([CIDR, *ALLOWED])
        assert (li.timeout_client_data, li.timeout_member_data) == (3_600_000, 3_600_000)
        statuses["listener"] = (li.provisioning_status, li.operating_status)

        # The pool behind it, one member per master at the master's port address.
        pools = [conn.load_balancer.get_pool(ref["id"]) for ref in lb.pools]
        assert len(pools) == 1
        pool = pools[0]
        assert (pool.protocol, pool.lb_algorithm) == ("TCP", "ROUND_ROBIN")
        assert [li_["id"] for li_ in pool.listeners] == [li.id]
        statuses["pool"] = (pool.provisioning_status, pool.operating_status)
        members = list(conn.load_balancer.members(pool.id))
        master_ports = [conn.network.find_port(f"{cluster}-master-{i}") for i in range(3)]
        master_ips = [p.fixed_ips[0]["ip_address"] for p in master_ports]
        assert sorted(m.address for m in members) == sorted(master_ips)
        assert sorted(master_ips) == sorted(outputs["masterAddresses"])
        for m in members:
            assert (m.protocol_port, m.subnet_id) == (API_PORT, subnet.id)
            statuses[f"member {m.address}"] = (m.provisioning_status, m.operating_status)

        # The health monitor: HTTPS GET /readyz.
        monitor = conn.load_balancer.get_health_monitor(pool.health_monitor_id)
        assert (monitor.type, monitor.http_method, monitor.url_path, monitor.expected_codes) == (
            "HTTPS",
            "GET",
            "/readyz",
            "200",
        )
        assert (monitor.delay, monitor.timeout, monitor.max_retries) == (10, 5, 3)
        assert monitor.max_retries_down == 3
        statuses["monitor"] = (monitor.provisioning_status, monitor.operating_status)
        kinds = {label: label.split(" 10.")[0] for label in statuses}  # "member 10.77.x.y"
        # A member made before the pool's monitor starts NO_MONITOR, one made after it OFFLINE:
        # the program creates both once the pool exists, in either order.
        for label, (provisioning, operating) in statuses.items():
            if kinds[label] == "member" and operating == "NO_MONITOR":
                statuses[label] = (provisioning, "OFFLINE")
        assert statuses == {label: ("ACTIVE", NOOP_OPERATING[k]) for label, k in kinds.items()}
        assert len(statuses) == 4 + 3

        # The API's floating IP sits on the load balancer's VIP port: the kubeconfig's endpoint.
        fips = [f for f in conn.network.ips() if f.description == f"{cluster} API"]
        assert len(fips) == 1
        fip = fips[0]
        assert (fip.port_id, fip.fixed_ip_address) == (lb.vip_port_id, lb.vip_address)
        assert outputs["apiEndpoint"] == f"https://{fip.floating_ip_address}:{API_PORT}"

        # The masters themselves are real servers, their ports on the cluster subnet.
        for i, port in enumerate(master_ports):
            server = conn.compute.find_server(f"{cluster}-master-{i}")
            assert server is not None and server.status == "ACTIVE"
            assert port.device_id == server.id
            assert port.fixed_ips[0]["subnet_id"] == subnet.id

        # Nothing to do right after: the plan agrees with the cloud, the cloud with the state.
        again = stack.preview(exclude=CLUSTER_SIDE, expect_no_changes=True)
        assert again.ok, again.describe()
        assert {s["op"] for s in again.json()["steps"]} == {"same"}, again.describe()
        stack.refresh(exclude=CLUSTER_SIDE, expect_no_changes=True)
        ids[lb.vip_port_id] = "octavia's VIP port"
    finally:
        stack.destroy()

    # Gone from the cloud, not only from the state: every id the stack had, and every name.
    left = cloud_ids(conn, cluster)
    still = {i: t for i, t in ids.items() if any(i in s for s in left.values())}
    assert still == {}
    assert named(conn, cluster) == []
    assert len(ids) > 50  # network, ports, servers, rules, the load balancer and its children
