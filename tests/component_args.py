"""Small hand-made arguments for planning one component on its own under the mock engine
(the `under_mocks` fixture): what the rest of the cluster would hand it, made of stand-ins.

Each function must be called inside the build that `under_mocks` runs: an Output belongs to
the run that makes it."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_random as random
from pulumi_command import remote

from components.cluster import (
    node_image,
    backup_args,
    control_plane_args,
    kube_args,
    network_args,
    pool_args,
)
from components.control_plane import ControlPlane
from components.commands import Access
from components.kube_node import FlannelClient, JoinTarget, UpgradeGate
from components.machine import NodeImage
from components.network import PrivateNetwork
from components.node_set import NodeSet
from components.pki import Pem, kubernetes_pki
from components.worker_pool import worker_pool
from planning import Plan
from tools.plan import user_data_text

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


def _flannel() -> FlannelClient:
    return FlannelClient(
        endpoints=pulumi.Output.from_input(["https://10.0.0.5:2379"]),
        etcd_ca=pulumi.Output.from_input("-----BEGIN CERTIFICATE-----\netcd ca\n"),
        cert=_pem("flannel"),
    )


DISCOVERY_READY = "t-discovery-ready"


def control_plane(settings, *, network: PrivateNetwork | None = None) -> ControlPlane:
    """The masters of `settings`, as Cluster makes them, on their own network, with the
    Kubernetes PKI (real, under the mock) and stand-ins for the discovery node; etcd
    snapshots stay on the node (the upload credential is Cluster's own)."""
    network = network or PrivateNetwork("t-network", network_args(settings))
    keys = pulumi.ComponentResource("test:index:Keys", "t-keys")
    backup = backup_args(settings, None)
    return ControlPlane(
        f"{settings.name}-master",
        control_plane_args(settings, node_image(settings), backup),
        kube_args(settings),
        network=network,
        pki=kubernetes_pki(settings.name, keys),
        flannel=_flannel(),
        access=access(),
        discovery_ready=[random.RandomId(DISCOVERY_READY, byte_length=4)],
        ssh_keys=pulumi.Output.from_input(["ssh-ed25519 AAAA test"]),
    )


def worker_pools(
    settings,
    *,
    network: PrivateNetwork | None = None,
    masters: ControlPlane | None = None,
) -> dict[str, NodeSet]:
    """Every worker pool of `settings`, as Cluster makes them, on its own network; joining
    `masters` (on the same network), or stand-ins for the first master and the upgrade gate.
    The discovery node is a stand-in."""
    network = network or PrivateNetwork("t-network", network_args(settings))
    if masters is not None:
        target, gate = masters.join_target, masters.upgrade_gate()
    else:
        to_first_master = access().to_node(FIRST_MASTER)
        gate = UpgradeGate(
            credential=remote.Command(CREDENTIAL, connection=to_first_master, create="true"),
            control_plane_upgraded=random.RandomId(CONTROL_PLANE_UPGRADED, byte_length=4),
        )
        target = JoinTarget(
            endpoint=pulumi.Output.from_input(f"{FIRST_MASTER}:6443"),
            ca_cert_hash=pulumi.Output.from_input("sha256:" + "0" * 64),
            first_master=to_first_master,
            initialized=random.RandomId(INITIALIZED, byte_length=4),
        )
    flannel = _flannel()
    kube = kube_args(settings)
    image = node_image(settings)  # as Cluster makes it: by id, or looked up by name
    return {
        pool.name: worker_pool(
            f"{settings.name}-worker-{pool.name}",
            pool_args(settings, pool, image),
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


def kubeadm_files(registrations, master: str) -> dict[str, str]:
    """The files a master's kubeadm-files command installs under /etc/kubernetes (PKI, and
    the init configuration on the first master), read out of its stdin."""
    import base64
    import io
    import re
    import tarfile

    (cmd,) = [r for r in registrations if r.name == f"{master}-kubeadm-files"]
    stdin = cmd.raw_inputs["stdin"]
    b64 = re.search(r"^export KUBEADM_FILES_TAR_B64=(\S+)$", stdin, re.M).group(1).strip("'")
    with tarfile.open(fileobj=io.BytesIO(base64.b64decode(b64)), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}


class ComponentPlan(Plan):
    """A component's registrations, read the way tests read a whole plan (planning.Plan):
    resources by name, the dependency graph, unredacted inputs, user-data; made in this
    process, so `raw` is the registration's own inputs rather than a fresh evaluation."""

    def __init__(self, evaluation, stack: str = "dev"):
        resources = [
            {
                "urn": r.urn,
                "type": r.type,
                "name": r.name,
                "parent": r.parent,
                "dependencies": r.dependencies,
                "inputs": r.inputs,
                "options": r.options,
            }
            for r in evaluation.registrations
        ]
        outputs = {k: value for k, (value, _) in evaluation.outputs.items()}
        super().__init__(
            Path("/nonexistent"), {"stack": stack, "resources": resources, "outputs": outputs}
        )
        self._raw = {r.name: r.raw_inputs for r in evaluation.registrations}

    def raw(self, names: list[str]) -> dict[str, dict]:
        return {n: self._raw[n] for n in names}

    def user_data(self, instance: str) -> str:
        return user_data_text(self._raw[instance]["userData"])
