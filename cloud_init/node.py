"""The role part of a master's or worker's cloud-config: what the node installs on first boot.

`node_cloud_config(spec)` returns plain data (packages, write_files, runcmd) that the components
merge with the common part (users, ssh keys, sshd hardening, hostname). The node then:

1. `node-prepare.sh`: kernel modules, sysctls, swap off, containerd (systemd cgroups).
2. `node-install-kubernetes.sh`: kubeadm, kubelet, kubectl at the pinned version, held.
3. `node-install-flannel.sh`: flanneld (sha256-verified) and its unit, started without waiting
   for the discovery etcd (all VMs boot in parallel).

kubeadm itself is not run here: init/join are remote commands once cloud-init is done. Success
leaves /var/lib/openstack-k8s/bootstrapped; any failure ends runcmd with an error, so
`cloud-init status --wait` exits non-zero.
"""

import ipaddress
import json
import re
from dataclasses import dataclass
from typing import Literal

from cloud_init import constants, kit, script, versions

SCRIPT_DIR = "/usr/local/lib/openstack-k8s"
ENV_FILE = "/etc/openstack-k8s/node.env"
READY_MARKER = "/var/lib/openstack-k8s/bootstrapped"
FLANNEL_PKI = "/etc/flannel/pki"
FLANNEL_UNIT = "/etc/systemd/system/flanneld.service"
CNI_CONFLIST = "/etc/cni/net.d/10-flannel.conflist"
ETCD_PREFIX = "/coreos.com/network"

SCRIPTS = (
    "node-prepare.sh",
    "node-install-kubernetes.sh",
    "node-install-flannel.sh",
    "node-flanneld.sh",
    "node-flannel-cni.sh",
)
BOOTSTRAP = ("node-prepare.sh", "node-install-kubernetes.sh", "node-install-flannel.sh")
# Distro packages: containerd (its version is checked by node-prepare.sh), the standard CNI
# plugins (bridge, host-local, portmap, loopback), iptables (kube-proxy and flannel's
# masquerading need it; the kubelet package only recommends it), and what the scripts use to
# fetch and check the Kubernetes apt key.
PACKAGES = (
    "containerd",
    "containernetworking-plugins",
    "iptables",
    "curl",
    "ca-certificates",
    "gnupg",
)

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")


@dataclass(frozen=True)
class KubeNodeSpec:
    """What one master or worker needs to know at first boot."""

    role: Literal["master", "worker"]
    name: str  # hostname and Node name: dev-master-0, dev-worker-general-3
    kubernetes_version: str  # "1.33.5"
    package_mirror: str | None
    image_repository: str | None
    network_cidr: str  # the private subnet (flanneld's --iface is found in it)
    network_mtu: int  # tenant network MTU (pods get this - 50)
    pod_cidr: str
    discovery_endpoints: tuple[str, ...]  # ("https://10.0.0.11:2379", ...)
    etcd_ca_pem: str
    flannel_cert_pem: str
    flannel_key_pem: str


def _validate(spec: KubeNodeSpec) -> None:
    if spec.role not in ("master", "worker"):
        raise ValueError(f"role must be master or worker, got {spec.role!r}")
    if not _NAME.match(spec.name):
        raise ValueError(f"name {spec.name!r} is not a valid hostname label")
    if not _VERSION.match(spec.kubernetes_version):
        raise ValueError(
            f"kubernetes_version must be MAJOR.MINOR.PATCH, got {spec.kubernetes_version!r}"
        )
    net = ipaddress.ip_network(spec.network_cidr)
    pods = ipaddress.ip_network(spec.pod_cidr)
    if net.overlaps(pods):
        raise ValueError(f"pod_cidr {pods} overlaps network_cidr {net}")
    if not 1280 <= spec.network_mtu <= 9000:
        raise ValueError(f"network_mtu {spec.network_mtu} is outside 1280..9000")
    if not spec.discovery_endpoints or not all(
        e.startswith("https://") for e in spec.discovery_endpoints
    ):
        raise ValueError("discovery_endpoints must be a non-empty list of https:// URLs")
    for label, pem in (
        ("etcd_ca_pem", spec.etcd_ca_pem),
        ("flannel_cert_pem", spec.flannel_cert_pem),
        ("flannel_key_pem", spec.flannel_key_pem),
    ):
        if "-----BEGIN " not in pem:
            raise ValueError(f"{label} is not PEM")


# Installs a renewed certificate on a running node and restarts what reads it.
CERT_SCRIPT = "node-install-cert.sh"


def flannel_cert_env(*, cert_pem: str, key_pem: str, ca_pem: str) -> dict[str, str]:
    """node-install-cert.sh's inputs for flanneld's client certificate on a master or worker
    (a secret: the key is one of them)."""
    for label, pem in (("cert_pem", cert_pem), ("key_pem", key_pem), ("ca_pem", ca_pem)):
        if "-----BEGIN " not in pem:
            raise ValueError(f"{label} is not PEM")
    return {
        "CERT_PEM": cert_pem,
        "KEY_PEM": key_pem,
        "CA_PEM": ca_pem,
        "CERT_PATH": f"{FLANNEL_PKI}/client.crt",
        "KEY_PATH": f"{FLANNEL_PKI}/client.key",
        "CA_PATH": f"{FLANNEL_PKI}/ca.crt",
        "RESTART_UNITS": "flanneld.service",
    }


def cni_mode() -> str:
    """ "plugin" when the flannel CNI plugin can be verified, else "bridge" (see versions.py)."""
    return "plugin" if versions.FLANNEL_CNI_PLUGIN.sha256 else "bridge"


