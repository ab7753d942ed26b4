"""Small hand-made arguments for planning one component on its own under the mock engine
(the `under_mocks` fixture): what the rest of the cluster would hand it, made of stand-ins.

Each function must be called inside the build that `under_mocks` runs: an Output belongs to
the run that makes it."""

from __future__ import annotations

import pulumi
import pulumi_random as random
from pulumi_command import remote

from components.cluster import _node_image, kube_args, network_args, pool_args
from components.commands import Access
from components.kube_node import FlannelClient, JoinTarget, UpgradeGate
from components.machine import NodeImage
from components.network import PrivateNetwork
from components.node_set import NodeSet
from components.pki import Pem
from components.worker_pool import worker_pool

JUMP_HOST = "203.0.113.9"
FIRST_MASTER = "10.0.0.10"
# Stand-ins the pool's commands wait for: names the assertions look for.
INITIALIZED = "t-initialized"
CONTROL_PLANE_UPGRADED = "t-control-plane-upgraded"
CREDENTIAL = "t-upgrade-credential"


def image() -> NodeImage:
    return NodeImage(name="ubuntu-24.04", id=pulumi.Output.from_input("image-id"))


def access() -> Access:
    return Access(
        private_key=pulumi.Output.secret("deploy-key"),
        jump_host=pulumi.Output.from_input(JUMP_HOST),
    )


def _pem(what: str) -> Pem:
    return Pem(
        cert=pulumi.Output.from_input(f"-----BEGIN CERTIFICATE-----\n{what}\n"),
        key=pulumi.Output.secret(f"-----BEGIN PRIVATE KEY-----\n{what}\n"),
        public_key=pulumi.Output.from_input(f"{what} public"),
    )


def worker_pools(settings, *, network: PrivateNetwork | None = None) -> dict[str, NodeSet]:
    """Every worker pool of `settings`, as Cluster makes them, on its own network and with
    stand-ins for the discovery node, the first master and the upgrade gate."""
    network = network or PrivateNetwork("t-network", network_args(settings))
    to_first_master = access().to_node(FIRST_MASTER)
    initialized = random.RandomId(INITIALIZED, byte_length=4)
    gate = UpgradeGate(
        credential=remote.Command(CREDENTIAL, connection=to_first_master, create="true"),
        control_plane_upgraded=random.RandomId(CONTROL_PLANE_UPGRADED, byte_length=4),
    )
    target = JoinTarget(
        endpoint=pulumi.Output.from_input(f"{FIRST_MASTER}:6443"),
        ca_cert_hash=pulumi.Output.from_input("sha256:" + "0" * 64),
        first_master=to_first_master,
        initialized=initialized,
    )
    flannel = FlannelClient(
        endpoints=pulumi.Output.from_input(["https://10.0.0.5:2379"]),
        etcd_ca=pulumi.Output.from_input("-----BEGIN CERTIFICATE-----\netcd ca\n"),
        cert=_pem("flannel"),
    )
    kube = kube_args(settings)
    node_image = _node_image(settings)  # as Cluster makes it: by id, or looked up by name
    return {
        pool.name: worker_pool(
            f"{settings.name}-worker-{pool.name}",
            pool_args(settings, pool, node_image),
            kube,
            network=network,
            flannel=flannel,
            access=access(),
            target=target,
            gate=gate,
            ssh_keys=pulumi.Output.from_input(["ssh-ed25519 AAAA test"]),
        )
        for pool in settings.worker_pools
    }


def waits_for(registrations, name: str) -> set[str]:
    """Names of every resource `name` waits for, transitively (the engine's ordering)."""
    by_urn = {r.urn: r for r in registrations}
    (start,) = [r for r in registrations if r.name == name]
    seen: set[str] = set()
    stack = list(start.dependencies)
    while stack:
        urn = stack.pop()
        if urn in seen or urn not in by_urn:
            continue
        seen.add(urn)
        stack.extend(by_urn[urn].dependencies)
    return {by_urn[u].name for u in seen}
