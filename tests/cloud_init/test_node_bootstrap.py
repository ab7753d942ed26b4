"""Masters and workers: the role cloud-config, the kubeadm configs and the node scripts.

The scripts run for real, as nodes receive them (the delivered, comment-stripped text), with
fake apt-get/dpkg-query/systemctl/modprobe/sysctl/ip/containerd on PATH (the shared rule fakes
of tests/fakes), real curl against an HTTP server on 127.0.0.1 started by the test, real
sha256sum and real gpg.
"""

import gzip
import base64
import hashlib
import http.server
import json
import os
import subprocess
import threading
import tomllib
from pathlib import Path

import pytest
from fakes import FakeBin
from validators import shellcheck, strict_schema
import yaml

from cloud_init import kubeadm, node, versions
from cloud_init.node import KubeNodeSpec, node_cloud_config

from planning import ROOT  # noqa: E402

SCRIPTS = ROOT / "cloud_init" / "scripts"
SYSTEM_PYTHON = "/usr/bin/python3"
USER_DATA_LIMIT = 16 * 1024


# --------------------------------------------------------------------------- fixtures/helpers


def _pki():
    """A real ECDSA P-256 CA certificate and key, the size nodes really get."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.derive_private_key(12345, ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openstack-k8s test ca")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2024, 1, 1))
        .not_valid_after(datetime.datetime(2034, 1, 1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


CERT, KEY = _pki()


def spec(role="worker", mirror=None, repo=None):
    return KubeNodeSpec(
        role=role,
        name=f"dev-{role}-0",
        kubernetes_version="1.33.5",
        package_mirror=mirror,
        image_repository=repo,
        network_cidr="10.0.0.0/24",
        network_mtu=1450,
        pod_cidr="10.244.0.0/16",
        discovery_endpoints=(
            "https://10.0.0.11:2379",
            "https://10.0.0.12:2379",
            "https://10.0.0.13:2379",
        ),
        etcd_ca_pem=CERT,
        flannel_cert_pem=CERT,
        flannel_key_pem=KEY,
    )


def user_data(role_part: dict) -> str:
    """The role part wrapped the way the program delivers it (common part kept minimal)."""
    cfg = {
        "users": [
            {
                "name": "ops",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ops"],
            }
        ],
        **role_part,
    }
    return "#cloud-config\n" + yaml.safe_dump(cfg, sort_keys=False)


def delivered(cfg: dict) -> dict[str, str]:
    """path -> decoded content of every write_files entry."""
    out = {}
    for f in cfg["write_files"]:
        content = f["content"]
        if f.get("encoding") == "gz+b64":
            content = gzip.decompress(base64.b64decode(content)).decode()
        out[f["path"]] = content
    return out


@pytest.fixture
def node_scripts(tmp_path):
    """The scripts exactly as a node receives them, installed in a temp dir."""
    d = tmp_path / "lib"
    d.mkdir()
    for path, content in delivered(node_cloud_config(spec())).items():
        if path.startswith(node.SCRIPT_DIR):
            p = d / Path(path).name
            p.write_text(content)
            p.chmod(0o755)
    assert sorted(p.name for p in d.iterdir()) == sorted(node.SCRIPTS)
    return d


class Fakes(FakeBin):
    """The shared rule fakes (tests/fakes), read the way these tests read them: each `ran()`
    returns the calls made since the previous one, as "name args" lines (one script run per
    read). containerd answers `--version` like a supported one unless a test says otherwise."""

    def __init__(self, root: Path, names):
        super().__init__(root, names)
        self.seen = 0
        if "containerd" in names:
            self.containerd("1.7.24")

    def containerd(self, version: str) -> None:
        self.rules = [r for r in self.rules if r["cmd"] != "containerd"]  # the first match wins
        self.rule(
            "containerd",
            "--version",
            {"stdout": f"containerd github.com/containerd/containerd {version} 1.7.24-0ubuntu1\n"},
        )

    def installed_after_first_check(self, versions: dict[str, str]) -> None:
        """dpkg-query finds each package missing the first time it is asked, then installed at
        its version (what the script's own apt-get install would leave)."""
        for pkg, version in versions.items():
            self.rule(
                "dpkg-query",
                f"* {pkg}",
                {"rc": 1},
                {"stdout": "install ok installed" if version == "status" else version},
            )

    def ran(self, name=None) -> list[str]:
        calls = self.calls()
        new, self.seen = calls[self.seen :], len(calls)
        return [" ".join(c) for c in new if name is None or c[0] == name]


def run(script: Path, env: dict, timeout=60):
    return subprocess.run(
        ["bash", str(script)], env=env, capture_output=True, text=True, timeout=timeout
    )


class Server:
    """An HTTP file server on 127.0.0.1 (free port), in this process; records request paths."""

    def __init__(self, files: dict[str, bytes]):
        self.files = files
        self.paths: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.paths.append(self.path)
                body = outer.files.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.end_headers()
                if body is not None:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


# --------------------------------------------------------------------------- static checks


def test_scripts_are_shellcheck_clean():
    """Every node script passes shellcheck with no finding at all (info and style included)."""
    scripts = sorted(SCRIPTS.glob("node-*.sh"))
    assert {p.name for p in scripts} >= set(node.SCRIPTS)
    for path in scripts:
        res = subprocess.run([shellcheck(), "-x", str(path)], capture_output=True, text=True)
        assert res.returncode == 0, f"{path.name}:\n{res.stdout}"


def test_delivered_scripts_still_parse(node_scripts):
    """Stripping comments for user-data must leave valid bash (heredocs included)."""
    checked = 0
    for p in node_scripts.iterdir():
        assert subprocess.run(["bash", "-n", str(p)]).returncode == 0, p.name
        assert p.read_text().startswith("#!/usr/bin/env bash\n")
        checked += 1
    assert checked == len(node.SCRIPTS)


CONFIGS = {
    "worker": spec(),
    "worker-mirror-repo": spec(
        mirror="https://mirror.example.org/k8s/", repo="registry.example.org/k8s"
    ),
    "master": spec("master"),
    "master-mirror-repo": spec(
        "master", mirror="https://mirror.example.org", repo="registry.example.org/k8s"
    ),
}


@pytest.fixture(scope="module")
def schema_results():
    """Debian cloud-init 22.4's strict verdict on every config (one interpreter start)."""
    texts = {name: user_data(node_cloud_config(s)) for name, s in CONFIGS.items()}
    # A broken value, so that "valid" is shown to mean something.
    texts["broken"] = texts["worker"].replace("- path: ", "- pathname: ", 1)
    assert texts["broken"] != texts["worker"]
    return strict_schema(texts)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_cloud_config_passes_strict_schema(name, schema_results):
    """Debian cloud-init 22.4 accepts the node's cloud-config under strict validation."""
    assert schema_results[name] == "valid"
    assert schema_results["broken"] != "valid" and "pathname" in schema_results["broken"]


def test_cloud_config_content():
    """Scripts, PKI, env and unit land where the scripts and flanneld expect them."""
    cfg = node_cloud_config(CONFIGS["master-mirror-repo"])
    files = delivered(cfg)
    perms = {f["path"]: f["permissions"] for f in cfg["write_files"]}
    assert perms["/etc/flannel/pki/client.key"] == "0600"
    # The cluster's CAs and kubeadm's config reach a master by command, never in user-data
    # (anything on the node can read that from the metadata service).
    assert not [p for p in perms if p.startswith("/etc/kubernetes/")]
    assert all(perms[f"{node.SCRIPT_DIR}/{s}"] == "0755" for s in node.SCRIPTS)
    env = dict(line.split("=", 1) for line in files[node.ENV_FILE].splitlines())
    assert env["PACKAGE_MIRROR"] == "https://mirror.example.org"
    assert env["SANDBOX_IMAGE"] == "registry.example.org/k8s/pause:3.10"
    assert env["FLANNELD_SHA256_AMD64"] == versions.FLANNELD.sha256["amd64"]
    unit = files[node.FLANNEL_UNIT]
    assert (
        "--etcd-endpoints=https://10.0.0.11:2379,https://10.0.0.12:2379,https://10.0.0.13:2379"
        in unit
    )
    for flag in (
        "--etcd-cafile=/etc/flannel/pki/ca.crt",
        "--etcd-certfile=/etc/flannel/pki/client.crt",
        "--etcd-keyfile=/etc/flannel/pki/client.key",
        "--etcd-prefix=/coreos.com/network",
        "--ip-masq",
    ):
        assert flag in unit
    assert "kubeadm" not in " ".join(cfg["runcmd"])
    assert cfg["runcmd"][-1].endswith("|| exit 1")
    assert "containerd" in cfg["packages"]


def test_user_data_size():
    """Measured: every role's user-data, with the common part, stays under 16 KiB as it is
    delivered to Nova (userdata.render gzips it when the plain text would not fit)."""
    from cloud_init import userdata

    sizes = {}
    for name, s in CONFIGS.items():
        cfg = userdata.merge(
            userdata.common(
                hostname=s.name,
                user="k8s",
                jump_host=False,
                ssh_keys=["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExample ops"] * 2,
            ),
            node_cloud_config(s),
        )
        sizes[name] = len(userdata.render(cfg, node=s.name).encode())
    print("user-data bytes as delivered:", sizes)
    assert len(sizes) == 4
    for name, size in sizes.items():
        assert size < USER_DATA_LIMIT, (name, size)


def test_spec_validation():
    """Bad specs are refused with the offending field named."""
    import dataclasses

    with pytest.raises(ValueError, match="kubernetes_version"):
        node_cloud_config(dataclasses.replace(spec(), kubernetes_version="1.33"))
    with pytest.raises(ValueError, match="overlaps"):
        node_cloud_config(dataclasses.replace(spec(), pod_cidr="10.0.0.0/16"))
    with pytest.raises(ValueError, match="https"):
        node_cloud_config(
            dataclasses.replace(spec(), discovery_endpoints=("http://10.0.0.11:2379",))
        )
    with pytest.raises(ValueError, match="PACKAGE_MIRROR"):
        node_cloud_config(dataclasses.replace(spec(), package_mirror='https://x/"; rm -rf /'))


# --------------------------------------------------------------------------- kubeadm


def test_init_config_documents():
    """kubeadm init config: three documents with the right kinds, SANs, subnets and endpoint."""
    text = kubeadm.init_config(
        cluster_name="prod",
        node_name="prod-master-0",
        node_ip="10.0.0.5",
        kubernetes_version="1.33.5",
        endpoint="203.0.113.10:6443",
        cert_sans=["10.0.0.100", "10.0.0.5", "10.0.0.6", "203.0.113.10"],
        pod_cidr="10.244.0.0/16",
        service_cidr="10.96.0.0/12",
        image_repository="registry.example.org/k8s",
        labels={"pool": "system"},
        taints=[kubeadm.CONTROL_PLANE_TAINT],
    )
    docs = list(yaml.safe_load_all(text))
    assert [(d["apiVersion"], d["kind"]) for d in docs] == [
        ("kubeadm.k8s.io/v1beta4", "InitConfiguration"),
        ("kubeadm.k8s.io/v1beta4", "ClusterConfiguration"),
        ("kubelet.config.k8s.io/v1beta1", "KubeletConfiguration"),
    ]
    init, cluster, kubelet = docs
    assert init["localAPIEndpoint"]["advertiseAddress"] == "10.0.0.5"
    reg = init["nodeRegistration"]
    assert reg["name"] == "prod-master-0"
    args = {a["name"]: a["value"] for a in reg["kubeletExtraArgs"]}
    assert args == {
        "cloud-provider": "external",
        "node-ip": "10.0.0.5",
        "node-labels": "pool=system",
    }
    assert reg["taints"] == [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    ]
    assert cluster["controlPlaneEndpoint"] == "203.0.113.10:6443"
    assert cluster["kubernetesVersion"] == "v1.33.5"
    assert cluster["encryptionAlgorithm"] == "ECDSA-P256"
    assert cluster["imageRepository"] == "registry.example.org/k8s"
    assert cluster["networking"]["podSubnet"] == "10.244.0.0/16"
    assert cluster["networking"]["serviceSubnet"] == "10.96.0.0/12"
    assert cluster["apiServer"]["certSANs"] == [
        "203.0.113.10",
        "10.0.0.100",
        "10.0.0.5",
        "10.0.0.6",
    ]
    assert {"name": "cloud-provider", "value": "external"} in cluster["controllerManager"][
        "extraArgs"
    ]
    # flannel hands out subnets from the discovery etcd; node CIDRs from the controller
    # manager would be a second, disagreeing allocator.
    assert {"name": "allocate-node-cidrs", "value": "false"} in cluster["controllerManager"][
        "extraArgs"
    ]
    assert all(
        isinstance(cluster[c]["extraArgs"], list)
        for c in ("apiServer", "controllerManager", "scheduler")
    )
    assert kubelet["cgroupDriver"] == "systemd"


def test_join_configs():
    """Worker and control-plane joins: token discovery, no certificateKey, labels, taints."""
    common = dict(
        node_ip="10.0.0.21",
        endpoint="10.0.0.100:6443",
        token="abcdef.0123456789abcdef",
        ca_cert_hash="sha256:" + "a" * 64,
    )
    (worker,) = yaml.safe_load_all(
        kubeadm.join_config(
            node_name="dev-worker-gpu-0",
            control_plane=False,
            labels={"pool": "gpu"},
            taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}],
            **common,
        )
    )
    assert (worker["apiVersion"], worker["kind"]) == ("kubeadm.k8s.io/v1beta4", "JoinConfiguration")
    bt = worker["discovery"]["bootstrapToken"]
    assert bt == {
        "apiServerEndpoint": "10.0.0.100:6443",
        "token": "abcdef.0123456789abcdef",
        "caCertHashes": ["sha256:" + "a" * 64],
    }
    assert "controlPlane" not in worker
    assert worker["nodeRegistration"]["taints"] == [
        {"key": "gpu", "value": "true", "effect": "NoSchedule"}
    ]
    (master,) = yaml.safe_load_all(
        kubeadm.join_config(
            node_name="dev-master-1",
            control_plane=True,
            labels={},
            taints=[kubeadm.CONTROL_PLANE_TAINT],
            **common,
        )
    )
    assert master["controlPlane"] == {
        "localAPIEndpoint": {"advertiseAddress": "10.0.0.21", "bindPort": 6443}
    }
    assert "certificateKey" not in json.dumps(master)
    with pytest.raises(ValueError, match="token"):
        kubeadm.join_config(
            node_name="x", control_plane=False, labels={}, taints=[], **{**common, "token": "nope"}
        )


