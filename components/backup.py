"""Scheduled etcd snapshots on a node, installed by a remote command rather than user-data:
the schedule, retention and Swift target can change on a running cluster, and a change
reaches every existing node on the next `pulumi up` without replacing it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi

from cloud_init.backup import backup_cloud_config
from cloud_init.userdata import bundle_env
from components import roles
from components.node_set import Node, StepSpec

BACKUP_TIMEOUT = 900


@dataclass(frozen=True)
class BackupArgs:
    """etcd.backup as Cluster translated it, with the openrc uploads authenticate with (a
    secret; None: snapshots stay on the node)."""

    schedule: str
    keep: int
    container: str | None
    openstack_rc: pulumi.Output[str] | None


def etcd_backup_step(backup: BackupArgs, *, role: Literal["master", "discovery"]) -> StepSpec:
    """`<node>-etcd-backup`, after the node's ready gate; a replaced VM gets it again."""
    rc = backup.openstack_rc

    def env(node: Node) -> dict:
        bundle = pulumi.Output.from_input(rc).apply(
            lambda v: bundle_env(
                backup_cloud_config(
                    role=role,
                    name=node.name,
                    schedule=backup.schedule,
                    keep=backup.keep,
                    container=backup.container,
                    openstack_rc=v,
                )
            )
        )
        return {
            # The credential rides inside the bundle: the whole archive is a secret then.
            "BUNDLE_TAR_B64": pulumi.Output.secret(bundle["BUNDLE_TAR_B64"])
            if rc is not None
            else bundle["BUNDLE_TAR_B64"],
            "PACKAGES": bundle["PACKAGES"],
            "ENABLE_UNITS": bundle["ENABLE_UNITS"],
            "APT_TIMEOUT": "600",
        }

    return StepSpec(roles.ETCD_BACKUP, env=env, timeout=BACKUP_TIMEOUT, after=lambda n: [n.ready])
