"""What every VM of the cluster is made of: a Neutron port, a Nova instance, maybe a boot volume.

Ports come first and separately so that every address is known before any instance boots:
user-data can then name its peers (etcd members, haproxy backends) and no instance ever
waits for another instance.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import pulumi
import pulumi_openstack as openstack

from components.network import PrivateNetwork


# Inputs that only matter when a node is created (see machine_instance).
IGNORED_AFTER_CREATE = ["userData", "imageName", "imageId", "blockDevices[0].uuid"]


@dataclass(frozen=True)
class NodeImage:
    """The boot image: its name, and its id when a boot volume has to be built from it."""

    name: str
    id: Optional[pulumi.Output[str]]


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


def machine_instance(
    name: str,
    *,
    cluster: str,
    role: str,
    flavor: str,
    volume_size: Optional[int],
    image: NodeImage,
    port: openstack.networking.Port,
    user_data: pulumi.Output[str],
    network: PrivateNetwork,
    parent: pulumi.Resource,
    server_group: Optional[openstack.compute.ServerGroup] = None,
) -> openstack.compute.Instance:
    """A VM booted from the image, or from a fresh Cinder volume when a size is given.

    userData is only read by cloud-init at first boot, and Nova replaces a server whose
    userData changes: changes are ignored for existing nodes (new nodes get the current
    user-data; running nodes are changed on purpose by remote commands, see upgrades).
    The same holds for the image: clouds re-upload images under the same name, and a new
    image id must not replace a running cluster; new nodes boot the current image.
    """
    block_devices = None
    if volume_size:
        block_devices = [
            openstack.compute.InstanceBlockDeviceArgs(
                uuid=image.id,
                source_type="image",
                destination_type="volume",
                volume_size=volume_size,
                boot_index=0,
                delete_on_termination=True,
            )
        ]
    return openstack.compute.Instance(
        name,
        name=name,
        flavor_name=flavor,
        image_name=None if volume_size else image.name,
        block_devices=block_devices,
        networks=[openstack.compute.InstanceNetworkArgs(port=port.id)],
        user_data=user_data,
        metadata={"openstack-k8s-cluster": cluster, "openstack-k8s-role": role},
        scheduler_hints=[openstack.compute.InstanceSchedulerHintArgs(group=server_group.id)] if server_group else None,
        opts=pulumi.ResourceOptions(
            parent=parent,
            # Bootstrap installs packages: it needs the way out before the VM starts.
            depends_on=[network.router_interface],
            ignore_changes=IGNORED_AFTER_CREATE,
        ),
    )


def anti_affinity_group(name: str, parent: pulumi.Resource) -> openstack.compute.ServerGroup:
    """Spread replicas (masters, discovery members) over hypervisors when the cloud can."""
    return openstack.compute.ServerGroup(
        f"{name}-spread",
        name=name,
        policies="soft-anti-affinity",
        opts=pulumi.ResourceOptions(parent=parent),
    )
