"""What masters and workers share: their first-boot user-data, and the steps of a node
that joins the cluster and leaves it (token on the first master, join on the node, drain on
delete), keeps its network policy and flannel certificate, and upgrades."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import pulumi
from pulumi_command import remote

from addons import calico
from cloud_init import kubeadm, userdata
from cloud_init.node import CERT_SCRIPT, KubeNodeSpec, flannel_cert_env, node_cloud_config
from components import roles
from components.commands import SSH_USER, CERT_TIMEOUT, Timeouts, secret_b64
from components.node_set import Node, StepSpec
from components.pki import Pem

KUBEADM_INIT_FILE = "kubeadm/init.yaml"
KUBEADM_INIT_CONFIG = f"/etc/kubernetes/{KUBEADM_INIT_FILE}"
# A join token lives long enough for its own join (minted right before it) and a retry soon
# after; a later retry gets a fresh one with `pulumi up --replace` on the token (node-join.sh
# says so when a join fails).
TOKEN_TTL = "30m"
# Removing two files: a backstop for a node that hangs.
NETWORK_POLICY_TIMEOUT = 60


@dataclass(frozen=True)
class KubeArgs:
    """What every master and worker is made with (Cluster translates it from the settings)."""

    kubernetes_version: str
    package_mirror: str | None
    image_repository: str | None
    pod_cidr: str
    node_mtu: int | None
    external_cloud: bool  # the cloud controller manager initialises the nodes
    network_policy: bool
    timeouts: Timeouts

    @property
    def upgrade_label(self) -> str:
        """What an upgrade acts on: the version, and where packages come from."""
        return f"kubernetes {self.kubernetes_version} from {self.package_mirror or 'pkgs.k8s.io'}"


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


@dataclass(frozen=True)
class UpgradeGate:
    """What worker upgrades wait for: the token they drain themselves with (made on the
    first master), the last master's upgrade, and the add-on objects that run images pinned
    per minor (the first worker of each upgrade lane waits for them)."""

    credential: remote.Command
    control_plane_upgraded: pulumi.Resource
    addons_rolled_out: tuple[pulumi.Resource, ...] = ()


def kube_user_data(
    kube: KubeArgs,
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
            kubernetes_version=kube.kubernetes_version,
            package_mirror=kube.package_mirror,
            image_repository=kube.image_repository,
            network_cidr=v["cidr"],
            network_mtu=kube.node_mtu,
            pod_cidr=kube.pod_cidr,
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


def join_steps(
    kube: KubeArgs,
    target: JoinTarget,
    *,
    control_plane: bool,
    labels: dict[str, str],
    taints: list[dict],
    after: Callable[[Node], Sequence[pulumi.Resource]] = lambda n: (),
) -> list[StepSpec]:
    """Token from the first master, join on the node, a drain that runs on delete, and the
    node's network policy. Masters join one after another (stacked etcd grows one member at
    a time: concurrent member adds race), workers all at once.

    The token is made right before its join (after whatever the join waits for), so a node
    added months later, or the last of seven masters joining one after another, still gets a
    live one; it is short-lived and only this node's join ever sees it. Token, join and drain
    belong to the VM: a replaced VM is drained first, then the new one gets a fresh token and
    joins."""
    t = kube.timeouts
    chain = dict(chain=roles.Role.JOIN, first=[target.initialized]) if control_plane else {}
    return [
        StepSpec(
            roles.TOKEN,
            env=lambda n: {"TOKEN_TTL": TOKEN_TTL, "TOKEN_TIMEOUT": str(t.join)},
            timeout=t.join,
            after=lambda n: [target.initialized, *after(n)],
            on=target.first_master,
            **chain,
        ),
        StepSpec(
            roles.JOIN,
            env=lambda n: _join_env(kube, target, n, control_plane, labels, taints),
            timeout=t.join,
            after=lambda n: [n.ready, n.steps[roles.Role.TOKEN], *after(n)],
            **chain,
        ),
        StepSpec(
            roles.DRAIN,
            env=lambda n: {
                "NODE_NAME": n.name,
                "DRAIN_TIMEOUT": str(t.drain),
                "REMOVE_ETCD_MEMBER": "true" if control_plane else "false",
            },
            timeout=t.drain,
            # Deleted before the join, hence before the VM: the node is drained while it exists.
            after=lambda n: [n.steps[roles.Role.JOIN]],
            on=target.first_master,
        ),
        network_policy_step(kube, after=roles.Role.JOIN),
    ]


def _join_env(kube, target, node: Node, control_plane, labels, taints) -> dict:
    token = node.steps[roles.Role.TOKEN]
    config = pulumi.Output.all(
        address=node.address,
        endpoint=target.endpoint,
        token=token.stdout,
        ca_hash=target.ca_cert_hash,
    ).apply(
        lambda v: kubeadm.join_config(
            node_name=node.name,
            node_ip=v["address"],
            endpoint=v["endpoint"],
            token=v["token"].strip(),
            ca_cert_hash=v["ca_hash"],
            control_plane=control_plane,
            labels=labels,
            taints=taints,
            external_cloud=kube.external_cloud,
        )
    )
    return {
        "KUBEADM_JOIN_CONFIG_B64": secret_b64(config),
        "JOIN_TIMEOUT": str(kube.timeouts.join),
        # A master's shared CA keys come from kubeadm-files; `kubeadm reset` wipes them.
        "PRESERVE_PKI": "true" if control_plane else "false",
    }


def member(node: Node) -> remote.Command:
    """The command that made a master a member of the cluster: kubeadm init on the first,
    its control-plane join on the others (what its later steps run after)."""
    return node.steps.get(roles.Role.JOIN) or node.steps[roles.Role.INIT]


def network_policy_step(kube: KubeArgs, *, after: roles.Role) -> StepSpec:
    """`<node>-network-policy`: networkPolicy.enabled turned off reaches the running node (the
    CNI files Calico's DaemonSet wrote are removed, or new pods could not start). Nothing runs
    when the node is created: a new node has no such files, and with policy on the DaemonSet
    writes them. Runs after the node's `after` step (its join, or init)."""
    enabled = kube.network_policy
    return StepSpec(
        roles.NETWORK_POLICY,
        env=lambda n: {
            "NETWORK_POLICY": "true" if enabled else "false",
            "CNI_FILES": " ".join(calico.CNI_FILES),
        },
        timeout=NETWORK_POLICY_TIMEOUT,
        after=lambda n: [n.steps[after]],
        label=lambda n: f"network policy {'on' if enabled else 'off'}",
    )


def certificate_step(step: roles.Step, what: str, env, *, after, chain: bool = False) -> StepSpec:
    """A certificate renewed in state reaches the running node: nothing runs when the node
    is created (its user-data has the certificate), the script runs when the certificate
    (or the script) changes, and restarts what reads it. Its stdin is a secret (the key).
    With chain, one node after another (a renewed etcd certificate restarts etcd)."""
    assert step.script == CERT_SCRIPT and step.mode is roles.Mode.DAY_2
    return StepSpec(
        step,
        env=lambda n: pulumi.Output.secret(env(n)),
        timeout=CERT_TIMEOUT,
        after=after,
        chain=step.role if chain else None,
        label=lambda n: f"renewed {what}",
    )


def flannel_renewal_step(flannel: FlannelClient, *, after) -> StepSpec:
    """`<node>-flannel-renewal`: flanneld's client certificate, renewed by pulumi-tls before it
    expires, installed on the running node."""
    env = pulumi.Output.all(flannel.cert.cert, flannel.cert.key, flannel.etcd_ca).apply(
        lambda v: flannel_cert_env(cert_pem=v[0], key_pem=v[1], ca_pem=v[2])
    )
    return certificate_step(
        roles.FLANNEL_RENEWAL, "flannel client certificate", lambda n: env, after=after
    )


def taint_dicts(taints) -> list[dict]:
    return [
        {"key": t.key, "value": t.value, "effect": t.effect}
        if t.value
        else {"key": t.key, "effect": t.effect}
        for t in taints
    ]


def upgrade_master_step(kube: KubeArgs, *, after: Sequence[pulumi.Resource] = ()) -> StepSpec:
    """`kubeadm upgrade apply` on the first master, `kubeadm upgrade node` on the others,
    one after another, each when kubernetesVersion (or the package mirror) changes."""
    t = kube.timeouts
    return StepSpec(
        roles.UPGRADE_MASTER,
        env=lambda n: {
            "TARGET_VERSION": kube.kubernetes_version,
            "ROLE": "first-master" if n.index == 0 else "master",
            "PACKAGE_MIRROR": kube.package_mirror or "",
            "UPGRADE_TIMEOUT": str(t.upgrade),
            "NODE_NAME": n.name,
        },
        timeout=t.upgrade,
        after=lambda n: [member(n)],
        chain=roles.Role.UPGRADE,
        first=after,
        label=lambda n: kube.upgrade_label,
    )


def upgrade_credential_step(kube: KubeArgs, *, after) -> StepSpec:
    """A fresh node-upgrader token, made again whenever the version, the mirror, or the
    revision of the workers' upgrade step changes: each of those runs the workers' upgrade
    commands again, and a token made for an earlier run may have expired."""
    t = kube.timeouts
    return StepSpec(
        roles.UPGRADE_CREDENTIAL,
        env=lambda n: {
            "TARGET_VERSION": kube.kubernetes_version,
            "PACKAGE_MIRROR": kube.package_mirror or "",
            "WORKER_UPGRADE_REVISION": str(roles.UPGRADE_WORKER.revision),
            "TOKEN_DURATION": "48h",
            "CREDENTIAL_TIMEOUT": str(t.join),
        },
        timeout=t.join,
        after=after,
    )


def upgrade_worker_step(
    kube: KubeArgs, target: JoinTarget, gate: UpgradeGate, *, lanes: int
) -> StepSpec:
    """Cordon, drain, upgrade, uncordon: one command on the worker, one link in its pool's
    upgrade lane, run when the version (or the token made for it) changes.

    Lanes: worker i follows worker i - lanes of its pool, so adding or removing the last
    workers never reorders the others. The first of each lane follows the add-ons (the rest
    of the lane after it): one edge per lane, not one per worker and add-on."""
    t = kube.timeouts

    def env(n: Node) -> dict:
        return {
            "NODE_NAME": n.name,
            "TARGET_VERSION": kube.kubernetes_version,
            "PACKAGE_MIRROR": kube.package_mirror or "",
            "KUBE_API": target.endpoint.apply(lambda e: f"https://{e}"),
            "KUBE_TOKEN": pulumi.Output.secret(gate.credential.stdout.apply(lambda s: s.strip())),
            "DRAIN_TIMEOUT": str(t.drain),
            "UPGRADE_TIMEOUT": str(t.upgrade),
            "READY_TIMEOUT": str(t.ready),
        }

    return StepSpec(
        roles.UPGRADE_WORKER,
        env=env,
        timeout=t.drain + t.upgrade + t.ready,
        after=lambda n: [gate.credential, gate.control_plane_upgraded, n.steps[roles.Role.JOIN]],
        chain=roles.Role.UPGRADE,
        lanes=lanes,
        first=gate.addons_rolled_out,
        label=lambda n: kube.upgrade_label,
    )
