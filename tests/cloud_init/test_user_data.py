"""What every VM receives, as the offline plan renders it for whole stacks: strict
cloud-init schema validity, size as delivered, no private key but the node's own, and the
kubeadm configuration the first master gets, read back out of its command."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from cloud_init import SCRIPTS
from cloud_init.userdata import MAX_USER_DATA, deliver
from planning import ROOT
from validators import shellcheck, strict_schema

CONFIGS = {
    "one-master": ("dev",),
    "three-masters-two-pools": ("prod",),
    "mirror-and-image-repository": (
        "dev",
        "packageMirror=https://mirror.example.org/k8s",
        "imageRepository=registry.example.org/k8s",
    ),
}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_every_user_data_passes_strict_schema(plan, config):
    """All roles of the stack, and one deliberately broken copy to show the check bites."""
    p = plan(*CONFIGS[config])
    texts = {name: p.user_data(name) for name in p.instances}
    assert {n.rsplit("-", 1)[0].split("-", 1)[1] for n in texts} >= {"discovery", "master"}
    assert any("-worker-" in n for n in texts)
    first = next(iter(texts.values()))
    broken = first.replace("\n- path: ", "\n- pathname: ", 1)
    assert broken != first
    verdict = strict_schema({**texts, "__broken__": broken})
    assert verdict.pop("__broken__") != "valid"
    assert verdict == {name: "valid" for name in texts}


@pytest.mark.parametrize("config", list(CONFIGS))
def test_user_data_size_as_delivered(plan, config):
    """Under 16 KiB as Nova receives it (gzip + base64 when the text is larger)."""
    p = plan(*CONFIGS[config])
    for name in p.instances:
        text = p.user_data(name)
        assert text.startswith("#cloud-config\n")
        assert len(deliver(text).encode()) <= MAX_USER_DATA, name


@pytest.mark.parametrize("config", list(CONFIGS))
def test_every_runcmd_step_fails_the_boot(plan, config):
    """cloud-init runs runcmd as one sh script whose status is its last command's: every step
    of every role (sshd, discovery, node bootstrap, the masters' VIP) must end it on failure,
    or a broken node passes the ready gate."""
    p = plan(*CONFIGS[config])
    steps = {name: yaml.safe_load(p.user_data(name))["runcmd"] for name in p.instances}
    vip_steps = [s for entries in steps.values() for s in entries if "keepalived" in s]
    assert bool(vip_steps) == (config == "three-masters-two-pools")
    for name, entries in steps.items():
        assert len(entries) >= 2, name
        for entry in entries:
            assert isinstance(entry, str) and entry.endswith(" || exit 1"), (name, entry)


def test_only_the_node_own_secrets_are_in_user_data(plan):
    """No CA key, no service-account key, no deploy key in any user-data: masters get the
    cluster PKI from a command. A discovery member has its own etcd key; a kube node has the
    flannel client key, nothing more."""
    p = plan("prod")
    for name in p.instances:
        text = p.user_data(name)
        keys = re.findall(r"-----BEGIN ([A-Z ]*)PRIVATE KEY-----", text)
        assert len(keys) == 1, (name, keys)
        cfg = yaml.safe_load(text)
        key_files = [
            f["path"] for f in cfg["write_files"] if "PRIVATE KEY" in str(f.get("content"))
        ]
        expected = (
            "/etc/etcd/pki/server.key" if "-discovery-" in name else "/etc/flannel/pki/client.key"
        )
        assert key_files == [expected], name
        for f in cfg["write_files"]:
            if f["path"] == expected:
                assert f["permissions"] == "0600"


def test_first_master_kubeadm_config(plan):
    """The init configuration the first master gets carries the stack's endpoint, SANs and
    subnets, as kubeadm.k8s.io/v1beta4 documents, next to the shared PKI and the API server's
    encryption configuration and audit policy."""
    p = plan("prod")
    files = p.kubeadm_files("prod-master-0")
    assert sorted(files) == sorted(
        [
            "kubeadm/init.yaml",
            "pki/ca.crt",
            "pki/ca.key",
            "pki/front-proxy-ca.crt",
            "pki/front-proxy-ca.key",
            "pki/etcd/ca.crt",
            "pki/etcd/ca.key",
            "pki/sa.key",
            "pki/sa.pub",
            "encryption/config.yaml",
            "audit/policy.yaml",
        ]
    )
    docs = list(yaml.safe_load_all(files["kubeadm/init.yaml"]))
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    assert ("kubeadm.k8s.io/v1beta4", "InitConfiguration") in kinds
    assert ("kubeadm.k8s.io/v1beta4", "ClusterConfiguration") in kinds
    cluster = next(d for d in docs if d["kind"] == "ClusterConfiguration")
    init = next(d for d in docs if d["kind"] == "InitConfiguration")
    out = p.data["outputs"]
    vip = cluster["controlPlaneEndpoint"].rsplit(":", 1)[0]
    assert cluster["controlPlaneEndpoint"].endswith(":8443") and vip not in out["masterAddresses"]
    public = out["apiEndpoint"].removeprefix("https://").rsplit(":", 1)[0]
    assert {vip, public, *out["masterAddresses"]} <= set(cluster["apiServer"]["certSANs"])
    assert cluster["networking"] == {
        "podSubnet": "10.244.0.0/16",
        "serviceSubnet": "10.96.0.0/12",
        "dnsDomain": "cluster.local",
    }
    assert cluster["kubernetesVersion"] == "v1.33.5"
    assert init["localAPIEndpoint"]["advertiseAddress"] == out["masterAddresses"][0]
    taints = init["nodeRegistration"]["taints"]
    assert {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"} in taints


def test_every_script_passes_shellcheck():
    """Every node script, with no warning at all."""
    scripts = sorted(SCRIPTS.glob("*.sh"))
    assert len(scripts) >= 20
    res = subprocess.run([shellcheck(), "-x", *map(str, scripts)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout[-4000:]


def test_every_script_is_used():
    """A script nothing ships is dead weight (or a missing wire)."""
    root = ROOT
    code = "\n".join(
        p.read_text() for d in ("components", "cloud_init") for p in (root / d).glob("*.py")
    )
    unused = [s.name for s in SCRIPTS.glob("*.sh") if s.name not in code]
    assert unused == []
