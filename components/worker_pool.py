"""A worker pool: a NodeSet of workers (flavor, size, labels, taints), each joined with
kubeadm as soon as the first master is up, in parallel with every other join; removing the
last ones drains them; upgrades go lane by lane."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.commands import Access
from components.kube_node import (
    FlannelClient,
    JoinTarget,
    KubeArgs,
    UpgradeGate,
    flannel_renewal_step,
    join_steps,
    kube_user_data,
    upgrade_worker_step,
)
from components.machine import GroupSpec
from components.network import PrivateNetwork
from components.node_set import NodeSet
from components.roles import Role

POOL_TYPE = "openstack-k8s:index:WorkerPool"


@dataclass(frozen=True)
class PoolArgs:
    """One pool as Cluster translated it: its VMs, the labels and taints its nodes register
    with, and how many of them upgrade at once."""

    group: GroupSpec
    labels: dict[str, str]
    taints: list[dict]
    lanes: int


def worker_pool(
    name: str,
    pool: PoolArgs,
    kube: KubeArgs,
    *,
    network: PrivateNetwork,
    flannel: FlannelClient,
    access: Access,
    target: JoinTarget,
    gate: UpgradeGate,
    ssh_keys: pulumi.Output[list[str]],
    opts: pulumi.ResourceOptions | None = None,
) -> NodeSet:
    """`count` workers named `<name>-<i>`."""
    workers = NodeSet(POOL_TYPE, name, pool.group, network=network, opts=opts)
    workers.open()
    workers.boot(
        lambda i: kube_user_data(
            kube,
            role="worker",
            node=workers.names[i],
            flannel=flannel,
            ssh_keys=ssh_keys,
            network_cidr=network.cidr,
        ),
        access=access,
    )
    joined = lambda n: [n.steps[Role.JOIN]]  # noqa: E731
    workers.run(
        [
            *join_steps(kube, target, control_plane=False, labels=pool.labels, taints=pool.taints),
            flannel_renewal_step(flannel, after=joined),
            upgrade_worker_step(kube, target, gate, lanes=pool.lanes),
        ]
    )
    workers.register_outputs({"addresses": pulumi.Output.all(*workers.addresses)})
    return workers