def test_kubelet_refuses_role_labels():
    """node-role.kubernetes.io/* labels would make the kubelet exit: refused up front."""
    with pytest.raises(ValueError, match="node-role.kubernetes.io"):
        kubeadm.join_config(
            node_name="x",
            node_ip="10.0.0.2",
            endpoint="e:6443",
            token="abcdef.0123456789abcdef",
            ca_cert_hash="sha256:" + "a" * 64,
            control_plane=False,
            labels={"node-role.kubernetes.io/worker": ""},
            taints=[],
        )
    # Allowed namespaces pass.
    kubeadm.join_config(
        node_name="x",
        node_ip="10.0.0.2",
        endpoint="e:6443",
        token="abcdef.0123456789abcdef",
        ca_cert_hash="sha256:" + "a" * 64,
        control_plane=False,
        taints=[],
        labels={"node.kubernetes.io/pool": "a", "example.com/tier": "b"},
    )


# --------------------------------------------------------------------------- node-prepare.sh


def test_prepare_configures_and_is_idempotent(tmp_path, node_scripts):
    """Modules, sysctls, swap, containerd config written once; a re-run changes nothing."""
    fakes = Fakes(
        tmp_path,
        ["modprobe", "sysctl", "swapoff", "systemctl", "apt-get", "dpkg-query", "containerd"],
    )
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    fstab = root / "etc/fstab"
    fstab.write_text("UUID=1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n")
    fakes.installed_after_first_check({"containerd": "status"})
    env = fakes.env(NODE_ROOT=root, SANDBOX_IMAGE="registry.example.org/k8s/pause:3.10")
    res = run(node_scripts / "node-prepare.sh", env)
    assert res.returncode == 0, res.stderr
    calls = fakes.ran()
    assert "modprobe overlay" in calls and "modprobe br_netfilter" in calls
    assert (
        "apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends containerd" in calls
    )
    assert "systemctl restart containerd" in calls
    assert (root / "etc/modules-load.d/k8s.conf").read_text() == "overlay\nbr_netfilter\n"
    sysctls = (root / "etc/sysctl.d/90-kubernetes.conf").read_text()
    for key in (
        "net.ipv4.ip_forward",
        "net.bridge.bridge-nf-call-iptables",
        "net.bridge.bridge-nf-call-ip6tables",
    ):
        assert f"{key} = 1" in sysctls
    assert fstab.read_text().splitlines()[1].startswith("# disabled for kubelet: /swapfile")
    toml = tomllib.loads((root / "etc/containerd/config.toml").read_text())
    cri = toml["plugins"]["io.containerd.grpc.v1.cri"]
    assert toml["version"] == 2
    assert cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"] is True
    assert cri["sandbox_image"] == "registry.example.org/k8s/pause:3.10"
    assert cri["cni"]["bin_dir"] == "/opt/cni/bin"

    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    res = run(node_scripts / "node-prepare.sh", env)
    assert res.returncode == 0, res.stderr
    calls = fakes.ran()
    assert not [c for c in calls if c.startswith(("systemctl restart", "apt-get", "sysctl"))], calls
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize(
    "version, ok",
    [
        ("1.6.20~ds1", False),  # Debian 12's containerd: below what Kubernetes 1.33 supports
        ("1.6.35", False),
        ("1.6.36", True),
        ("1.7.24", True),
        ("v2.0.2", True),
    ],
)
def test_prepare_refuses_a_containerd_kubernetes_does_not_support(
    tmp_path, node_scripts, version, ok
):
    """A containerd below the minimum fails the boot, naming the version found, the minimum and
    what to do; nothing is configured for it."""
    fakes = Fakes(
        tmp_path,
        ["modprobe", "sysctl", "swapoff", "systemctl", "apt-get", "dpkg-query", "containerd"],
    )
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    fakes.containerd(version)
    env = fakes.env(
        NODE_ROOT=root, SANDBOX_IMAGE="registry.k8s.io/pause:3.10", CONTAINERD_MIN_VERSION="1.6.36"
    )
    res = run(node_scripts / "node-prepare.sh", env)
    assert "containerd --version" in fakes.ran()
    if ok:
        assert res.returncode == 0, res.stderr
        assert (root / "etc/containerd/config.toml").exists()
    else:
        assert res.returncode == 1
        assert f"containerd {version.split('~')[0]} is older than 1.6.36" in res.stderr
        assert "image" in res.stderr  # what to do: boot from an image that ships a newer one
        assert not (root / "etc/containerd/config.toml").exists()


