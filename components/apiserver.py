"""The API server's hardening: Secrets encrypted at rest with a key the program makes, an
audit log, OIDC sign-in. New masters get it from kubeadm (init config, and the cluster's
ClusterConfiguration for joins); running masters get every change through one command each,
one master after another."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_random as random
from pulumi_command import remote

from cloud_init import apiserver
from cloud_init.userdata import tar_b64
from components import roles
from components.commands import run_step, secret_b64
from components.kube_node import member
from components.node_set import Node, StepSpec
from components.roles import command_name

RECONFIGURE_TIMEOUT = 600
# One step of a key rotation on one master (master-encryption-rotate.sh): install its file,
# the kubelet restarts kube-apiserver, /readyz answers (or, for the rewrite, every Secret
# written again).
ROTATE_TIMEOUT = 600


def encryption_key_name(generation: int) -> str:
    """The key's name in the EncryptionConfiguration (etcd values are prefixed with it)."""
    return f"key{generation}"


@dataclass(frozen=True)
class AuditArgs:
    policy: str  # the policy's text (the default one, or the stack's own file)
    max_age_days: int
    max_backups: int
    max_size_mb: int


@dataclass(frozen=True)
class ApiServerArgs:
    """apiServer as Cluster translated it: encryption at rest (its provider and the key's
    generation), the audit log, OIDC sign-in (the flags' values), each None when off."""

    encryption_provider: str | None
    key_generation: int
    audit: AuditArgs | None
    oidc: dict | None


@dataclass(frozen=True)
class KeyRotation:
    """From the previous generation's key to this one's, in the order Kubernetes documents
    for several API servers: the EncryptionConfiguration every master gets at each step."""

    generation: int
    add: pulumi.Output[str]  # old key writes, new key reads
    promote: pulumi.Output[str]  # new key writes, old key reads
    drop: pulumi.Output[str]  # new key only: the file every master keeps (ApiServerConfig.files)

    @property
    def key_name(self) -> str:
        return encryption_key_name(self.generation)


@dataclass(frozen=True)
class ApiServerConfig:
    files: list[tuple[str, pulumi.Output[str]]]  # (path under /etc/kubernetes, content)
    args: list[dict]
    volumes: list[dict]
    label: str  # what a running master is reconfigured to, in the clear
    rotation: KeyRotation | None = None  # keyGeneration > 1: the previous key is still rotated out
    encrypted: bool = False


def _encryption_key(name: str, generation: int, parent: pulumi.Resource) -> pulumi.Output[str]:
    """A generation's 32-byte key (base64, a secret). Generation 1 keeps the resource name it
    had before rotation existed, so the stacks made then keep their key."""
    suffix = "" if generation == 1 else f"-{generation}"
    key = random.RandomBytes(
        f"{name}-encryption-key{suffix}", length=32, opts=pulumi.ResourceOptions(parent=parent)
    )
    return key.base64


def _encryption_files(
    name: str,
    args: ApiServerArgs,
    parent: pulumi.Resource,
) -> tuple[pulumi.Output[str], KeyRotation | None]:
    """The EncryptionConfiguration every master keeps (this generation's key only) and, from
    generation 2 on, the rotation from the previous key: that key stays in the program for
    the whole generation, so an up that failed midway can still finish the rotation."""
    generation = args.key_generation

    def config(*keys: tuple[int, pulumi.Output[str]]) -> pulumi.Output[str]:
        names = [encryption_key_name(g) for g, _ in keys]
        return pulumi.Output.secret(
            pulumi.Output.all(*[k for _, k in keys]).apply(
                lambda secrets: apiserver.encryption_config(
                    args.encryption_provider, list(zip(names, secrets, strict=True))
                )
            )
        )

    new = _encryption_key(name, generation, parent)
    if generation == 1:
        return config((1, new)), None
    old = _encryption_key(name, generation - 1, parent)
    final = config((generation, new))
    return final, KeyRotation(
        generation=generation,
        add=config((generation - 1, old), (generation, new)),
        promote=config((generation, new), (generation - 1, old)),
        drop=final,
    )


def api_server_config(name: str, args: ApiServerArgs, parent: pulumi.Resource) -> ApiServerConfig:
    files: list[tuple[str, pulumi.Output[str]]] = []
    rotation = None
    encrypted = args.encryption_provider is not None
    if encrypted:
        final, rotation = _encryption_files(name, args, parent)
        files.append((apiserver.ENCRYPTION_FILE, final))
    audit = None
    if args.audit is not None:
        files.append((apiserver.AUDIT_POLICY_FILE, pulumi.Output.from_input(args.audit.policy)))
        audit = {
            "max_age_days": args.audit.max_age_days,
            "max_backups": args.audit.max_backups,
            "max_size_mb": args.audit.max_size_mb,
            "policy_sha256": hashlib.sha256(args.audit.policy.encode()).hexdigest()[:12],
        }
    flags = apiserver.extra_args(encryption=encrypted, audit=audit, oidc=args.oidc)
    # The key's generation shows from 2 on (a new key is a new file on every master); at 1
    # the label stays what it was.
    key = f" {encryption_key_name(rotation.generation)}" if rotation else ""
    parts = [
        f"encryption {args.encryption_provider}{key}" if encrypted else "encryption off",
        f"audit {audit['policy_sha256']} {audit['max_age_days']}d" if audit else "audit off",
        f"oidc {args.oidc['issuer_url']}" if args.oidc else "oidc off",
    ]
    return ApiServerConfig(
        files=files,
        args=flags,
        volumes=apiserver.extra_volumes(encryption=encrypted, audit=audit is not None),
        label="apiserver: " + ", ".join(parts),
        rotation=rotation,
        encrypted=encrypted,
    )


