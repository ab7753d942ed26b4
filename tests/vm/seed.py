"""The NoCloud seed: what OpenStack's metadata service would hand the node, as an ISO.

user-data is copied byte for byte (the test boots the file the plan rendered, not a re-dump of
it); meta-data carries the instance id and hostname OpenStack would; network-config is the
DHCP-on-the-one-NIC that an OpenStack port gives.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml


def network_config(mac: str) -> dict:
    """network-config v2: DHCP on the NIC with this MAC, named eth0 (the name does not matter)."""
    return {
        "version": 2,
        "ethernets": {
            "eth0": {"match": {"macaddress": mac}, "set-name": "eth0", "dhcp4": True},
        },
    }


def write_seed(
    workdir: Path, user_data: Path, *, instance_id: str, hostname: str, mac: str
) -> Path:
    """Write ``workdir/seed.iso`` (label ``cidata``) and return its path."""
    files = workdir / "seed"
    files.mkdir(parents=True, exist_ok=True)
    (files / "user-data").write_bytes(user_data.read_bytes())
    (files / "meta-data").write_text(
        yaml.safe_dump({"instance-id": instance_id, "local-hostname": hostname}, sort_keys=False)
    )
    (files / "network-config").write_text(yaml.safe_dump(network_config(mac), sort_keys=False))
    iso = workdir / "seed.iso"
    subprocess.run(
        [
            "cloud-localds",
            f"--network-config={files / 'network-config'}",
            str(iso),
            str(files / "user-data"),
            str(files / "meta-data"),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return iso
