"""What each remote command does, as the program names it: `<node>-<role>` (or, for a command
that acts on the whole cluster, `<cluster>-<role>`).

The names are the state's keys, so they never change; the tools that read a plan
(tools/mockengine.py, tools/bench.py, tools/plandiff.py) ask `role_of(name)` instead of each
matching suffixes of its own."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from enum import StrEnum

from cloud_init import backup, steps
from cloud_init.discovery import REMOVE_MEMBER_SCRIPT
from cloud_init.jump import WAIT_SSHD_SCRIPT
from cloud_init.node import CERT_SCRIPT


class Role(StrEnum):
    # Bring-up, in the order a node sees it.
    SSHD = "sshd"  # the jump host waits for the node's sshd
    READY = "ready"  # cloud-init finished on the node
    STEP_KIT = "step-kit"  # the scripts of the steps that run again, installed on the node
    KUBEADM_FILES = "kubeadm-files"  # PKI and kubeadm config onto a master
    INIT = "init"  # kubeadm init on the first master
    TOKEN = "token"  # a bootstrap token, minted right before its join
    JOIN = "join"  # kubeadm join (control plane or worker)
    ETCD_BACKUP = "etcd-backup"  # the etcd backup timer and scripts on a node
    # Day 2: nothing runs at creation, the script runs when what it applies changes.
    APISERVER = "apiserver"  # the API server's flags and files on a running master
    # Rotating the Secrets encryption key, once per key generation (the name ends in it).
    ENCRYPTION_ADD = "encryption-add"  # the new key read on a master
    ENCRYPTION_PROMOTE = "encryption-promote"  # the new key written on a master
    ENCRYPTION_REWRITE = "encryption-rewrite"  # every Secret written again, once
    ENCRYPTION_DROP = "encryption-drop"  # the old key gone from a master
    UPGRADE = "upgrade"  # a node's Kubernetes version
    UPGRADE_CREDENTIAL = "upgrade-credential"  # what worker upgrades authenticate with
    ETCD_RENEWAL = "etcd-renewal"  # a renewed etcd member certificate
    FLANNEL_RENEWAL = "flannel-renewal"  # a renewed flannel client certificate
    NETWORK_POLICY = "network-policy"  # Calico's CNI files gone from a node when policy is off
    # Run only when deleted.
    DRAIN = "drain"  # the node leaves the cluster before its VM goes
    ETCD_LEAVE = "etcd-leave"  # a discovery member leaves etcd when discovery shrinks
    CLOUD_CLEANUP = "cloud-cleanup"  # load balancers and volumes go before the CCM and CSI


class Mode(StrEnum):
    """When a step's command runs (components/commands.run_step turns each into options)."""

    # When the command is made, and again only on a new VM (the instance is its trigger):
    # never because a setting or a script changed.
    RUN_ONCE = "run-once"
    # When made, and again whenever its trigger changes (what it applies, its revision).
    APPLY = "apply"
    # Nothing when made (a new node already is what the settings say); runs when its trigger
    # changes on a running node.
    DAY_2 = "day-2"
    # Nothing until deleted: then it runs (a node leaves the cluster before its VM goes).
    ON_DELETE = "on-delete"
    # Once, by a command whose name ends in the generation of what it applies.
    PER_GENERATION = "per-generation"


@dataclass(frozen=True)
class Step:
    """One row of the lifecycle table: what a command is, whatever node it runs for.

    `revision` is raised by hand when the script's behaviour changes: it is part of the
    trigger of an APPLY or DAY_2 step (docs/lifecycle.md), while an edit of the script's text
    alone re-runs nothing. `uses`: scripts the step's script runs in turn."""

    role: Role
    mode: Mode
    script: str
    revision: int = 1
    # The command belongs to the node's VM: a new VM gets a new command, which runs again.
    per_vm: bool = False
    secret_stdout: bool = False
    uses: tuple[str, ...] = ()
    # The nodes it runs on (discovery, master, worker): where its script must be in the kit.
    nodes: tuple[str, ...] = ()


