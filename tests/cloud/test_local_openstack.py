"""The local OpenStack itself: what the cloud tests and the real-engine tests rely on.

Each test names its objects with a fresh prefix, deletes them at the end, and checks with the
inventory that nothing it made is left (so the inventory's "nothing left" is proven too).
"""

from __future__ import annotations

import base64
import concurrent.futures
import threading
import time
import uuid

import openstack.exceptions
import pytest

from cloud.inventory import added, inventory, named
from cloud.local_openstack import exported_env

pytestmark = pytest.mark.cloud

SERVER_WAIT = 180
LB_WAIT = 120


@pytest.fixture
def conn(openstack_cloud):
    return openstack_cloud.connect()


@pytest.fixture
def prefix():
    return f"t-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def tenant(conn, prefix):
    """A tenant network behind a router with a gateway on `public`; removed afterwards, and
    the test then checks that its project holds nothing more than before."""
    before = inventory(conn)
    net = conn.network.create_network(name=f"{prefix}-net")
    subnet = conn.network.create_subnet(
        name=f"{prefix}-subnet",
        network_id=net.id,
        ip_version=4,
        cidr="10.77.0.0/24",
        dns_nameservers=["10.77.0.2"],
    )
    public = conn.network.find_network("public", ignore_missing=False)
    router = conn.network.create_router(
        name=f"{prefix}-router", external_gateway_info={"network_id": public.id}
    )
    conn.network.add_interface_to_router(router, subnet=subnet.id)
    group = conn.network.create_security_group(name=f"{prefix}-sg")
    conn.network.create_security_group_rule(
        security_group_id=group.id,
        direction="ingress",
        ethertype="IPv4",
        protocol="tcp",
        port_range_min=6443,
        port_range_max=6443,
        remote_ip_prefix="192.0.2.0/24",
    )
    yield {
        "net": net,
        "subnet": subnet,
        "router": router,
        "group": group,
        "public": public,
        "before": before,
    }
    for server in conn.compute.servers(name=f"^{prefix}"):
        conn.compute.delete_server(server)
        conn.compute.wait_for_delete(server, wait=SERVER_WAIT)
    for ip in conn.network.ips(project_id=conn.current_project_id):
        if ip.description == prefix:
            conn.network.delete_ip(ip)
    for port in conn.network.ports(network_id=net.id):
        if not port.device_owner.startswith("network:"):
            conn.network.delete_port(port)
    conn.network.remove_interface_from_router(router, subnet=subnet.id)
    conn.network.delete_router(router)
    conn.network.delete_network(net)
    conn.network.delete_security_group(group)
    for group in conn.compute.server_groups():
        if group.name.startswith(prefix):
            conn.compute.delete_server_group(group)
    assert named(added(before, inventory(conn)), prefix) == {}


