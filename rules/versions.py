"""Which Kubernetes releases a cluster can run with this release of the program.

Nodes install kubeadm, kubelet and kubectl from pkgs.k8s.io, one apt repository per minor
(core:/stable:/v1.33/deb/); the program pins the sandbox image per minor (cloud_init/versions)
and the add-ons' images per minor (addons/versions). A minor newer than the newest listed here
has none of that: its nodes would fail at boot, add-ons or not.
"""

from __future__ import annotations

import re

# The oldest minor whose kubeadm speaks kubeadm.k8s.io/v1beta4, and the newest this release
# knows packages and images for (the last line of addons/versions.TAGS).
OLDEST_MINOR = 31
NEWEST_MINOR = 36
DEFAULT = "1.33.5"

_RELEASE = re.compile(r"1\.(\d{1,2})\.(\d{1,3})")


def kubernetes_release(v: str) -> str:
    """`v` if it is a release like 1.33.5 whose minor this program can install."""
    m = _RELEASE.fullmatch(v)
    if not m:
        raise ValueError(f"{v!r} is not a Kubernetes release like {DEFAULT} (no 'v', no suffix)")
    minor = int(m.group(1))
    if minor < OLDEST_MINOR:
        raise ValueError(
            f"{v} is older than 1.{OLDEST_MINOR}, the first with kubeadm's v1beta4 config"
        )
    if minor > NEWEST_MINOR:
        raise ValueError(
            f"{v} is newer than 1.{NEWEST_MINOR}, the newest minor this program has pinned "
            f"packages and images for (1.{OLDEST_MINOR} to 1.{NEWEST_MINOR})"
        )
    return v