# The table. Steps that run the same role on different nodes with different scripts (a
# master's and a worker's upgrade) are two rows.
SSHD = Step(Role.SSHD, Mode.RUN_ONCE, WAIT_SSHD_SCRIPT, per_vm=True)
READY = Step(Role.READY, Mode.RUN_ONCE, "node-ready.sh", per_vm=True)
# node-ready.sh again, with the kit: cloud-init long finished, it installs the kit.
STEP_KIT = Step(Role.STEP_KIT, Mode.RUN_ONCE, "node-ready.sh", per_vm=True)
KUBEADM_FILES = Step(Role.KUBEADM_FILES, Mode.RUN_ONCE, "master-kubeadm-files.sh", per_vm=True)
INIT = Step(Role.INIT, Mode.RUN_ONCE, "master-init.sh")
TOKEN = Step(Role.TOKEN, Mode.RUN_ONCE, "master-join-token.sh", per_vm=True, secret_stdout=True)
JOIN = Step(Role.JOIN, Mode.RUN_ONCE, "node-join.sh", per_vm=True)
ETCD_BACKUP = Step(
    Role.ETCD_BACKUP,
    Mode.APPLY,
    "node-install-bundle.sh",
    per_vm=True,
    # The backup's timer and the operator run these from the kit (cloud_init.backup).
    uses=backup.KIT_SCRIPTS,
    nodes=("discovery", "master"),
)
APISERVER = Step(Role.APISERVER, Mode.APPLY, "master-apiserver-config.sh", nodes=("master",))
UPGRADE_CREDENTIAL = Step(
    Role.UPGRADE_CREDENTIAL,
    Mode.APPLY,
    "master-upgrade-credential.sh",
    secret_stdout=True,
    nodes=("master",),
)
UPGRADE_MASTER = Step(Role.UPGRADE, Mode.DAY_2, "upgrade-node.sh", nodes=("master",))
UPGRADE_WORKER = Step(
    Role.UPGRADE, Mode.DAY_2, "upgrade-worker.sh", uses=steps.UPGRADE_STEPS, nodes=("worker",)
)
ETCD_RENEWAL = Step(Role.ETCD_RENEWAL, Mode.DAY_2, CERT_SCRIPT, nodes=("discovery",))
FLANNEL_RENEWAL = Step(Role.FLANNEL_RENEWAL, Mode.DAY_2, CERT_SCRIPT, nodes=("master", "worker"))
NETWORK_POLICY = Step(
    Role.NETWORK_POLICY, Mode.DAY_2, "node-network-policy.sh", nodes=("master", "worker")
)
ENCRYPTION_ADD = Step(Role.ENCRYPTION_ADD, Mode.PER_GENERATION, "master-encryption-rotate.sh")
ENCRYPTION_PROMOTE = Step(
    Role.ENCRYPTION_PROMOTE, Mode.PER_GENERATION, "master-encryption-rotate.sh"
)
ENCRYPTION_REWRITE = Step(
    Role.ENCRYPTION_REWRITE, Mode.PER_GENERATION, "master-encryption-rotate.sh"
)
ENCRYPTION_DROP = Step(Role.ENCRYPTION_DROP, Mode.PER_GENERATION, "master-encryption-rotate.sh")
DRAIN = Step(Role.DRAIN, Mode.ON_DELETE, "master-drain-node.sh", per_vm=True)
ETCD_LEAVE = Step(Role.ETCD_LEAVE, Mode.ON_DELETE, REMOVE_MEMBER_SCRIPT)
CLOUD_CLEANUP = Step(Role.CLOUD_CLEANUP, Mode.ON_DELETE, "master-cleanup-cloud.sh")

STEPS: tuple[Step, ...] = (
    SSHD,
    READY,
    STEP_KIT,
    KUBEADM_FILES,
    INIT,
    TOKEN,
    JOIN,
    ETCD_BACKUP,
    APISERVER,
    UPGRADE_CREDENTIAL,
    UPGRADE_MASTER,
    UPGRADE_WORKER,
    ETCD_RENEWAL,
    FLANNEL_RENEWAL,
    NETWORK_POLICY,
    ENCRYPTION_ADD,
    ENCRYPTION_PROMOTE,
    ENCRYPTION_REWRITE,
    ENCRYPTION_DROP,
    DRAIN,
    ETCD_LEAVE,
    CLOUD_CLEANUP,
)


# Steps whose script a running node keeps in its step kit: they run again on a change.
RERUNS = (Mode.APPLY, Mode.DAY_2)
# The kinds of node.
NODES = ("discovery", "master", "worker")


def kit_scripts(node: str) -> tuple[str, ...]:
    """The step kit of a discovery member, master or worker: the scripts of the steps that
    run again on that kind of node, and what they use (each node's kit sits in state)."""
    rows = [s for s in STEPS if s.mode in RERUNS and node in s.nodes]
    return tuple(sorted({name for s in rows for name in (s.script, *s.uses)}))


def kit_revision() -> str:
    """What installs the kit again on every node: a digest of every re-running step's
    revision (and of the table's rows: a new step's script must reach the nodes too). A
    script's text is not in it: an edit reaches running nodes with the next revision."""
    rows = sorted(f"{s.role}:{s.script}:{s.revision}" for s in STEPS if s.mode in RERUNS)
    return "step kit " + hashlib.sha256("\n".join(rows).encode()).hexdigest()[:12]


def command_name(owner: str, role: Role, generation: int | None = None) -> str:
    """`<owner>-<role>`, and `-<generation>` for a command that runs once per generation of
    what it applies (a key rotation)."""
    return f"{owner}-{role}" + (f"-{generation}" if generation is not None else "")


# Longest first, so that `-upgrade-credential` is never read as `-upgrade`.
_BY_LENGTH = sorted(Role, key=lambda r: len(r.value), reverse=True)


_GENERATION = re.compile(r"-[0-9]+$")
# The roles whose commands run once per generation (their names end in it), in the order
# they run.
GENERATIONAL = (
    Role.ENCRYPTION_ADD,
    Role.ENCRYPTION_PROMOTE,
    Role.ENCRYPTION_REWRITE,
    Role.ENCRYPTION_DROP,
)


def role_of(name: str) -> Role | None:
    """The role of the command named `name`, None for a name no command of ours has."""
    role = next((r for r in _BY_LENGTH if name.endswith(f"-{r.value}")), None)
    if role is None and _GENERATION.search(name):
        bare = _GENERATION.sub("", name)
        role = next((r for r in GENERATIONAL if bare.endswith(f"-{r.value}")), None)
    return role
