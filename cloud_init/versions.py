"""Pinned versions and published sha256 checksums of what nodes download besides distro packages.

Every checksum here was copied from a published source, never computed from an unverified
download and never guessed:

- flanneld v0.27.4 (the `flanneld-<arch>` release assets of flannel-io/flannel): as pinned by
  the sysoperator/kubernetes-formula salt formula (pillar/flannel.sls), which installs exactly
  these assets.
- the flannel CNI plugin (flannel-io/cni-plugin): no published sha256 for a release asset could
  be found, so `sha256` is empty. Nodes then do not download the plugin at all: flanneld's
  unit writes the bridge conflist the plugin would have generated (see docs/node-bootstrap.md).
  Fill in the digests from the release page to switch nodes to the plugin.
- The pkgs.k8s.io signing key is pinned by fingerprint, not by file hash: the key file is
  re-issued when its expiry is extended, the key itself stays.

Kubernetes packages come from a signed apt repository (apt checks them), containerd and the
standard CNI plugins from the distro.
"""

from dataclasses import dataclass, field

from cloud_init import constants


@dataclass(frozen=True)
class Download:
    """One release asset per architecture: `{version}` and `{arch}` are filled into `path`."""

    name: str
    version: str
    path: str  # under https://github.com/ (and under <packageMirror>/github.com/)
    sha256: dict[str, str] = field(default_factory=dict)  # Debian arch -> hex digest

    def url_path(self, arch: str) -> str:
        return self.path.format(version=self.version, arch=arch)


FLANNELD = Download(
    name="flanneld",
    version="v0.27.4",
    path="flannel-io/flannel/releases/download/{version}/flanneld-{arch}",
    sha256={
        "amd64": "fc1233aac3ad2707d14c9ae42016b5402753f755f0d07cc5c41dc4190e95d299",
        "arm64": "aa4f59bff09603ad10634c5a930afa57631dd99d8da0b7baeaadc655f00831b7",
    },
)

# The version flannel v0.27.x's own manifest ships. No published digest was found (see above):
# an empty sha256 means "do not download; use the bridge conflist".
FLANNEL_CNI_PLUGIN = Download(
    name="flannel-cni-plugin",
    version="v1.7.1-flannel1",
    path="flannel-io/cni-plugin/releases/download/{version}/flannel-{arch}",
    sha256={},
)

KUBERNETES_APT_KEY_FINGERPRINT = constants.KUBERNETES_APT_KEY_FINGERPRINT

# The oldest containerd the supported Kubernetes minors (1.31 to 1.34) run on: the 1.6 line from
# 1.6.36 on, any 1.7 or 2.x. Nodes use the distribution's containerd and node-prepare.sh fails
# the boot below this (Debian 12 ships 1.6.20): see docs/node-bootstrap.md.
CONTAINERD_MIN_VERSION = "1.6.36"

# The sandbox ("pause") image kubeadm expects per Kubernetes minor; containerd must use the same
# or kubeadm's preflight warns and the kubelet's image GC may remove it.
PAUSE_VERSIONS = {"1.31": "3.10", "1.32": "3.10", "1.33": "3.10", "1.34": "3.10.1"}
DEFAULT_PAUSE_VERSION = "3.10.1"


def pause_image(kubernetes_version: str, image_repository: str | None) -> str:
    """The sandbox image containerd should use for this Kubernetes version."""
    minor = ".".join(kubernetes_version.split(".")[:2])
    tag = PAUSE_VERSIONS.get(minor, DEFAULT_PAUSE_VERSION)
    return f"{(image_repository or 'registry.k8s.io').rstrip('/')}/pause:{tag}"
