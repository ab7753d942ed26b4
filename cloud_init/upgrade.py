"""Kubernetes version rules for in-place upgrades, shared by config validation and the node scripts.

kubeadm upgrades a cluster one minor version at a time and never downgrades it; pkgs.k8s.io has
one apt repository per minor. The node script cloud_init/scripts/upgrade-node.sh applies the
same rules on the node (from what is really installed there); these functions let the program
refuse a bad bump before anything reaches a node.
"""
import re
from collections.abc import Mapping

from cloud_init import script

DEFAULT_PACKAGE_MIRROR = "https://pkgs.k8s.io"

# Scripts the upgrade commands run, in the order a worker sees them.
UPGRADE_SCRIPTS = ("upgrade-cordon.sh", "upgrade-node.sh", "upgrade-uncordon.sh")

_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_version(v: str) -> tuple[int, int, int]:
    """`1.34.1` or `v1.34.1` -> (1, 34, 1); anything else (`1.34`, `1.34.1-rc.0`) is a ValueError."""
    m = _VERSION.fullmatch(str(v).strip())
    if not m:
        raise ValueError(f"{v!r} is not a Kubernetes version like 1.34.1")
    return int(m[1]), int(m[2]), int(m[3])


def _fmt(v: tuple[int, int, int]) -> str:
    return ".".join(map(str, v))


def check_step(current: str, target: str) -> None:
    """Raise ValueError unless going from `current` to `target` is one kubeadm upgrade step.

    Allowed: the same version, a newer patch of the same minor, or any patch of the next minor.
    The messages match the ones upgrade-node.sh prints on a node.
    """
    cur, tgt = parse_version(current), parse_version(target)
    if tgt[0] != cur[0]:
        raise ValueError(
            f"kubernetesVersion {_fmt(tgt)}: changing the major version from {_fmt(cur)} "
            "is not supported")
    if tgt < cur:
        raise ValueError(
            f"kubernetesVersion {_fmt(tgt)}: downgrade from {_fmt(cur)} refused; kubeadm "
            "cannot downgrade a cluster")
    if tgt[1] > cur[1] + 1:
        raise ValueError(
            f"kubernetesVersion {_fmt(tgt)}: skips a minor version from {_fmt(cur)}; kubeadm "
            f"upgrades one minor at a time, so upgrade to {cur[0]}.{cur[1] + 1}.x first")


def apt_channel(version: str, mirror: str | None = None) -> str:
    """The apt repository URL (with trailing slash) holding the packages of `version`'s minor.

    Same rule as upgrade-node.sh: `${PACKAGE_MIRROR:-https://pkgs.k8s.io}/core:/stable:/vX.Y/deb/`.
    """
    major, minor, _ = parse_version(version)
    base = (mirror or DEFAULT_PACKAGE_MIRROR).rstrip("/")
    return f"{base}/core:/stable:/v{major}.{minor}/deb/"


def _sh_quote(value: str) -> str:
    # Always single-quoted, so the rendered stdin is the same whatever the value holds.
    return "'" + value.replace("'", "'\\''") + "'"


def script_stdin(name: str, env: Mapping[str, str]) -> str:
    """What a remote `sudo bash -s` reads to run node script `name` with `env`.

    `export KEY='value'` lines (keys in the given order), then the script text. The scripts wrap
    their body in `main` and run `main "$@" </dev/null`, so nothing they run can swallow the rest of stdin.
    """
    lines = []
    for key, value in env.items():
        if not _ENV_NAME.fullmatch(key):
            raise ValueError(f"{key!r} is not a shell variable name")
        lines.append(f"export {key}={_sh_quote(str(value))}\n")
    return "".join(lines) + script(name)
