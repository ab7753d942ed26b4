"""What masters and workers share: their first-boot user-data, and how a node joins the
cluster and leaves it (token on the first master, join on the node, drain on delete)."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from collections.abc import Sequence

import pulumi
from pulumi_command import remote

from addons import calico
from cloud_init import kubeadm, script, userdata
from cloud_init.node import KubeNodeSpec, flannel_cert_env, node_cloud_config
from components.commands import (
    SSH_USER,
    certificate_command,
    day2_command,
    delete_command,
    node_command,
    secret_b64,
)
from components.pki import Pem
from components.roles import Role, command_name
from settings import Settings

KUBEADM_INIT_FILE = "kubeadm/init.yaml"
KUBEADM_INIT_CONFIG = f"/etc/kubernetes/{KUBEADM_INIT_FILE}"
# A join token lives long enough for its own join (minted right before it) and a retry soon
# after; a later retry gets a fresh one with `pulumi up --replace` on the token (node-join.sh
# says so when a join fails).
TOKEN_TTL = "30m"
# The step scripts a worker runs to upgrade itself: their text is part of what the upgrade
# token is made for, so a new step script comes with a fresh token.
# Removing two files: a backstop for a node that hangs.
NETWORK_POLICY_TIMEOUT = 60
# Step -> script, in the order upgrade-worker.sh runs them.
WORKER_UPGRADE_STEPS = {
    "CORDON": "upgrade-cordon.sh",
    "NODE": "upgrade-node.sh",
    "UNCORDON": "upgrade-uncordon.sh",
}


@dataclass(frozen=True)
class FlannelClient:
    """How flanneld on every node reaches the discovery etcd."""

    endpoints: pulumi.Output[list[str]]
    etcd_ca: pulumi.Output[str]
    cert: Pem


@dataclass(frozen=True)
class JoinTarget:
    """What a node needs to join: the API endpoint, the pinned CA, and the first master,
    where fresh tokens are made and leaving nodes are drained from."""

    endpoint: pulumi.Output[str]  # host:port
    ca_cert_hash: pulumi.Output[str]
    first_master: remote.ConnectionArgs
    initialized: pulumi.Resource
    # Made on the first master once every master has upgraded: the token workers drain
    # themselves with during a rolling upgrade (and the command that makes it).
    upgrade_credential: remote.Command | None = None
    # The last master's upgrade: workers upgrade only after the whole control plane.
    control_plane_upgraded: pulumi.Resource | None = None
    # The add-on objects that run images pinned per minor: they follow the control plane,
    # and workers follow them (the first worker of each upgrade lane waits for them).
    addons_rolled_out: tuple[pulumi.Resource, ...] = ()


def kube_user_data(
    settings: Settings,
    *,
    role: str,
    node: str,
    flannel: FlannelClient,
    ssh_keys: pulumi.Output[list[str]],
    network_cidr: pulumi.Output[str],
    extra: pulumi.Output[list[dict]] | None = None,
) -> pulumi.Output[str]:
    """The cloud-config a master or worker boots with, as a secret (it carries keys). The
    masters' PKI is not in it: it travels by command (kubeadm-files)."""
    extra = extra if extra is not None else pulumi.Output.from_input([])

    def build(v: dict) -> str:
        spec = KubeNodeSpec(
            role=role,
            name=node,
            kubernetes_version=settings.kubernetes_version,
            package_mirror=settings.package_mirror,
            image_repository=settings.image_repository,
            network_cidr=v["cidr"],
            network_mtu=settings.network.node_mtu,
            pod_cidr=str(settings.pod_cidr),
            discovery_endpoints=tuple(v["endpoints"]),
            etcd_ca_pem=v["ca"],
            flannel_cert_pem=v["cert"],
            flannel_key_pem=v["key"],
        )
        return userdata.render(
            userdata.merge(
                userdata.common(hostname=node, user=SSH_USER, ssh_keys=v["keys"], jump_host=False),
                node_cloud_config(spec),
                *v["extra"],
            ),
            node=node,
        )

    data = pulumi.Output.all(
        endpoints=flannel.endpoints,
        ca=flannel.etcd_ca,
        cert=flannel.cert.cert,
        key=flannel.cert.key,
        keys=ssh_keys,
        cidr=network_cidr,
        extra=extra,
    ).apply(build)
    return pulumi.Output.secret(data)


