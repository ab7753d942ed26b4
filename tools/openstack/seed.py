"""What the local cloud holds before any test: the service catalog and service user, then what
the project's stacks boot with, under the names Pulumi.dev.yaml and Pulumi.prod.yaml use.

Runs in the OpenStack venv (openstacksdk comes with the services)."""

from __future__ import annotations

import configs
import openstack

# name -> (vCPUs, RAM MiB, disk GiB)
FLAVORS = {
    "m1.small": (1, 2048, 20),
    "m1.medium": (2, 4096, 40),
    "m1.large": (4, 8192, 80),
    "m1.xlarge": (8, 16384, 160),
}
IMAGE = "ubuntu-24.04-server-cloudimg-amd64"
EXTERNAL_NETWORK = "public"
# Documentation range (RFC 5737): floating IPs come from here and never route anywhere.
EXTERNAL_CIDR = "203.0.113.0/24"


def connect() -> openstack.connection.Connection:
    return openstack.connect(
        auth_url=configs.AUTH_URL,
        username="admin",
        password=configs.ADMIN_PASSWORD,
        project_name="admin",
        user_domain_name="Default",
        project_domain_name="Default",
        region_name=configs.REGION,
        interface="public",
    )


def identity() -> None:
    """The service project, one service user with admin and service roles, the catalog."""
    conn = connect()
    ident = conn.identity
    project = ident.find_project("service", domain_id="default") or ident.create_project(
        name="service", domain_id="default"
    )
    user = ident.create_user(
        name=configs.SERVICE_USER,
        password=configs.SERVICE_PASSWORD,
        domain_id="default",
        default_project_id=project.id,
    )
    for role_name in ("admin", "service"):
        role = ident.find_role(role_name) or ident.create_role(name=role_name)
        ident.assign_project_role_to_user(project, user, role)
    services = {s.type: s for s in ident.services()}
    for kind, name, port_name, path in configs.CATALOG:
        if kind in services:
            continue  # keystone-manage bootstrap registered identity
        service = ident.create_service(type=kind, name=name, enabled=True)
        for interface in ("public", "internal", "admin"):
            ident.create_endpoint(
                service_id=service.id,
                interface=interface,
                url=configs.url(port_name) + path,
                region_id=configs.REGION,
            )


def compute_services_up(conn, hosts: list[str]) -> bool:
    up = {s.host for s in conn.compute.services(binary="nova-compute") if s.state == "up"}
    return set(hosts) <= up


def hypervisors(conn) -> int:
    return len(list(conn.compute.hypervisors()))


def ovn_agents_alive(conn, hosts: list[str]) -> bool:
    alive = {
        a.host for a in conn.network.agents() if a.is_alive and "OVN Controller" in a.agent_type
    }
    return set(hosts) <= alive


def volume_service_up(conn) -> bool:
    return any(
        s.binary == "cinder-volume" and s.state == "up" for s in conn.block_storage.services()
    )


def resources(conn) -> None:
    for name, (vcpus, ram, disk) in FLAVORS.items():
        conn.compute.create_flavor(name=name, vcpus=vcpus, ram=ram, disk=disk, is_public=True)
    # The fake virt driver boots nothing: a few bytes stand in for the cloud image.
    conn.image.create_image(
        name=IMAGE,
        data=b"osk8s fake image\n",
        disk_format="raw",
        container_format="bare",
        visibility="public",
        allow_duplicates=True,
    )
    net = conn.network.create_network(
        name=EXTERNAL_NETWORK,
        is_router_external=True,
        provider_network_type="flat",
        provider_physical_network="public",
    )
    conn.network.create_subnet(
        name=f"{EXTERNAL_NETWORK}-subnet",
        network_id=net.id,
        ip_version=4,
        cidr=EXTERNAL_CIDR,
        gateway_ip="203.0.113.1",
        allocation_pools=[{"start": "203.0.113.10", "end": "203.0.113.250"}],
        is_dhcp_enabled=False,
    )
