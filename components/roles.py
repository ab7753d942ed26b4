"""What each remote command does, as the program names it: `<node>-<role>` (or, for a command
that acts on the whole cluster, `<cluster>-<role>`).

The names are the state's keys, so they never change; the tools that read a plan
(tools/mockengine.py, tools/bench.py, tools/plandiff.py) ask `role_of(name)` instead of each
matching suffixes of its own."""

from __future__ import annotations

import re
from enum import StrEnum


class Role(StrEnum):
    # Bring-up, in the order a node sees it.
    SSHD = "sshd"  # the jump host waits for the node's sshd
    READY = "ready"  # cloud-init finished on the node
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