def join_node(
    settings: Settings,
    *,
    node: str,
    address: pulumi.Output[str],
    connection: remote.ConnectionArgs,
    target: JoinTarget,
    ready: pulumi.Resource,
    parent: pulumi.Resource,
    control_plane: bool,
    labels: dict[str, str],
    taints: list[dict],
    instance: pulumi.Resource,
    after: Sequence[pulumi.Resource] = (),
) -> remote.Command:
    """Token from the first master, join on the node, and a drain that runs on delete.

    The token is made right before its join (after whatever the join waits for: a master
    joins only after the previous one), so a node added months later, or the last of seven
    masters joining one after another, still gets a live one; it is short-lived and only
    this node's join ever sees it. Token, join and drain belong to the VM: a replaced VM is
    drained first, then the new one gets a fresh token and joins.
    """
    token = node_command(
        command_name(node, Role.TOKEN),
        connection=target.first_master,
        script_name="master-join-token.sh",
        env={"TOKEN_TTL": TOKEN_TTL, "TOKEN_TIMEOUT": str(settings.timeouts.join)},
        timeout=settings.timeouts.join,
        parent=parent,
        depends_on=[target.initialized, *after],
        secret_stdout=True,
        instance=instance,
    )
    config = pulumi.Output.all(
        address=address, endpoint=target.endpoint, token=token.stdout, ca_hash=target.ca_cert_hash
    ).apply(
        lambda v: kubeadm.join_config(
            node_name=node,
            node_ip=v["address"],
            endpoint=v["endpoint"],
            token=v["token"].strip(),
            ca_cert_hash=v["ca_hash"],
            control_plane=control_plane,
            labels=labels,
            taints=taints,
            external_cloud=settings.cloud_controller.enabled,
        )
    )
    join = node_command(
        command_name(node, Role.JOIN),
        connection=connection,
        script_name="node-join.sh",
        env={
            "KUBEADM_JOIN_CONFIG_B64": secret_b64(config),
            "JOIN_TIMEOUT": str(settings.timeouts.join),
            # A master's shared CA keys come from kubeadm-files; `kubeadm reset` wipes them.
            "PRESERVE_PKI": "true" if control_plane else "false",
        },
        timeout=settings.timeouts.join,
        parent=parent,
        depends_on=[ready, token, *after],
        instance=instance,
    )
    delete_command(
        command_name(node, Role.DRAIN),
        connection=target.first_master,
        script_name="master-drain-node.sh",
        env={
            "NODE_NAME": node,
            "DRAIN_TIMEOUT": str(settings.timeouts.drain),
            "REMOVE_ETCD_MEMBER": "true" if control_plane else "false",
        },
        timeout=settings.timeouts.drain,
        parent=parent,
        # Deleted before the join, hence before the VM: the node is drained while it exists.
        depends_on=[join],
        instance=instance,
    )
    network_policy_command(settings, node=node, connection=connection, parent=parent, after=[join])
    return join


def network_policy_command(
    settings: Settings,
    *,
    node: str,
    connection: remote.ConnectionArgs,
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource],
) -> remote.Command:
    """`<node>-network-policy`: networkPolicy.enabled turned off reaches the running node (the
    CNI files Calico's DaemonSet wrote are removed, or new pods could not start). Nothing runs
    when the node is created: a new node has no such files, and with policy on the DaemonSet
    writes them."""
    enabled = settings.network_policy.enabled
    return day2_command(
        command_name(node, Role.NETWORK_POLICY),
        connection=connection,
        script_name="node-network-policy.sh",
        env={
            "NETWORK_POLICY": "true" if enabled else "false",
            "CNI_FILES": " ".join(calico.CNI_FILES),
        },
        timeout=NETWORK_POLICY_TIMEOUT,
        parent=parent,
        depends_on=after,
        label=f"network policy {'on' if enabled else 'off'}",
    )


def flannel_certificate(
    node: str,
    *,
    flannel: FlannelClient,
    connection: remote.ConnectionArgs,
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource],
) -> remote.Command:
    """`<node>-flannel-renewal`: flanneld's client certificate, renewed by pulumi-tls before it
    expires, installed on the running node."""
    env = pulumi.Output.all(flannel.cert.cert, flannel.cert.key, flannel.etcd_ca).apply(
        lambda v: flannel_cert_env(cert_pem=v[0], key_pem=v[1], ca_pem=v[2])
    )
    return certificate_command(
        command_name(node, Role.FLANNEL_RENEWAL),
        connection=connection,
        env=env,
        what="flannel client certificate",
        parent=parent,
        depends_on=after,
    )


