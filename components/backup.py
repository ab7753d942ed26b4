"""Scheduled etcd snapshots on a node, installed by a remote command rather than user-data:
the schedule, retention and Swift target can change on a running cluster, and a change
reaches every existing node on the next `pulumi up` without replacing it."""

from __future__ import annotations

from typing import Literal

import pulumi
from pulumi_command import remote

from cloud_init.backup import backup_cloud_config
from cloud_init.userdata import bundle_env
from components.commands import node_command
from components.roles import Role, command_name
from settings import Settings


def etcd_backup(
    settings: Settings,
    *,
    node: str,
    role: Literal["master", "discovery"],
    connection: remote.ConnectionArgs,
    after: pulumi.Resource,
    instance: pulumi.Resource,
    parent: pulumi.Resource,
    openstack_rc: pulumi.Output[str] | None,
) -> remote.Command:
    backup = settings.etcd.backup
    env = pulumi.Output.from_input(openstack_rc).apply(
        lambda rc: bundle_env(
            backup_cloud_config(
                role=role,
                name=node,
                schedule=backup.schedule,
                keep=backup.keep,
                container=backup.container,
                openstack_rc=rc,
            )
        )
    )
    return node_command(
        command_name(node, Role.ETCD_BACKUP),
        connection=connection,
        script_name="node-install-bundle.sh",
        env={
            # The credential rides inside the bundle: the whole archive is a secret then.
            "BUNDLE_TAR_B64": pulumi.Output.secret(env["BUNDLE_TAR_B64"])
            if openstack_rc is not None
            else env["BUNDLE_TAR_B64"],
            "PACKAGES": env["PACKAGES"],
            "ENABLE_UNITS": env["ENABLE_UNITS"],
            "APT_TIMEOUT": "600",
        },
        timeout=900,
        parent=parent,
        depends_on=[after],
        rerun_on_change=True,
        # A replaced VM gets the bundle again.
        instance=instance,
    )
