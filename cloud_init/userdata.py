"""Assemble a node's cloud-config from role parts, and render it as Nova receives it.

Role builders (discovery.py, node.py, ha.py, backup.py) each return a partial cloud-config
dict; `merge` concatenates their lists in order, `common` adds what every node gets (the
operator account with the deploy key, hardened sshd, hostname), and `render` dumps the data
behind `#cloud-config`.
"""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
from collections.abc import Iterable, Sequence

import yaml

from cloud_init import kit

# Nova refuses user-data over 64 KiB of base64; the project's own bound leaves room to grow.
MAX_USER_DATA = 16 * 1024
LIST_KEYS = ("bootcmd", "packages", "write_files", "runcmd")


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    """libyaml's emitter (ten times faster than PyYAML's own, for a program that renders
    hundreds of nodes; PyYAML's wheels ship it), and files as literal blocks: user-data in a
    plan or a diff reads like the files themselves."""


def _text(dumper, data: str):
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _text)

SSHD_HARDENING = "/etc/ssh/sshd_config.d/10-openstack-k8s.conf"


def sshd_config(*, jump_host: bool) -> str:
    """Keys only, no root, no passwords; only the jump host forwards TCP (the SSH proxy)."""
    lines = [
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin no",
        "PermitEmptyPasswords no",
        "X11Forwarding no",
        "MaxAuthTries 3",
        f"AllowTcpForwarding {'yes' if jump_host else 'no'}",
        "AllowAgentForwarding no",
        # pulumi up opens many sessions at once (a join token per node on the first master,
        # every command through the jump host): sshd's default 10:30:100 would drop them.
        "MaxStartups 200:30:600",
        "MaxSessions 200",
    ]
    return "\n".join(lines) + "\n"


def common(*, hostname: str, user: str, ssh_keys: Sequence[str], jump_host: bool) -> dict:
    """What every node gets, whatever its role."""
    return {
        "hostname": hostname,
        "fqdn": hostname,
        "prefer_fqdn_over_hostname": False,
        "manage_etc_hosts": True,
        "users": [
            {
                "name": user,
                "gecos": "openstack-k8s operator",
                "groups": ["sudo"],
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "shell": "/bin/bash",
                "lock_passwd": True,
                "ssh_authorized_keys": list(ssh_keys),
            }
        ],
        "disable_root": True,
        "ssh_pwauth": False,
        "package_update": True,
        "package_upgrade": False,
        "write_files": [kit.file(SSHD_HARDENING, sshd_config(jump_host=jump_host))],
        # try-reload-or-restart: Ubuntu 24.04 socket-activates sshd, and a reload of a unit
        # that is not running fails (a new connection reads the new config anyway). A node
        # whose sshd did not take the hardening must not pass the ready gate.
        "runcmd": [kit.step(["systemctl", "try-reload-or-restart", "ssh"])],
    }


def merge(*parts: dict) -> dict:
    """One cloud-config out of several: list keys concatenate in order; scalar keys must agree."""
    out: dict = {}
    for part in parts:
        for key, value in part.items():
            if key in LIST_KEYS:
                out.setdefault(key, [])
                out[key] = out[key] + [
                    v for v in value if not (key == "packages" and v in out[key])
                ]
            elif key in out and out[key] != value:
                raise ValueError(f"cloud-config parts disagree on {key!r}")
            else:
                out[key] = value
    # Lists in the order cloud-init runs them reads best; empty lists are noise.
    return {k: v for k, v in out.items() if not (k in LIST_KEYS and not v)}


def render(config: dict, *, node: str) -> str:
    """`#cloud-config` + YAML as Nova receives it (see `deliver`), refused over the bound."""
    text = "#cloud-config\n" + yaml.dump(
        config, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000
    )
    delivered = deliver(text)
    size = len(delivered.encode())
    if size > MAX_USER_DATA:
        raise ValueError(
            f"user-data of {node} is {size} bytes as delivered, over the {MAX_USER_DATA}-byte bound"
        )
    return delivered


def deliver(text: str) -> str:
    """The text itself, or gzip + base64 when it would outgrow the bound.

    A base64 string goes to Nova as-is (the provider only encodes what is not base64 yet),
    and cloud-init unpacks gzip: compressed user-data stays compressed all the way.
    """
    if len(text.encode()) <= MAX_USER_DATA:
        return text
    # mtime=0: the same config gives the same bytes.
    return base64.b64encode(gzip.compress(text.encode(), compresslevel=9, mtime=0)).decode()


def tar_b64(entries: Iterable[tuple]) -> str:
    """A deterministic gzipped tar (sorted, no owners, no times), base64: files shipped to a
    node through a remote command. Entries are (path, content) or (path, content, mode)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for path, content, *mode in sorted(entries):
                data = content.encode()
                info = tarfile.TarInfo(path)
                info.size, info.mode, info.mtime = len(data), mode[0] if mode else 0o600, 0
                tar.addfile(info, io.BytesIO(data))
    return base64.b64encode(buf.getvalue()).decode()


def bundle_env(part: dict) -> dict[str, str]:
    """A cloud-config part (packages, write_files, `systemctl enable --now` runcmd) as the
    environment of scripts/node-install-bundle.sh, which applies it to a running node."""
    units = []
    for command in part.get("runcmd", []):
        if command == ["systemctl", "daemon-reload"]:
            continue
        if command[:3] != ["systemctl", "enable", "--now"]:
            raise ValueError(f"a bundle can only enable units, not run {command}")
        units += command[3:]
    entries = []
    for f in part.get("write_files", []):
        if f.get("owner", "root:root") != "root:root" or f.get("encoding"):
            raise ValueError(f"{f['path']}: a bundle carries plain root-owned files only")
        entries.append((f["path"].lstrip("/"), f["content"], int(f.get("permissions", "0644"), 8)))
    return {
        "BUNDLE_TAR_B64": tar_b64(entries),
        "PACKAGES": " ".join(part.get("packages", [])),
        "ENABLE_UNITS": " ".join(units),
    }