def taint_dicts(taints) -> list[dict]:
    return [
        {"key": t.key, "value": t.value, "effect": t.effect}
        if t.value
        else {"key": t.key, "effect": t.effect}
        for t in taints
    ]


def upgrade_label(settings: Settings) -> str:
    """What an upgrade acts on: the version, and where packages come from."""
    source = settings.package_mirror or "pkgs.k8s.io"
    return f"kubernetes {settings.kubernetes_version} from {source}"


def upgrade_master(
    settings: Settings,
    *,
    node: str,
    first: bool,
    connection: remote.ConnectionArgs,
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource],
) -> remote.Command:
    """`kubeadm upgrade apply` on the first master, `kubeadm upgrade node` on the others,
    each when kubernetesVersion (or the package mirror) changes."""
    return day2_command(
        command_name(node, Role.UPGRADE),
        connection=connection,
        script_name="upgrade-node.sh",
        env={
            "TARGET_VERSION": settings.kubernetes_version,
            "ROLE": "first-master" if first else "master",
            "PACKAGE_MIRROR": settings.package_mirror or "",
            "UPGRADE_TIMEOUT": str(settings.timeouts.upgrade),
            "NODE_NAME": node,
        },
        timeout=settings.timeouts.upgrade,
        parent=parent,
        label=upgrade_label(settings),
        depends_on=after,
    )


def upgrade_credential(
    settings: Settings,
    *,
    connection: remote.ConnectionArgs,
    node: str,
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource],
) -> remote.Command:
    """A fresh node-upgrader token, made again whenever the version, the mirror, or any
    script a worker upgrades itself with changes: each of those runs the workers' upgrade
    commands again, and a token made for an earlier run may have expired."""
    return node_command(
        command_name(node, Role.UPGRADE_CREDENTIAL),
        connection=connection,
        script_name="master-upgrade-credential.sh",
        env={
            "TARGET_VERSION": settings.kubernetes_version,
            "PACKAGE_MIRROR": settings.package_mirror or "",
            "WORKER_STEPS_SHA256": worker_steps_digest(),
            "TOKEN_DURATION": "48h",
            "CREDENTIAL_TIMEOUT": str(settings.timeouts.join),
        },
        timeout=settings.timeouts.join,
        parent=parent,
        depends_on=after,
        rerun_on_change=True,
        secret_stdout=True,
    )


def worker_steps_digest() -> str:
    """One digest over every script a worker's upgrade command carries."""
    digest = hashlib.sha256()
    for name in ("upgrade-worker.sh", *WORKER_UPGRADE_STEPS.values()):
        digest.update(script(name).encode())
    return digest.hexdigest()


def upgrade_worker(
    settings: Settings,
    *,
    node: str,
    connection: remote.ConnectionArgs,
    target: JoinTarget,
    parent: pulumi.Resource,
    after: Sequence[pulumi.Resource],
) -> remote.Command:
    """Cordon, drain, upgrade, uncordon: one command on the worker, one link in its pool's
    lane, run when the version (or the token made for it) changes."""
    credential = target.upgrade_credential
    assert credential is not None and target.control_plane_upgraded is not None, (
        "the control plane comes first"
    )
    steps = {
        f"UPGRADE_{step}_B64": base64.b64encode(script(name).encode()).decode()
        for step, name in WORKER_UPGRADE_STEPS.items()
    }
    return day2_command(
        command_name(node, Role.UPGRADE),
        connection=connection,
        script_name="upgrade-worker.sh",
        env={
            "NODE_NAME": node,
            "TARGET_VERSION": settings.kubernetes_version,
            "PACKAGE_MIRROR": settings.package_mirror or "",
            "KUBE_API": target.endpoint.apply(lambda e: f"https://{e}"),
            "KUBE_TOKEN": pulumi.Output.secret(credential.stdout.apply(lambda t: t.strip())),
            "DRAIN_TIMEOUT": str(settings.timeouts.drain),
            "UPGRADE_TIMEOUT": str(settings.timeouts.upgrade),
            "READY_TIMEOUT": str(settings.timeouts.ready),
            **steps,
        },
        timeout=settings.timeouts.drain + settings.timeouts.upgrade + settings.timeouts.ready,
        parent=parent,
        label=upgrade_label(settings),
        depends_on=[credential, target.control_plane_upgraded, *after],
    )