def apiserver_step(
    config: ApiServerConfig, kubeadm_config, *, first: Sequence[pulumi.Resource]
) -> StepSpec:
    """`<master>-apiserver`: bring a running master's API server to `config`, one master
    after another (the first one first, after `first`): its files, then kube-apiserver's
    static pod regenerated by kubeadm from a ClusterConfiguration with these flags (the
    first master also stores it in the cluster, so upgrades and joins keep them). A master
    that already runs with them is left alone: at bring-up this checks and does nothing.
    `kubeadm_config(node)`: the configuration that master would be initialised with."""
    contents = pulumi.Output.all(*[c for _, c in config.files])
    files = pulumi.Output.secret(
        contents.apply(lambda c: tar_b64(zip([p for p, _ in config.files], c, strict=True)))
    )

    def env(n: Node) -> dict:
        return {
            "FILES_TAR_B64": files,
            "KUBEADM_CONFIG_B64": secret_b64(kubeadm_config(n)),
            "APISERVER_FLAGS": "".join(f"--{a['name']}={a['value']}\n" for a in config.args),
            "FIRST_MASTER": "true" if n.index == 0 else "false",
            "ENCRYPTED": "true" if config.encrypted else "false",
            "RECONFIGURE_TIMEOUT": str(RECONFIGURE_TIMEOUT),
        }

    return StepSpec(
        roles.APISERVER,
        env=env,
        timeout=RECONFIGURE_TIMEOUT,
        after=lambda n: [member(n)],
        chain=roles.Role.APISERVER,
        first=first,
        label=lambda n: config.label,
    )


@dataclass(frozen=True)
class RotatingMaster:
    """A master the key rotation goes through, and what must exist before it is touched (the
    first master's init; another master's PKI files: a master that has not joined yet has no
    API server, and the step leaves it alone)."""

    node: str
    connection: remote.ConnectionArgs
    after: list[pulumi.Resource]


# Step -> its role and what it does, in the clear: each goes through every master, one after
# another; the rewrite comes between promote and drop.
_STEPS = {
    "add": (roles.ENCRYPTION_ADD, "add {new} as a reading key"),
    "promote": (roles.ENCRYPTION_PROMOTE, "make {new} the writing key"),
    "drop": (roles.ENCRYPTION_DROP, "drop {old}"),
}


def rotate_encryption_key(
    name: str,
    rotation: KeyRotation,
    masters: list[RotatingMaster],
    parent: pulumi.Resource,
) -> remote.Command:
    """The rotation to `rotation.generation`'s key, as run-once commands (their names carry
    the generation, so each rotation runs once): `<master>-encryption-add-<N>` on every
    master, then `-promote-` on every master, `<name>-encryption-rewrite-<N>` once on the first
    master, then `-drop` on every master. One master restarts at a time, and no master
    writes with a key another master cannot read yet. Returns the last step: what the
    masters' steady `-apiserver` commands (and joins) wait for."""
    g = rotation.generation
    new, old = encryption_key_name(g), encryption_key_name(g - 1)

    def step(master: RotatingMaster, phase: str, previous: list[pulumi.Resource]) -> remote.Command:
        row, what = _STEPS[phase]
        return run_step(
            row,
            command_name(master.node, row.role, g),
            connection=master.connection,
            env={
                "PHASE": phase,
                "KEY_NAME": new,
                "ENCRYPTION_CONFIG_B64": secret_b64(getattr(rotation, phase)),
                "FINAL_CONFIG_B64": secret_b64(rotation.drop),
                "ROTATE_TIMEOUT": str(ROTATE_TIMEOUT),
            },
            timeout=ROTATE_TIMEOUT,
            parent=parent,
            after=[*master.after, *previous],
            label=f"encryption: {what.format(new=new, old=old)}",
        )

    previous: list[pulumi.Resource] = []
    for phase in ("add", "promote"):
        for m in masters:
            previous = [step(m, phase, previous)]
    # Every master now writes with the new key and reads both: rewrite once, through any of them.
    previous = [
        run_step(
            roles.ENCRYPTION_REWRITE,
            command_name(name, roles.Role.ENCRYPTION_REWRITE, g),
            connection=masters[0].connection,
            env={"PHASE": "rewrite", "KEY_NAME": new, "ROTATE_TIMEOUT": str(ROTATE_TIMEOUT)},
            timeout=ROTATE_TIMEOUT,
            parent=parent,
            after=previous,
            label=f"encryption: rewrite every Secret with {new}",
        )
    ]
    for m in masters:
        previous = [step(m, "drop", previous)]
    return previous[0]
