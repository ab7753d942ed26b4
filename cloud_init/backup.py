"""Scheduled etcd snapshots on the masters (kubeadm's stacked etcd) and the discovery node.

backup_cloud_config() is the role part installed on a running node as a bundle
(components/backup.py, userdata.bundle_env): an environment file, a oneshot service and its
timer, and the two paths operators and the unit call, /usr/local/sbin/etcd-backup.sh and
etcd-restore.sh. Those two run the copies of the scripts in the node's step kit
(cloud_init.steps, KIT_SCRIPTS): the bundle carries no script text, so an edit of a script
does not change the bundle, and does not re-install it on every node. The snapshot files
are named at run time on the node (NAME-<UTC time>.db); nothing rendered here carries a time.

Swift uploads use a dedicated application credential (openstack_rc_file()), not the cloud
credentials Pulumi runs with: a node only needs to write objects, and a leaked node credential
must not be able to delete the cluster.

validate_schedule() checks a systemd OnCalendar value in pure Python (rules.schedule; the machine running
`pulumi up` may have no systemd) against a documented subset of systemd's grammar: every value
it accepts, `systemd-analyze calendar` accepts too (tests/cloud_init/test_etcd_backup.py checks this).
"""

from __future__ import annotations

import re
from typing import Literal

from cloud_init import kit
from cloud_init.steps import command_file
from rules.schedule import SHORTHANDS, on_calendar  # noqa: F401  (SHORTHANDS: the accepted words, for callers)

BACKUP_SCRIPT = "/usr/local/sbin/etcd-backup.sh"
RESTORE_SCRIPT = "/usr/local/sbin/etcd-restore.sh"
# What the step kit of a node with a backup must hold: BACKUP_SCRIPT and RESTORE_SCRIPT run
# these from it.
KIT_SCRIPTS = ("etcd-backup.sh", "etcd-restore.sh")
ENV_FILE = "/etc/default/etcd-backup"
OPENSTACK_RC = "/etc/etcd-backup/openrc"
BACKUP_DIR = "/var/backups/etcd"
SERVICE = "etcd-backup.service"
TIMER = "etcd-backup.timer"

# What each role's etcd looks like from the node itself.
ROLE_DEFAULTS = {
    "master": {  # kubeadm's stacked etcd; healthcheck-client is the client cert kubeadm makes
        "endpoints": "https://127.0.0.1:2379",
        "cacert": "/etc/kubernetes/pki/etcd/ca.crt",
        "cert": "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
        "key": "/etc/kubernetes/pki/etcd/healthcheck-client.key",
    },
    "discovery": {
        "endpoints": "https://127.0.0.1:2379",
        "cacert": "/etc/etcd/pki/ca.crt",
        "cert": "/etc/etcd/pki/server.crt",
        "key": "/etc/etcd/pki/server.key",
    },
}


def validate_schedule(schedule: str) -> str:
    """The OnCalendar rule settings applies (rules.schedule): systemd's grammar, and it must
    fire again."""
    return on_calendar(schedule)


def openstack_rc_file(
    *,
    auth_url: str,
    credential_id: str,
    credential_secret: str,
    region: str | None = None,
    interface: str = "public",
) -> str:
    """The OS_* file etcd-backup.sh sources for uploads (an application credential).
    Secret: the caller keeps it in a secret Output and the node gets it mode 0600."""
    values = {
        "OS_AUTH_TYPE": "v3applicationcredential",
        "OS_AUTH_URL": auth_url,
        "OS_APPLICATION_CREDENTIAL_ID": credential_id,
        "OS_APPLICATION_CREDENTIAL_SECRET": credential_secret,
        "OS_INTERFACE": interface,
        "OS_IDENTITY_API_VERSION": "3",
    }
    if region:
        values["OS_REGION_NAME"] = region
    for k, v in values.items():
        if not v or "'" in v or "\n" in v:
            raise ValueError(f"openstack_rc: {k} is empty or contains a quote or newline")
    return "".join(f"export {k}='{v}'\n" for k, v in values.items())


