"""WorkerPool: one pool of minions (flavor, size, labels, taints), each joined with kubeadm
as soon as the first master is up, in parallel with every other join."""

from __future__ import annotations

import math

import pulumi
import pulumi_openstack as openstack

from addons.gateway import gateway_labels_taints
from components.commands import Access
from components.kube_node import (
    FlannelClient,
    JoinTarget,
    flannel_certificate,
    join_node,
    kube_user_data,
    taint_dicts,
    upgrade_worker,
)
from components.machine import NodeImage, anti_affinity_group, boot_node, machine_port, port_address
from components.network import PrivateNetwork
from settings import Settings, WorkerPoolSettings


# The longest chain of upgrade commands a pool may form. Each link is one more level in
# every dependency walk over the graph (the SDK's own walks recurse), and one more engine
# step on the path of every bring-up, although nothing runs at creation.
MAX_LANE_LENGTH = 50


def upgrade_lanes(count: int, max_unavailable: int) -> int:
    """How many workers of a pool upgrade at once: maxUnavailable (as a count for this pool),
    or more when the pool is so big that maxUnavailable lanes would be longer than
    MAX_LANE_LENGTH."""
    return max(max_unavailable, math.ceil(count / MAX_LANE_LENGTH), 1)


class WorkerPool(pulumi.ComponentResource):
    """`count` workers named `<pool component>-<i>`: removing the last ones drains them."""

    addresses: pulumi.Output[list[str]]
    joins: list[pulumi.Resource]

    def __init__(
        self,
        name: str,
        settings: Settings,
        pool: WorkerPoolSettings,
        *,
        network: PrivateNetwork,
        flannel: FlannelClient,
        access: Access,
        target: JoinTarget,
        ssh_keys: pulumi.Output[list[str]],
        image: NodeImage,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("openstack-k8s:index:WorkerPool", name, None, opts)
        labels = {"openstack-k8s.io/pool": pool.name, **pool.labels}
        taints = taint_dicts(pool.taints)
        if pool.gateway:
            gateway_labels, gateway_taints = gateway_labels_taints()
            labels.update(gateway_labels)
            taints += gateway_taints

        lanes = upgrade_lanes(pool.count, settings.upgrade.lanes(pool.count))
        group = (
            anti_affinity_group(name, self, pool.server_group_policy)
            if pool.server_group_policy
            else None
        )
        addresses = []
        upgrades = []
        self.joins = []
        for i in range(pool.count):
            node = f"{name}-{i}"
            port = machine_port(node, network=network, role="worker", parent=self)
            address = port_address(port)
            addresses.append(address)
            if pool.floating_ip:
                fip = openstack.networking.FloatingIp(
                    f"{node}-fip",
                    pool=settings.external_network,
                    description=f"{node} gateway",
                    opts=pulumi.ResourceOptions(parent=self),
                )
                openstack.networking.FloatingIpAssociate(
                    f"{node}-fip-association",
                    floating_ip=fip.address,
                    port_id=port.id,
                    opts=pulumi.ResourceOptions(parent=self, depends_on=network.way_out),
                )
            node_vm = boot_node(
                node,
                settings,
                pool,
                role="worker",
                index=i,
                image=image,
                port=port,
                address=address,
                user_data=kube_user_data(
                    settings,
                    role="worker",
                    node=node,
                    flannel=flannel,
                    ssh_keys=ssh_keys,
                    network_cidr=network.cidr,
                ),
                network=network,
                access=access,
                parent=self,
                server_group=group,
            )
            connection = node_vm.connection
            join = join_node(
                settings,
                node=node,
                address=address,
                connection=connection,
                target=target,
                ready=node_vm.ready,
                parent=self,
                control_plane=False,
                labels=labels,
                taints=taints,
                instance=node_vm.instance,
            )
            self.joins.append(join)
            flannel_certificate(
                node, flannel=flannel, connection=connection, parent=self, after=[join]
            )
            # Upgrade lanes: worker i follows worker i - lanes of its pool, so adding or
            # removing the last workers never reorders the others. The first of each lane
            # follows the add-ons (the rest of the lane after it): one edge per lane, not
            # one per worker and add-on.
            lane = i - lanes
            upgrades.append(
                upgrade_worker(
                    settings,
                    node=node,
                    connection=connection,
                    target=target,
                    parent=self,
                    after=[join, *([upgrades[lane]] if lane >= 0 else target.addons_rolled_out)],
                )
            )
        self.addresses = pulumi.Output.all(*addresses)
        self.register_outputs({"addresses": self.addresses})