def test_node_packages_name_what_kubeadm_needs():
    """iptables by name (the kubelet only recommends it, and cloud-init installs without
    recommends on some images); the containerd minimum reaches the node in node.env."""
    cfg = node_cloud_config(spec())
    assert {"iptables", "containerd"} <= set(cfg["packages"])
    env = dict(line.split("=", 1) for line in delivered(cfg)[node.ENV_FILE].splitlines())
    assert env["CONTAINERD_MIN_VERSION"] == versions.CONTAINERD_MIN_VERSION == "1.6.36"
    # node-flannel-cni.sh checks flannel's MTU against the program's one VXLAN overhead.
    from cloud_init import constants

    assert env["VXLAN_OVERHEAD"] == str(constants.VXLAN_OVERHEAD) == "50"


# --------------------------------------------------------------------------- node-install-kubernetes.sh


@pytest.fixture(scope="module")
def release_key(tmp_path_factory):
    """An armored public key made by real gpg, and its fingerprint (stands in for pkgs.k8s.io's)."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    gpg = ["gpg", "--homedir", str(home), "--batch"]
    subprocess.run(
        [
            *gpg,
            "--passphrase",
            "",
            "--quick-gen-key",
            "test <test@example.org>",
            "ed25519",
            "sign",
            "never",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    armored = subprocess.run([*gpg, "--armor", "--export"], check=True, capture_output=True).stdout
    cols = subprocess.run(
        [*gpg, "--with-colons", "--list-keys"], check=True, capture_output=True, text=True
    ).stdout
    fpr = next(line.split(":")[9] for line in cols.splitlines() if line.startswith("fpr"))
    yield armored, fpr
    subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], capture_output=True)


def test_install_kubernetes_from_mirror(tmp_path, node_scripts, release_key):
    """Mirror URL used for key and source, exact version pinned and held; re-run is a no-op."""
    armored, fpr = release_key
    fakes = Fakes(tmp_path, ["apt-get", "apt-mark", "dpkg-query", "systemctl"])
    fakes.installed_after_first_check(
        {
            "kubeadm": "1.33.5-1.1",
            "kubelet": "1.33.5-1.1",
            "kubectl": "1.33.5-1.1",
            "cri-tools": "1.33.0-1.1",
        }
    )
    root = tmp_path / "root"
    with Server({"/mirror/core:/stable:/v1.33/deb/Release.key": armored}) as srv:
        env = fakes.env(
            NODE_ROOT=root,
            KUBERNETES_VERSION="1.33.5",
            PACKAGE_MIRROR=f"{srv.url}/mirror/",
            K8S_APT_KEY_FINGERPRINT=fpr,
        )
        res = run(node_scripts / "node-install-kubernetes.sh", env)
        assert res.returncode == 0, res.stderr
        assert srv.paths == ["/mirror/core:/stable:/v1.33/deb/Release.key"]
        source = (root / "etc/apt/sources.list.d/kubernetes.list").read_text()
        assert source == (
            f"deb [signed-by=/etc/apt/keyrings/kubernetes-apt-keyring.gpg] "
            f"{srv.url}/mirror/core:/stable:/v1.33/deb/ /\n"
        )
        keyring = root / "etc/apt/keyrings/kubernetes-apt-keyring.gpg"
        assert keyring.read_bytes()[:1] != b"-"  # dearmored (binary), as apt's signed-by wants
        calls = fakes.ran()
        install = [c for c in calls if c.startswith("apt-get") and " install " in c]
        # cri-tools by name: kubeadm >= 1.32 no longer depends on it, and kubeadm's preflight
        # and every operator need crictl. From the same per-minor repository.
        assert install == [
            "apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "
            "--allow-downgrades kubeadm=1.33.5-* kubelet=1.33.5-* kubectl=1.33.5-* "
            "cri-tools"
        ]
        assert "apt-mark hold kubeadm kubelet kubectl" in calls
        assert "systemctl enable kubelet" in calls

        res = run(node_scripts / "node-install-kubernetes.sh", env)
        assert res.returncode == 0, res.stderr
        assert "already at 1.33.5" in res.stderr
        assert not [c for c in fakes.ran() if not c.startswith("dpkg-query")]
        assert len(srv.paths) == 1


def test_install_kubernetes_refuses_foreign_key_and_bad_version(
    tmp_path, node_scripts, release_key
):
    """A mirror serving another key is refused; a malformed version is exit 2."""
    armored, _ = release_key
    fakes = Fakes(tmp_path, ["apt-get", "apt-mark", "dpkg-query", "systemctl"])
    root = tmp_path / "root"
    with Server({"/core:/stable:/v1.33/deb/Release.key": armored}) as srv:
        env = fakes.env(NODE_ROOT=root, KUBERNETES_VERSION="1.33.5", PACKAGE_MIRROR=srv.url)
        res = run(node_scripts / "node-install-kubernetes.sh", env)
        assert res.returncode == 1
        assert f"want {versions.KUBERNETES_APT_KEY_FINGERPRINT}" in res.stderr
        assert not (root / "etc/apt/keyrings/kubernetes-apt-keyring.gpg").exists()
        assert not [c for c in fakes.ran() if c.startswith("apt-get")]
    res = run(node_scripts / "node-install-kubernetes.sh", fakes.env(KUBERNETES_VERSION="1.33"))
    assert res.returncode == 2 and "MAJOR.MINOR.PATCH" in res.stderr


def test_install_kubernetes_default_repository(tmp_path, node_scripts):
    """Without a mirror the key and the source come from pkgs.k8s.io's per-minor repository.
    The fake curl downloads nothing: the key check fails and nothing is written."""
    fakes = Fakes(tmp_path, ["apt-get", "apt-mark", "dpkg-query", "systemctl", "curl"])
    root = tmp_path / "root"
    res = run(
        node_scripts / "node-install-kubernetes.sh",
        fakes.env(NODE_ROOT=root, KUBERNETES_VERSION="1.34.1"),
    )
    assert res.returncode == 1
    (curl,) = fakes.ran("curl")
    assert curl.split()[-1] == "https://pkgs.k8s.io/core:/stable:/v1.34/deb/Release.key"
    assert "is not the Kubernetes release key" in res.stderr
    assert not (root / "etc/apt/sources.list.d/kubernetes.list").exists()
    assert not fakes.ran("apt-get")


def test_apt_library_and_program_pin_one_key():
    """lib/apt.sh's fallback fingerprint is the program's, which node.env passes anyway."""
    text = (SCRIPTS / "lib" / "apt.sh").read_text()
    assert f"K8S_APT_KEY_FINGERPRINT:-{versions.KUBERNETES_APT_KEY_FINGERPRINT}}}" in text
    env = dict(
        line.split("=", 1)
        for line in delivered(node_cloud_config(spec()))[node.ENV_FILE].splitlines()
    )
    assert env["K8S_APT_KEY_FINGERPRINT"] == versions.KUBERNETES_APT_KEY_FINGERPRINT


# --------------------------------------------------------------------------- node-install-flannel.sh


def flannel_env(fakes, tmp_path, url, flanneld_sha, cni_sha=""):
    env = fakes.env(
        ARCH="amd64",
        BIN_DIR=tmp_path / "bin",
        CNI_BIN_DIR=tmp_path / "cni",
        DISTRO_CNI_DIR=tmp_path / "distro-cni",
        PACKAGE_MIRROR=url,
        DOWNLOAD_TIMEOUT=20,
        FLANNELD_VERSION=versions.FLANNELD.version,
        FLANNELD_PATH=versions.FLANNELD.path,
        FLANNELD_SHA256_AMD64=flanneld_sha,
        FLANNEL_CNI_VERSION=versions.FLANNEL_CNI_PLUGIN.version,
        FLANNEL_CNI_PATH=versions.FLANNEL_CNI_PLUGIN.path,
    )
    if cni_sha:
        env["FLANNEL_CNI_SHA256_AMD64"] = cni_sha
    distro = tmp_path / "distro-cni"
    distro.mkdir(exist_ok=True)
    for p in ("bridge", "host-local", "portmap", "loopback"):
        (distro / p).write_text("#!/bin/sh\n")
        (distro / p).chmod(0o755)
    return env


def test_install_flannel_verifies_and_uses_mirror(tmp_path, node_scripts):
    """flanneld and the CNI plugin come from <mirror>/github.com/<release path>, checked by
    sha256; standard plugins are linked; a re-run downloads nothing."""
    flanneld, plugin = b"\x7fELF fake flanneld", b"\x7fELF fake flannel cni"
    fpath = "/github.com/" + versions.FLANNELD.url_path("amd64")
    cpath = "/github.com/" + versions.FLANNEL_CNI_PLUGIN.url_path("amd64")
    fakes = Fakes(tmp_path, ["systemctl"])
    with Server({fpath: flanneld, cpath: plugin}) as srv:
        env = flannel_env(
            fakes,
            tmp_path,
            srv.url,
            hashlib.sha256(flanneld).hexdigest(),
            hashlib.sha256(plugin).hexdigest(),
        )
        res = run(node_scripts / "node-install-flannel.sh", env)
        assert res.returncode == 0, res.stderr
        assert srv.paths == [fpath, cpath]
        assert fpath == "/github.com/flannel-io/flannel/releases/download/v0.27.4/flanneld-amd64"
        assert (tmp_path / "bin/flanneld").read_bytes() == flanneld
        assert os.access(tmp_path / "bin/flanneld", os.X_OK)
        assert (tmp_path / "cni/flannel").read_bytes() == plugin
        assert os.readlink(tmp_path / "cni/portmap") == str(tmp_path / "distro-cni/portmap")
        assert fakes.ran("systemctl") == [
            "systemctl daemon-reload",
            "systemctl enable flanneld.service",
            "systemctl start --no-block flanneld.service",
        ]
        before = {p: p.stat().st_mtime_ns for p in (tmp_path / "bin").iterdir()}
        res = run(node_scripts / "node-install-flannel.sh", env)
        assert res.returncode == 0, res.stderr
        assert len(srv.paths) == 2
        assert {p: p.stat().st_mtime_ns for p in (tmp_path / "bin").iterdir()} == before


def test_install_flannel_checksum_mismatch_aborts(tmp_path, node_scripts):
    """A download whose sha256 differs is not installed and the script fails loudly."""
    fpath = "/github.com/" + versions.FLANNELD.url_path("amd64")
    fakes = Fakes(tmp_path, ["systemctl"])
    with Server({fpath: b"tampered"}) as srv:
        env = flannel_env(fakes, tmp_path, srv.url, versions.FLANNELD.sha256["amd64"])
        res = run(node_scripts / "node-install-flannel.sh", env)
    assert res.returncode == 1
    assert "checksum mismatch for flanneld v0.27.4" in res.stderr
    assert not (tmp_path / "bin/flanneld").exists()
    assert list((tmp_path / "bin").iterdir()) == []  # no temp file left behind
    assert not fakes.ran("systemctl")


def test_install_flannel_bridge_mode_skips_plugin(tmp_path, node_scripts):
    """With no published plugin checksum (the shipped default) only flanneld is downloaded."""
    assert node.cni_mode() == ("plugin" if versions.FLANNEL_CNI_PLUGIN.sha256 else "bridge")
    flanneld = b"\x7fELF fake flanneld"
    fpath = "/github.com/" + versions.FLANNELD.url_path("amd64")
    fakes = Fakes(tmp_path, ["systemctl"])
    with Server({fpath: flanneld}) as srv:
        env = flannel_env(fakes, tmp_path, srv.url, hashlib.sha256(flanneld).hexdigest())
        res = run(node_scripts / "node-install-flannel.sh", env)
        assert res.returncode == 0, res.stderr
        assert srv.paths == [fpath]
    assert not (tmp_path / "cni/flannel").exists()


# --------------------------------------------------------------------------- flanneld wrapper + CNI

IP_ADDRS = (
    "1: lo    inet 127.0.0.1/8 scope host lo\n"
    "2: ens3    inet 192.168.5.4/24 brd 192.168.5.255 scope global ens3\n"
    "3: ens4    inet 10.0.0.7/24 brd 10.0.0.255 scope global ens4"
)


def ip_fakes(tmp_path):
    """`ip` listing IP_ADDRS, each interface at MTU 1500; flanneld recording how it was run."""
    fakes = Fakes(tmp_path, ["ip", "flanneld"])
    fakes.rule("ip", "-o -4 addr show", {"stdout": IP_ADDRS + "\n"})
    fakes.rule("ip", "-o link show dev *", {"stdout": "2: ens3: <UP> mtu 1500 qdisc x\n"})
    return fakes


def test_flanneld_wrapper_pins_iface_and_mtu(tmp_path, node_scripts):
    """--iface is the interface holding the NETWORK_CIDR address; a too large MTU is lowered."""
    fakes = ip_fakes(tmp_path)
    env = fakes.env(
        NETWORK_CIDR="10.0.0.0/24", NETWORK_MTU="1450", FLANNELD=str(fakes.bin / "flanneld")
    )
    # Arguments after the script name go to flanneld.
    res = subprocess.run(
        ["bash", str(node_scripts / "node-flanneld.sh"), "--ip-masq"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert res.returncode == 0, res.stderr
    calls = fakes.ran()
    assert "flanneld --iface=ens4 --ip-masq" in calls
    assert "ip link set dev ens4 mtu 1450" in calls


def test_flanneld_wrapper_gives_up_without_address(tmp_path, node_scripts):
    """No address in NETWORK_CIDR: a clear message within IFACE_WAIT, flanneld not started."""
    fakes = ip_fakes(tmp_path)
    env = fakes.env(
        NETWORK_CIDR="172.16.0.0/16",
        NETWORK_MTU="1450",
        IFACE_WAIT="1",
        FLANNELD=str(fakes.bin / "flanneld"),
    )
    res = run(node_scripts / "node-flanneld.sh", env, timeout=20)
    assert res.returncode == 1
    assert "no interface has an address in 172.16.0.0/16 after 1s" in res.stderr
    assert fakes.ran("flanneld") == [] and fakes.calls("ip")


def test_flannel_cni_bridge_conflist_and_mtu_check(tmp_path, node_scripts):
    """Bridge mode writes the conflist the flannel plugin would generate; a pod MTU above
    network MTU - 50 fails."""
    subnet = tmp_path / "subnet.env"
    subnet.write_text(
        "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\n"
        "FLANNEL_MTU=1400\nFLANNEL_IPMASQ=true\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "NETWORK_MTU": "1450",
        "FLANNEL_CNI_MODE": "bridge",
        "SUBNET_ENV": str(subnet),
        "CNI_CONF_DIR": str(tmp_path / "net.d"),
    }
    res = run(node_scripts / "node-flannel-cni.sh", env)
    assert res.returncode == 0, res.stderr
    conf = json.loads((tmp_path / "net.d/10-flannel.conflist").read_text())
    bridge, portmap = conf["plugins"]
    assert bridge["type"] == "bridge" and bridge["hairpinMode"] is True and bridge["mtu"] == 1400
    assert bridge["ipMasq"] is False  # flanneld --ip-masq does it
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.244.3.0/24"}]]
    assert bridge["ipam"]["routes"] == [{"dst": "10.244.0.0/16"}]
    assert portmap == {"type": "portmap", "capabilities": {"portMappings": True}}

    subnet.write_text(subnet.read_text().replace("FLANNEL_MTU=1400", "FLANNEL_MTU=1450"))
    res = run(node_scripts / "node-flannel-cni.sh", env)
    assert res.returncode == 1 and "above network MTU 1450 - 50 = 1400" in res.stderr