def node_env(spec: KubeNodeSpec) -> dict[str, str]:
    """The scripts' inputs, written to node.env (read by the scripts and flanneld's unit)."""
    env = {
        "KUBERNETES_VERSION": spec.kubernetes_version,
        "SANDBOX_IMAGE": versions.pause_image(spec.kubernetes_version, spec.image_repository),
        "CONTAINERD_MIN_VERSION": versions.CONTAINERD_MIN_VERSION,
        # The key node-install-kubernetes.sh (lib/apt.sh) accepts for the apt repository.
        "K8S_APT_KEY_FINGERPRINT": versions.KUBERNETES_APT_KEY_FINGERPRINT,
        "NETWORK_CIDR": str(ipaddress.ip_network(spec.network_cidr)),
        "NETWORK_MTU": str(spec.network_mtu),
        "VXLAN_OVERHEAD": str(constants.VXLAN_OVERHEAD),
        "FLANNEL_CNI_MODE": cni_mode(),
    }
    if spec.package_mirror:
        env["PACKAGE_MIRROR"] = spec.package_mirror.rstrip("/")
    for prefix, dl in (
        ("FLANNELD", versions.FLANNELD),
        ("FLANNEL_CNI", versions.FLANNEL_CNI_PLUGIN),
    ):
        env[f"{prefix}_VERSION"] = dl.version
        env[f"{prefix}_PATH"] = dl.path
        for arch, digest in sorted(dl.sha256.items()):
            env[f"{prefix}_SHA256_{arch.upper()}"] = digest
    kit.env_file(env)  # refuses a value systemd and sh would read differently
    return env


def flanneld_unit(spec: KubeNodeSpec) -> list[tuple[str, list[tuple[str, str]]]]:
    """flanneld's systemd unit as (section, [(key, value)]) data: etcd mode over TLS."""
    args = [
        f"--etcd-endpoints={','.join(spec.discovery_endpoints)}",
        f"--etcd-cafile={FLANNEL_PKI}/ca.crt",
        f"--etcd-certfile={FLANNEL_PKI}/client.crt",
        f"--etcd-keyfile={FLANNEL_PKI}/client.key",
        f"--etcd-prefix={ETCD_PREFIX}",
        "--ip-masq",
    ]
    return [
        (
            "Unit",
            [
                ("Description", "flannel VXLAN pod network (etcd mode, discovery etcd)"),
                ("Wants", "network-online.target"),
                ("After", "network-online.target"),
            ],
        ),
        (
            "Service",
            [
                # flanneld reports READY once it holds a lease and wrote /run/flannel/subnet.env.
                ("Type", "notify"),
                ("EnvironmentFile", ENV_FILE),
                # The wrapper pins --iface to the interface in NETWORK_CIDR, found at each start.
                ("ExecStart", " ".join([f"{SCRIPT_DIR}/node-flanneld.sh", *args])),
                ("ExecStartPost", f"{SCRIPT_DIR}/node-flannel-cni.sh"),
                # Waiting for the discovery etcd has no deadline here on purpose: it may boot later.
                ("TimeoutStartSec", "infinity"),
                ("Restart", "always"),
                ("RestartSec", "5"),
            ],
        ),
        ("Install", [("WantedBy", "multi-user.target")]),
    ]


def flannel_conflist() -> dict:
    """The CNI conflist for the flannel plugin (used when the plugin is installed)."""
    return {
        "name": "cbr0",
        "cniVersion": "0.3.1",
        "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def delivered_script(name: str) -> str:
    """A script as nodes receive it: comment-only and blank lines dropped to save user-data
    (the heredocs in the scripts hold no '#' lines that matter). Tests run exactly this text."""
    lines = script(name).splitlines()
    body = [line for line in lines[1:] if line.strip() and not line.lstrip().startswith("#")]
    return "\n".join([lines[0], *body]) + "\n"


def node_cloud_config(spec: KubeNodeSpec) -> dict:
    """Role part of the cloud-config: packages, write_files, runcmd (lists). The components merge
    it with the common part (users, ssh keys, sshd hardening, hostname)."""
    _validate(spec)
    env = node_env(spec)
    # Plain text: the whole user-data is gzipped when it needs to be (userdata.render),
    # and gzip inside gzip only costs bytes.
    files = [kit.file(f"{SCRIPT_DIR}/{name}", delivered_script(name), "0755") for name in SCRIPTS]
    files += [
        kit.file(ENV_FILE, kit.env_file(env)),
        kit.file(FLANNEL_UNIT, kit.unit(flanneld_unit(spec))),
        kit.file(f"{FLANNEL_PKI}/ca.crt", spec.etcd_ca_pem),
        kit.file(f"{FLANNEL_PKI}/client.crt", spec.flannel_cert_pem),
        kit.file(f"{FLANNEL_PKI}/client.key", spec.flannel_key_pem, "0600"),
    ]
    if cni_mode() == "plugin":
        files.append(kit.file(CNI_CONFLIST, json.dumps(flannel_conflist(), indent=2) + "\n"))
    steps = " && ".join(f"{SCRIPT_DIR}/{name}" for name in BOOTSTRAP)
    # One step: the scripts share node.env, read once by the subshell the step runs in.
    runcmd = [
        kit.step(
            f"set -a && . {ENV_FILE} && set +a && {steps} && "
            f"mkdir -p {READY_MARKER.rsplit('/', 1)[0]} && touch {READY_MARKER}"
        )
    ]
    return {"packages": list(PACKAGES), "write_files": files, "runcmd": runcmd}