def _check_inputs(
    *,
    role: str,
    name: str,
    schedule: str,
    keep: int,
    container: str | None,
    openstack_rc: str | None,
) -> None:
    if role not in ROLE_DEFAULTS:
        raise ValueError(f"role: {role!r} is not one of {sorted(ROLE_DEFAULTS)}")
    if not re.fullmatch(r"[A-Za-z0-9._-]+", name or ""):
        raise ValueError(f"name: {name!r} must be letters, digits, '.', '_', '-'")
    validate_schedule(schedule)
    if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
        raise ValueError(f"keep: {keep!r} must be a whole number >= 1")
    if container is not None:
        if not re.fullmatch(r"[^/\s'\"]{1,256}", container):
            raise ValueError(f"container: {container!r} is not a Swift container name")
        if not openstack_rc:
            raise ValueError(
                "container is set: openstack_rc (an application credential) is required"
            )


def backup_cloud_config(
    *,
    role: Literal["master", "discovery"],
    name: str,
    schedule: str = "hourly",
    keep: int = 24,
    container: str | None = None,
    openstack_rc: str | None = None,
    endpoints: str | None = None,
    cacert: str | None = None,
    cert: str | None = None,
    key: str | None = None,
) -> dict:
    """The etcd backup part of a node's cloud-config (packages, write_files, runcmd).

    role picks the default endpoint and TLS files (kubeadm's on masters, /etc/etcd/pki on the
    discovery node); name is the etcd member name that prefixes the snapshot files. With
    `container`, `openstack_rc` (the text of openstack_rc_file()) is required and each
    snapshot is uploaded to that existing Swift container.
    """
    _check_inputs(
        role=role,
        name=name,
        schedule=schedule,
        keep=keep,
        container=container,
        openstack_rc=openstack_rc,
    )
    defaults = ROLE_DEFAULTS[role]
    env = {
        "ETCDCTL_ENDPOINTS": endpoints or defaults["endpoints"],
        "ETCD_CACERT": cacert or defaults["cacert"],
        "ETCD_CERT": cert or defaults["cert"],
        "ETCD_KEY": key or defaults["key"],
        "NAME": name,
        "BACKUP_DIR": BACKUP_DIR,
        "KEEP": str(keep),
    }
    if "," in env["ETCDCTL_ENDPOINTS"]:
        raise ValueError("endpoints: a snapshot is taken from exactly one endpoint")
    if container is not None:
        env |= {"SWIFT_CONTAINER": container, "OPENSTACK_RC": OPENSTACK_RC}

    unit: list[tuple[str, str]] = [
        ("Description", f"etcd snapshot of {role} member {name}"),
        ("Documentation", "https://etcd.io/docs/v3.5/op-guide/recovery/"),
        ("Wants", "network-online.target"),
        ("After", "network-online.target"),
    ]
    if role == "master":
        # before kubeadm init there is no etcd yet: skip quietly instead of failing
        unit.append(("ConditionPathExists", "/etc/kubernetes/manifests/etcd.yaml"))
    else:
        unit.append(("After", "etcd.service"))
    service = kit.unit(
        {
            "Unit": unit,
            "Service": [
                ("Type", "oneshot"),
                ("EnvironmentFile", ENV_FILE),
                ("ExecStart", BACKUP_SCRIPT),
                # the script bounds each step itself; this is the backstop
                ("TimeoutStartSec", "20min"),
                ("Nice", "10"),
                ("IOSchedulingClass", "idle"),
            ],
        }
    )
    timer = kit.unit(
        {
            "Unit": [("Description", f"etcd snapshot schedule ({schedule})")],
            "Timer": [
                ("OnCalendar", schedule),
                # a run missed while the node was off happens at boot
                ("Persistent", "true"),
                # masters on the same schedule do not all snapshot in the same second
                ("RandomizedDelaySec", "60"),
            ],
            "Install": [("WantedBy", "timers.target")],
        }
    )

    files = [
        kit.file(BACKUP_SCRIPT, command_file("etcd-backup.sh"), "0755"),
        kit.file(RESTORE_SCRIPT, command_file("etcd-restore.sh"), "0755"),
        kit.file(ENV_FILE, kit.env_file(env)),
        kit.file(f"/etc/systemd/system/{SERVICE}", service),
        kit.file(f"/etc/systemd/system/{TIMER}", timer),
    ]
    packages = ["etcd-client"]
    if container is not None:
        files.append(kit.file(OPENSTACK_RC, openstack_rc, "0600"))
        packages.append("python3-openstackclient")
    return {
        "packages": packages,
        "write_files": files,
        # Never run by cloud-init: userdata.bundle_env turns these into the units that
        # node-install-bundle.sh enables (and fails on) on a running node.
        "runcmd": [
            ["systemctl", "daemon-reload"],
            ["systemctl", "enable", "--now", TIMER],
        ],
    }
