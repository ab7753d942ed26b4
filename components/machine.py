"""What every VM of the cluster is made of: a Neutron port, a Nova instance, maybe a boot volume.

Ports come first and separately so that every address is known before any instance boots:
user-data can then name its peers (etcd members, haproxy backends) and no instance ever
waits for another instance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_openstack as openstack
import pulumi_random as random
from pulumi_command import remote

from components.commands import Access, ready_gate
from components.network import PrivateNetwork


# Inputs that only matter when a node is created (see machine_instance). The image is not
# among them: it is pinned per node instead (node_image), so no ignored path can be missing
# on one side when a node gains or loses its boot volume.
IGNORED_AFTER_CREATE = ["userData", "flavorName", "schedulerHints"]


@dataclass(frozen=True)
class NodeImage:
    """The boot image: the name the stack gives, and the id it resolves to today (a UUID
    given as such, or the newest image of that name)."""

    name: str
    id: pulumi.Output[str]


def machine_port(
    name: str,
    *,
    network: PrivateNetwork,
    role: str,
    parent: pulumi.Resource,
    allowed_addresses: Sequence[pulumi.Input[str]] = (),
) -> openstack.networking.Port:
    """The node's port on the private network, in its role's security group."""
    return openstack.networking.Port(
        f"{name}-port",
        name=name,
        network_id=network.network_id,
        fixed_ips=[openstack.networking.PortFixedIpArgs(subnet_id=network.subnet_id)],
        security_group_ids=[network.security_groups[role].id],
        # keepalived moves the VIP between masters; port security must let it through.
        allowed_address_pairs=[
            openstack.networking.PortAllowedAddressPairArgs(ip_address=a) for a in allowed_addresses
        ]
        or None,
        admin_state_up=True,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def port_address(port: openstack.networking.Port) -> pulumi.Output[str]:
    return port.all_fixed_ips.apply(lambda ips: ips[0])


def node_image(name: str, image: NodeImage, parent: pulumi.Resource) -> pulumi.Output[str]:
    """The image id a node was created from, kept for the node's life.

    Clouds re-upload images under the same name; a new id must not replace running nodes,
    while new nodes (and replaced ones, through `pulumi up --replace <node>-image`) boot the
    current image. The id is held as a keeper whose later changes are ignored: it is
    recorded once, when the node is first created.
    """
    pin = random.RandomId(
        f"{name}-image",
        byte_length=4,
        keepers={"imageId": image.id},
        opts=pulumi.ResourceOptions(parent=parent, ignore_changes=["keepers"]),
    )
    return pin.keepers.apply(lambda k: k["imageId"])


def _boot_volume(
    group: GroupSpec, image_id: pulumi.Output[str]
) -> list[openstack.compute.InstanceBlockDeviceArgs] | None:
    """A fresh Cinder volume from the image, when the group gives a size."""
    if not group.volume_size:
        return None
    return [
        openstack.compute.InstanceBlockDeviceArgs(
            uuid=image_id,
            source_type="image",
            destination_type="volume",
            volume_size=group.volume_size,
            volume_type=group.volume_type,
            boot_index=0,
            delete_on_termination=True,
        )
    ]


def machine_instance(
    name: str,
    group: GroupSpec,
    *,
    index: int,
    port: openstack.networking.Port,
    user_data: pulumi.Output[str],
    network: PrivateNetwork,
    parent: pulumi.Resource,
    server_group: openstack.compute.ServerGroup | None = None,
) -> openstack.compute.Instance:
    """A VM booted from the image, or from a fresh Cinder volume when a size is given.

    userData is only read by cloud-init at first boot, and Nova replaces a server whose
    userData changes: changes are ignored for existing nodes (new nodes get the current
    user-data; running nodes are changed on purpose by remote commands, see upgrades).
    A flavor change is ignored too: Nova resizes in place with a reboot, and all masters
    (or discovery members) rebooting together lose etcd quorum; existing nodes take a new
    flavor one at a time, by replacement (docs/lifecycle.md).

    Placement (the server group's hint) is a creation-time choice too: a new policy makes a
    new group for new nodes and never moves a running one. The zone is not: a node moved to
    another zone is replaced, and its boot volume is made in its zone.

    The image is always passed by id (a name may match several images, or none when the
    stack gives a UUID). Replacement is delete-before-replace: the new server is handed the
    port, which Nova refuses while the old server still holds it.
    """
    image_id = node_image(name, group.image, parent)
    hint = openstack.compute.InstanceSchedulerHintArgs
    return openstack.compute.Instance(
        name,
        name=name,
        flavor_name=group.flavor,
        image_id=None if group.volume_size else image_id,
        block_devices=_boot_volume(group, image_id),
        networks=[openstack.compute.InstanceNetworkArgs(port=port.id)],
        availability_zone=group.zone(index),
        user_data=user_data,
        metadata={
            **group.metadata,
            "openstack-k8s-cluster": group.cluster,
            "openstack-k8s-role": group.role,
        },
        scheduler_hints=[hint(group=server_group.id)] if server_group else None,
        opts=pulumi.ResourceOptions(
            parent=parent,
            # Bootstrap installs packages: it needs the way out before the VM starts.
            depends_on=network.way_out,
            ignore_changes=IGNORED_AFTER_CREATE,
            delete_before_replace=True,
        ),
    )


def anti_affinity_group(
    name: str, parent: pulumi.Resource, policy: str = "soft-anti-affinity"
) -> openstack.compute.ServerGroup:
    """Spread replicas (masters, discovery members, a pool that asks) over hypervisors:
    soft-anti-affinity when the cloud can, anti-affinity to refuse a boot rather than share."""
    return openstack.compute.ServerGroup(
        f"{name}-spread",
        name=name,
        policies=policy,
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True)
class FloatingIps:
    """Floating IPs from `pool` on the first node only (`<set>-fip`, the jump host) or on
    every node (`<node>-fip`, a gateway pool). `description` may name the node: {node}."""

    pool: str
    every_node: bool
    description: str


@dataclass(frozen=True)
class GroupSpec:
    """What every VM of a node set is made of: the group's settings as Cluster translated
    them, and nothing else."""

    role: str  # discovery / master / worker: its security group, and the VMs' metadata
    count: int
    cluster: str  # the cluster's name, in every VM's metadata
    image: NodeImage
    flavor: str
    ready_timeout: int
    volume_size: int | None = None
    volume_type: str | None = None
    zones: tuple[str, ...] = ()  # round-robin over the nodes; none: the cloud picks
    server_group: str | None = None  # the policy of the set's server group; None: no group
    floating_ips: FloatingIps | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)  # Nova metadata of every VM

    def zone(self, index: int) -> str | None:
        return self.zones[index % len(self.zones)] if self.zones else None


def floating_ip(
    name: str,
    *,
    pool: str,
    description: str,
    port_id: pulumi.Input[str],
    network: PrivateNetwork,
    parent: pulumi.Resource,
) -> tuple[openstack.networking.FloatingIp, openstack.networking.FloatingIpAssociate]:
    """`<name>` from the external pool, associated with a port once the router is there."""
    fip = openstack.networking.FloatingIp(
        name, pool=pool, description=description, opts=pulumi.ResourceOptions(parent=parent)
    )
    association = openstack.networking.FloatingIpAssociate(
        f"{name}-association",
        floating_ip=fip.address,
        port_id=port_id,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=network.way_out),
    )
    return fip, association


@dataclass(frozen=True)
class BootedNode:
    """A node's VM, how remote commands reach it, and the gate that says it has booted."""

    instance: openstack.compute.Instance
    connection: remote.ConnectionArgs
    ready: remote.Command


def boot_node(
    name: str,
    group: GroupSpec,
    *,
    index: int,
    port: openstack.networking.Port,
    address: pulumi.Output[str],
    user_data: pulumi.Output[str],
    network: PrivateNetwork,
    access: Access,
    parent: pulumi.Resource,
    server_group: openstack.compute.ServerGroup | None = None,
    jump_host: bool = False,
    depends_on: Sequence[pulumi.Resource] = (),
) -> BootedNode:
    """The one way every node boots: instance on its port, then the ready gate (reached
    through the jump host, or the jump host itself)."""
    instance = machine_instance(
        name,
        group,
        index=index,
        port=port,
        user_data=user_data,
        network=network,
        parent=parent,
        server_group=server_group,
    )
    connection = access.to_jump_host() if jump_host else access.to_node(address)
    ready = ready_gate(
        name,
        access=access,
        connection=connection,
        address=address,
        instance=instance,
        timeout=group.ready_timeout,
        parent=parent,
        depends_on=depends_on,
        through_jump_host=not jump_host,
    )
    return BootedNode(instance=instance, connection=connection, ready=ready)
