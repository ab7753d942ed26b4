"""Pinned images of the in-cluster add-ons, per Kubernetes minor.

cloud-provider-openstack releases one line per Kubernetes minor (v1.33.x is built and
tested against Kubernetes 1.33), so the cloud controller manager and the Cinder CSI plugin
follow `kubernetesVersion`'s minor. The CSI sidecars (kubernetes-csi) and metrics-server
support a window of minors; they are still pinned per minor so that one minor can move
without touching the others.

Sources (checked when the table was written):
- openstack-cloud-controller-manager / cinder-csi-plugin tags: registry.k8s.io/provider-os,
  as pinned per minor by kubermatic/kubeone pkg/templates/images/images.go
  (1.32 -> v1.32.1, 1.33 -> v1.33.1, 1.34 -> v1.34.1, 1.35 -> v1.35.0, 1.36 -> v1.36.0).
- CSI sidecars: the set kubeone runs with those Cinder CSI releases
  (attacher v4.10.0, provisioner v5.3.0, snapshotter v8.3.0, resizer v1.14.0,
  livenessprobe v2.17.0, node-driver-registrar v2.15.0).
- metrics-server v0.8.1 (registry.k8s.io/metrics-server), which supports Kubernetes 1.31+.
- Calico calico/node and calico/cni (quay.io/calico, where Calico's own manifests pull
  from), policy only next to flannel (addons.calico). No one Calico line covers 1.32-1.36:
  the per-release Kubernetes requirements of docs.tigera.io give v3.31 as tested on
  1.32-1.35 and v3.32 on 1.34-1.36 (read as quoted by the kupre v0.5.0 release notes; the
  maintainers confirm v3.31 on 1.35 in projectcalico discussion #11717). So 1.32 and 1.33
  run v3.31.7, 1.34-1.36 run v3.32.1: the newest patch of each line, tags of
  projectcalico/calico, from which both images are built.

Air-gapped clouds set the stack's `imageRepository`: every add-on image is then pulled as
`<imageRepository>/<last path element of the upstream name>:<tag>`, e.g.
`registry.k8s.io/sig-storage/csi-attacher:v4.10.0` -> `mirror.example/k8s/csi-attacher:v4.10.0`.
This is the flat layout kubeadm uses for its own images under `imageRepository`, so one
mirror prefix serves the whole cluster. `image_list()` gives what to mirror.
"""

import re

# Upstream repository (without tag) of every image an add-on runs, by role.
UPSTREAM = {
    "cloud_controller_manager": "registry.k8s.io/provider-os/openstack-cloud-controller-manager",
    "cinder_csi_plugin": "registry.k8s.io/provider-os/cinder-csi-plugin",
    "csi_attacher": "registry.k8s.io/sig-storage/csi-attacher",
    "csi_provisioner": "registry.k8s.io/sig-storage/csi-provisioner",
    "csi_snapshotter": "registry.k8s.io/sig-storage/csi-snapshotter",
    "csi_resizer": "registry.k8s.io/sig-storage/csi-resizer",
    "livenessprobe": "registry.k8s.io/sig-storage/livenessprobe",
    "node_driver_registrar": "registry.k8s.io/sig-storage/csi-node-driver-registrar",
    "metrics_server": "registry.k8s.io/metrics-server/metrics-server",
    "calico_node": "quay.io/calico/node",
    "calico_cni": "quay.io/calico/cni",
}

_SIDECARS = {
    "csi_attacher": "v4.10.0",
    "csi_provisioner": "v5.3.0",
    "csi_snapshotter": "v8.3.0",
    "csi_resizer": "v1.14.0",
    "livenessprobe": "v2.17.0",
    "node_driver_registrar": "v2.15.0",
}


def _release(cpo: str, calico: str, metrics_server: str = "v0.8.1") -> dict:
    return {
        "cloud_controller_manager": cpo,
        "cinder_csi_plugin": cpo,
        **_SIDECARS,
        "metrics_server": metrics_server,
        # One release for both: the CNI plugin and felix share the datastore's layout.
        "calico_node": calico,
        "calico_cni": calico,
    }


# Kubernetes minor -> image role -> tag.
TAGS = {
    "1.32": _release("v1.32.1", "v3.31.7"),
    "1.33": _release("v1.33.1", "v3.31.7"),
    "1.34": _release("v1.34.1", "v3.32.1"),
    "1.35": _release("v1.35.0", "v3.32.1"),
    "1.36": _release("v1.36.0", "v3.32.1"),
}

SUPPORTED_MINORS = tuple(TAGS)

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?$")


def minor_of(kubernetes_version: str) -> str:
    """'1.33.2', 'v1.33.2' or '1.33' -> '1.33'; anything else is an error naming the key."""
    match = _VERSION.match(str(kubernetes_version).strip())
    if not match:
        raise ValueError(
            f"kubernetesVersion: {kubernetes_version!r} is not a Kubernetes version like 1.33.2"
        )
    return f"{int(match.group(1))}.{int(match.group(2))}"


def tags_for(kubernetes_version: str) -> dict:
    """The pinned tag of every add-on image for this Kubernetes version."""
    minor = minor_of(kubernetes_version)
    if minor not in TAGS:
        raise ValueError(
            f"kubernetesVersion: {kubernetes_version} has no pinned add-on versions "
            f"(cloud-provider-openstack, Cinder CSI, metrics-server, Calico); supported minors: "
            f"{', '.join(SUPPORTED_MINORS)}"
        )
    return dict(TAGS[minor])


def image_name(role: str, image_repository: str | None) -> str:
    """Repository (no tag) of an image role, honouring the stack's imageRepository."""
    upstream = UPSTREAM[role]
    if not image_repository:
        return upstream
    return f"{image_repository.rstrip('/')}/{upstream.rsplit('/', 1)[1]}"


def images(kubernetes_version: str, image_repository: str | None = None) -> dict:
    """Role -> full image reference (repository:tag) for this Kubernetes version."""
    return {
        role: f"{image_name(role, image_repository)}:{tag}"
        for role, tag in tags_for(kubernetes_version).items()
    }


def image_list(kubernetes_version: str, image_repository: str | None = None) -> list[str]:
    """Sorted, de-duplicated image references: what an air-gapped mirror must hold."""
    return sorted(set(images(kubernetes_version, image_repository).values()))