def boot(conn, name, port_id, **extra):
    image = conn.image.find_image("ubuntu-24.04-server-cloudimg-amd64", ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.medium", ignore_missing=False)
    args = {"image_id": image.id, **extra}
    if "block_device_mapping_v2" in extra:
        args.pop("image_id")
    server = conn.compute.create_server(
        name=name, flavor_id=flavor.id, networks=[{"port": port_id}], **args
    )
    return conn.compute.wait_for_server(server, wait=SERVER_WAIT, interval=0.5)


def test_env_names_what_was_seeded(openstack_cloud, conn):
    """`env` exports what the Pulumi provider reads, and the names the stack files use exist:
    external network with a floating IP subnet, image, the four flavors, unlimited quotas."""
    env = exported_env()
    for key in (
        "OS_AUTH_URL",
        "OS_USERNAME",
        "OS_PASSWORD",
        "OS_PROJECT_NAME",
        "OS_USER_DOMAIN_NAME",
        "OS_PROJECT_DOMAIN_NAME",
        "OS_REGION_NAME",
    ):
        assert env[key], key
    public = conn.network.find_network(env["OSK8S_EXTERNAL_NETWORK"], ignore_missing=False)
    assert public.is_router_external and public.provider_network_type == "flat"
    cidrs = [s.cidr for s in conn.network.subnets(network_id=public.id)]
    assert cidrs == ["203.0.113.0/24"]
    assert conn.image.find_image(env["OSK8S_IMAGE"], ignore_missing=False).status == "active"
    flavors = {f.name: (f.vcpus, f.ram) for f in conn.compute.flavors()}
    assert {"m1.small", "m1.medium", "m1.large", "m1.xlarge", env["OSK8S_FLAVOR"]} <= set(flavors)
    project = conn.current_project_id
    compute = conn.compute.get_quota_set(project)
    assert (compute.instances, compute.cores, compute.ram, compute.server_groups) == (
        -1,
        -1,
        -1,
        -1,
    )
    network = conn.network.get_quota(project)
    assert (
        network.ports,
        network.floating_ips,
        network.security_groups,
        network.security_group_rules,
    ) == (
        -1,
        -1,
        -1,
        -1,
    )
    hosts = {h.name for h in conn.compute.hypervisors()}
    assert len(hosts) >= 3, hosts


def test_server_boots_behind_a_router_and_takes_a_floating_ip(conn, tenant, prefix):
    """A server goes ACTIVE on a port of a tenant network (bound by a real OVN chassis named
    like its Nova host); a floating IP associates; a second one on the same port is a 409;
    the inventory shows exactly what was made."""
    user_data = "#cloud-config\nhostname: probe\n"
    port = conn.network.create_port(
        name=f"{prefix}-port",
        network_id=tenant["net"].id,
        security_groups=[tenant["group"].id],
        allowed_address_pairs=[{"ip_address": "10.77.0.250"}],
    )
    began = time.monotonic()
    server = boot(
        conn, f"{prefix}-server", port.id, user_data=base64.b64encode(user_data.encode()).decode()
    )
    print(f"server ACTIVE after {time.monotonic() - began:.1f} s on {server.compute_host}")
    assert server.status == "ACTIVE"
    bound = conn.network.get_port(port.id)
    assert bound.binding_host_id == server.compute_host and bound.binding_vif_type == "ovs"
    fip = conn.network.create_ip(
        floating_network_id=tenant["public"].id, port_id=port.id, description=prefix
    )
    assert fip.fixed_ip_address == bound.fixed_ips[0]["ip_address"]
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.create_ip(
            floating_network_id=tenant["public"].id, port_id=port.id, description=prefix
        )

    made = named(added(tenant["before"], inventory(conn)), prefix)
    [srv] = made["servers"]
    assert srv["status"] == "ACTIVE" and base64.b64decode(srv["user_data"]).decode() == user_data
    assert srv["security_groups"] == [f"{prefix}-sg"]
    [made_fip] = made["floating_ips"]
    assert (made_fip["port_id"], made_fip["fixed_ip_address"]) == (port.id, fip.fixed_ip_address)
    [router] = made["routers"]
    assert router["external_network_id"] == tenant["public"].id and router["external_fixed_ips"]
    assert router["interface_subnet_ids"] == [tenant["subnet"].id]
    [server_port] = made["ports"]
    assert server_port["id"] == port.id
    assert server_port["security_group_ids"] == [tenant["group"].id]
    assert server_port["allowed_address_pairs"] == [("10.77.0.250", port.mac_address)]
    assert server_port["device_id"] == server.id
    [group] = made["security_groups"]
    assert {
        "direction": "ingress",
        "ethertype": "IPv4",
        "protocol": "tcp",
        "port_range_min": 6443,
        "port_range_max": 6443,
        "remote_ip_prefix": "192.0.2.0/24",
        "remote_group_id": None,
        "description": "",
    } in group["rules"]
    [subnet] = made["subnets"]
    assert (subnet["cidr"], subnet["dns_nameservers"]) == ("10.77.0.0/24", ["10.77.0.2"])


def test_anti_affinity_spreads_three_servers_and_refuses_a_fourth(conn, tenant, prefix):
    """Three fake compute hosts: strict anti-affinity places three servers on three hosts,
    and a fourth has nowhere to go (the prod masters' group policy, for real)."""
    group = conn.compute.create_server_group(name=f"{prefix}-masters", policy="anti-affinity")
    hosts = []
    for index in range(3):
        port = conn.network.create_port(name=f"{prefix}-port-{index}", network_id=tenant["net"].id)
        server = boot(conn, f"{prefix}-m{index}", port.id, scheduler_hints={"group": group.id})
        hosts.append(server.compute_host)
    assert len(set(hosts)) == 3, hosts
    port = conn.network.create_port(name=f"{prefix}-port-3", network_id=tenant["net"].id)
    with pytest.raises(openstack.exceptions.ResourceFailure):
        boot(conn, f"{prefix}-m3", port.id, scheduler_hints={"group": group.id})
    [made] = [g for g in inventory(conn)["server_groups"] if g["id"] == group.id]
    assert made["policy"] == "anti-affinity" and len(made["members"]) == 4


def test_boot_from_image_to_volume(conn, tenant, prefix):
    """Nova creates a volume from the image in Cinder (fake backend), attaches it, and the
    server goes ACTIVE: what a pool with volumeSize does."""
    image = conn.image.find_image("ubuntu-24.04-server-cloudimg-amd64", ignore_missing=False)
    port = conn.network.create_port(name=f"{prefix}-port", network_id=tenant["net"].id)
    bdm = [
        {
            "boot_index": 0,
            "uuid": image.id,
            "source_type": "image",
            "destination_type": "volume",
            "volume_size": 40,
            "delete_on_termination": True,
        }
    ]
    server = boot(conn, f"{prefix}-bfv", port.id, block_device_mapping_v2=bdm)
    assert server.status == "ACTIVE"
    made = added(tenant["before"], inventory(conn))
    [volume] = [v for v in made["volumes"] if v["attached_to"] == [server.id]]
    assert (volume["size"], volume["status"], volume["bootable"]) == (40, "in-use", True)
    assert volume["attached_to"] == [server.id]
    assert named(made, prefix)["servers"][0]["volumes"] == [volume["id"]]


def settler(lbs, lb):
    """Waits until the load balancer is ACTIVE again (Octavia refuses changes until then)."""

    def settled():
        return lbs.wait_for_load_balancer(
            lb.id, status="ACTIVE", failures=["ERROR"], interval=0.5, wait=LB_WAIT
        )

    return settled


def api_pool(lbs, lb, prefix, settled, **listener_args):
    """The API endpoint's shape on `lb`: a TCP 6443 listener and its round-robin pool."""
    listener = lbs.create_listener(
        name=f"{prefix}-api",
        loadbalancer_id=lb.id,
        protocol="TCP",
        protocol_port=6443,
        **listener_args,
    )
    settled()
    pool = lbs.create_pool(
        name=f"{prefix}-pool", listener_id=listener.id, protocol="TCP", lb_algorithm="ROUND_ROBIN"
    )
    settled()
    return pool


def test_octavia_load_balancer_goes_active(conn, tenant, prefix):
    """The amphora provider with noop drivers: load balancer, listener with allowed CIDRs,
    pool, member and HTTPS monitor each reach ACTIVE, as the octavia endpoint stack needs."""
    lbs = conn.load_balancer
    lb = lbs.create_load_balancer(name=f"{prefix}-lb", vip_subnet_id=tenant["subnet"].id)
    try:
        settled = settler(lbs, lb)
        assert settled().provider == "amphora"
        pool = api_pool(lbs, lb, prefix, settled, allowed_cidrs=["10.77.0.0/24", "192.0.2.0/24"])
        lbs.create_member(
            pool,
            name=f"{prefix}-m0",
            address="10.77.0.10",
            protocol_port=6443,
            subnet_id=tenant["subnet"].id,
        )
        settled()
        lbs.create_health_monitor(
            name=f"{prefix}-hm",
            pool_id=pool.id,
            type="HTTPS",
            delay=5,
            timeout=3,
            max_retries=3,
            url_path="/readyz",
        )
        settled()
        [made] = [r for r in inventory(conn)["load_balancers"] if r["id"] == lb.id]
        assert made["provisioning_status"] == "ACTIVE"
        # The VIP is a real Neutron port (the provider reads its security groups).
        vip_port = conn.network.get_port(made["vip_port_id"])
        assert [ip["ip_address"] for ip in vip_port.fixed_ips] == [made["vip_address"]]
        assert vip_port.network_id == tenant["net"].id
        [li] = made["listeners"]
        assert (
            li["allowed_cidrs"] == ["10.77.0.0/24", "192.0.2.0/24"]
            and li["provisioning_status"] == "ACTIVE"
        )
        [p] = made["pools"]
        assert p["provisioning_status"] == "ACTIVE"
        assert [(m["address"], m["provisioning_status"]) for m in p["members"]] == [
            ("10.77.0.10", "ACTIVE")
        ]
        assert (
            p["monitor"]["type"],
            p["monitor"]["url_path"],
            p["monitor"]["provisioning_status"],
        ) == (
            "HTTPS",
            "/readyz",
            "ACTIVE",
        )
    finally:
        lbs.delete_load_balancer(lb.id, cascade=True)
        lbs.wait_for_delete(lbs.get_load_balancer(lb.id), interval=0.5, wait=LB_WAIT)
    assert list(conn.network.ports(network_id=tenant["net"].id, device_owner="Octavia")) == []


def test_application_credential_name_is_unique(conn, prefix):
    """Keystone refuses a second application credential with the same name (409): the
    program names them per project and stack for this reason."""
    before = inventory(conn)
    user = conn.current_user_id
    cred = conn.identity.create_application_credential(
        user=user, name=f"{prefix}-ccm", description="probe", unrestricted=False
    )
    try:
        with pytest.raises(openstack.exceptions.ConflictException):
            conn.identity.create_application_credential(user=user, name=f"{prefix}-ccm")
        made = named(added(before, inventory(conn)), prefix)
        assert [(c["name"], c["unrestricted"]) for c in made["application_credentials"]] == [
            (f"{prefix}-ccm", False)
        ]
    finally:
        conn.identity.delete_application_credential(user, cred)
    assert named(added(before, inventory(conn)), prefix) == {}


def test_octavia_member_delete_and_cascade(conn, tenant, prefix):
    """Deleting members one by one, down to none, leaves the load balancer ACTIVE, and a cascade
    delete then removes it and its VIP port. The last member's delete used to fail in the
    worker (CalculateDelta: KeyError on the VIP's network, the member in ERROR) because the
    noop network driver answered with invented network ids."""
    lbs = conn.load_balancer
    lb = lbs.create_load_balancer(name=f"{prefix}-lb", vip_subnet_id=tenant["subnet"].id)
    try:
        settled = settler(lbs, lb)
        settled()
        pool = api_pool(lbs, lb, prefix, settled)
        members = []
        for n, address in enumerate(["10.77.0.10", "10.77.0.11"]):
            members.append(
                lbs.create_member(
                    pool,
                    name=f"{prefix}-m{n}",
                    address=address,
                    protocol_port=6443,
                    subnet_id=tenant["subnet"].id,
                )
            )
            settled()
        assert sorted(m.provisioning_status for m in lbs.members(pool)) == ["ACTIVE", "ACTIVE"]

        left = ["10.77.0.11", "10.77.0.10"]
        for member in members:
            lbs.delete_member(member, pool)
            settled()
            left.pop()
            # A member whose delete failed stays listed, in ERROR.
            assert [(m.address, m.provisioning_status) for m in lbs.members(pool)] == [
                (address, "ACTIVE") for address in left
            ]
        assert left == []
        assert lbs.get_load_balancer(lb.id).provisioning_status == "ACTIVE"
    finally:
        lbs.delete_load_balancer(lb.id, cascade=True)
        lbs.wait_for_delete(lbs.get_load_balancer(lb.id), interval=0.5, wait=LB_WAIT)
    assert [r for r in inventory(conn)["load_balancers"] if r["id"] == lb.id] == []
    assert list(conn.network.ports(network_id=tenant["net"].id, device_owner="Octavia")) == []


APP_CREDENTIALS_AT_ONCE = 20


def test_application_credentials_created_concurrently(openstack_cloud, conn, prefix):
    """Twenty application credentials created at the same moment by two users with different
    roles (ten each, every request from its own connection) all succeed, each with exactly its
    creator's roles. Keystone's auth-context middleware keeps the request's token on the one
    shared middleware object (`self.token`), so in a threaded worker a request could take a
    concurrent request's token: "Invalid application credential: Could not find role
    assignment with role: <service role>" when that token had a role its user lacks here."""
    import openstack

    ident = conn.identity
    project = ident.create_project(name=f"{prefix}-p", domain_id="default")
    password = uuid.uuid4().hex
    user = ident.create_user(name=f"{prefix}-u", password=password, domain_id="default")
    try:
        ident.assign_project_role_to_user(project, user, ident.find_role("member"))
        env = openstack_cloud.env

        def as_member():
            return openstack.connect(
                auth_url=env["OS_AUTH_URL"],
                username=user.name,
                password=password,
                project_name=project.name,
                user_domain_name="Default",
                project_domain_name="Default",
                region_name=env["OS_REGION_NAME"],
                interface=env["OS_INTERFACE"],
            )

        half = APP_CREDENTIALS_AT_ONCE // 2
        conns = [openstack_cloud.connect() for _ in range(half)] + [
            as_member() for _ in range(half)
        ]
        for c in conns:
            c.authorize()  # tokens first: the concurrent requests are the creations alone
        expected = {
            n: {"admin", "manager", "member", "reader"} if n < half else {"member", "reader"}
            for n in range(APP_CREDENTIALS_AT_ONCE)
        }
        start = threading.Barrier(APP_CREDENTIALS_AT_ONCE)

        def create(n):
            start.wait(timeout=60)
            try:
                return conns[n].identity.create_application_credential(
                    user=conns[n].current_user_id, name=f"{prefix}-c{n}", unrestricted=False
                )
            except openstack.exceptions.SDKException as error:
                return error

        with concurrent.futures.ThreadPoolExecutor(APP_CREDENTIALS_AT_ONCE) as pool:
            results = list(pool.map(create, range(APP_CREDENTIALS_AT_ONCE)))
        try:
            assert [str(r) for r in results if isinstance(r, Exception)] == []
            assert {n: {role["name"] for role in r.roles} for n, r in enumerate(results)} == (
                expected
            )
        finally:
            for n, cred in enumerate(results):
                if not isinstance(cred, Exception):
                    conns[n].identity.delete_application_credential(conns[n].current_user_id, cred)
    finally:
        ident.delete_user(user)
        ident.delete_project(project)
    assert ident.find_user(f"{prefix}-u") is None
    assert ident.find_project(f"{prefix}-p") is None
