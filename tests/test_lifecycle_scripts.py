"""The node lifecycle scripts run for real under bash, fed the way the pulumi-command
resources feed them (`bash -s`, exports then the script on stdin), with fake kubeadm, kubectl,
etcdctl, cloud-init, systemctl and journalctl on PATH that record their calls and fail on
demand. Deadlines and pauses are shrunk through the scripts' own env knobs."""
import base64
import time
from pathlib import Path

import pytest

from cloud_init import SCRIPTS
from fakes import FakeBin, run_remote

FAKED = ["kubeadm", "kubectl", "etcdctl", "cloud-init", "systemctl", "journalctl"]
JOIN_CONFIG = """apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: 127.0.0.1:1
    token: abcdef.0123456789abcdef
    caCertHashes: ["sha256:0000000000000000000000000000000000000000000000000000000000000000"]
"""


@pytest.fixture
def node(tmp_path):
    """A fake node: its /etc/kubernetes and /run under tmp_path, fakes for its binaries."""
    fakes = FakeBin(tmp_path, FAKED)
    fakes.k8s = tmp_path / "etc-kubernetes"
    fakes.k8s.mkdir()
    fakes.run = tmp_path / "run"
    fakes.run.mkdir()
    return fakes


def join(node, **env):
    """node-join.sh with a real base64 join config and fast retries."""
    exports = dict(KUBEADM_JOIN_CONFIG_B64=base64.b64encode(JOIN_CONFIG.encode()).decode(),
                   JOIN_TIMEOUT="5", RETRY_DELAY="0.05", KUBELET_GRACE="0",
                   KUBERNETES_DIR=str(node.k8s), RUNTIME_DIR=str(node.run))
    exports.update(env)
    return run_remote(SCRIPTS / "node-join.sh", exports, node.env())


def verbs(calls):
    """`kubeadm join --config X` -> "join": the sequence of subcommands."""
    return [args[0] for args in calls]


# --- node-join.sh -------------------------------------------------------------------------

def test_join_retried_after_two_failures(node):
    """A join that fails twice (API not up yet) is reset and retried, and ends joined; the
    join config the fake saw is the one we sent, and it is gone afterwards (it holds the token)."""
    seen = node.root / "seen-config"
    node.rule("kubeadm", "join --config *",
              {"rc": 1, "stderr": "couldn't validate the identity of the API Server"},
              {"rc": 1, "stderr": "token abcdef.0123456789abcdef is invalid"},
              {"rc": 0, "write": {str(node.k8s / "kubelet.conf"): "x"}})
    result = join(node)
    assert result.returncode == 0, result.stderr
    assert verbs(node.calls("kubeadm")) == ["join", "reset", "join", "reset", "join"]
    assert "joined the cluster after 3 attempt(s)" in result.stdout
    assert "0123456789abcdef" not in result.stdout + result.stderr  # token redacted
    assert list(node.run.iterdir()) == []
    config_path = node.calls("kubeadm")[0][2]
    assert config_path.startswith(str(node.run)) and not Path(config_path).exists()


def test_join_gives_up_at_deadline_with_actionable_message(node):
    """Past JOIN_TIMEOUT the script stops, exits 1 and tells the user what to check: the API
    endpoint (probed), the token's lifetime, the CA pin and the kubelet's journal."""
    node.rule("kubeadm", "join *", {"rc": 1, "stderr": "error execution phase preflight: "
                                    "couldn't validate the identity of the API Server"})
    node.rule("journalctl", "*", {"stdout": "kubelet.go:1: failed to load kubelet config\n"})
    started = time.monotonic()
    result = join(node, JOIN_TIMEOUT="1", RETRY_DELAY="0.2")
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    assert elapsed < 4, elapsed
    assert "did not join within JOIN_TIMEOUT=1s" in result.stderr
    assert "API endpoint 127.0.0.1:1 is NOT reachable" in result.stderr
    assert "bootstrap token" in result.stderr and "not pinned" in result.stderr
    assert "failed to load kubelet config" in result.stderr
    assert "couldn't validate the identity" in result.stderr
    joins = verbs(node.calls("kubeadm")).count("join")
    assert joins >= 2  # retried with backoff, not once
    assert list(node.run.iterdir()) == []


def test_join_on_joined_node_does_nothing(node):
    """kubelet.conf present and kubelet active: no kubeadm call at all, exit 0."""
    (node.k8s / "kubelet.conf").write_text("x")
    result = join(node)
    assert result.returncode == 0, result.stderr
    assert "already joined" in result.stdout
    assert node.calls("kubeadm") == []
    assert node.calls("systemctl") == [["is-active", "--quiet", "kubelet"]]


def test_half_joined_node_is_reset_first(node):
    """kubelet.conf present but kubelet dead: a previous join died half way; reset, then join."""
    (node.k8s / "kubelet.conf").write_text("x")
    node.rule("systemctl", "is-active *", {"rc": 3})
    result = join(node)
    assert result.returncode == 0, result.stderr
    assert verbs(node.calls("kubeadm")) == ["reset", "join"]


def test_join_preserves_shipped_pki_across_reset(node):
    """On a control-plane joiner whose CA cloud-init placed, `kubeadm reset` (faked here as
    wiping pki/) must not lose it: the next attempt finds the CA key again."""
    pki = node.k8s / "pki"
    (pki / "etcd").mkdir(parents=True)
    (pki / "ca.key").write_text("CA KEY")
    (pki / "etcd" / "ca.key").write_text("ETCD CA KEY")
    node.rule("kubeadm", "join *", {"rc": 1}, {"rc": 0})
    node.rule("kubeadm", "reset *", {"remove": [str(pki / "ca.key"), str(pki / "etcd" / "ca.key")]})
    result = join(node, JOIN_PRESERVE_PKI="true")
    assert result.returncode == 0, result.stderr
    assert verbs(node.calls("kubeadm")) == ["join", "reset", "join"]
    assert (pki / "ca.key").read_text() == "CA KEY"
    assert (pki / "etcd" / "ca.key").read_text() == "ETCD CA KEY"


def test_join_rejects_missing_config(node):
    """No join config: exit 2 at once with the variable's name, nothing run."""
    result = join(node, KUBEADM_JOIN_CONFIG_B64="")
    assert result.returncode == 2
    assert "KUBEADM_JOIN_CONFIG_B64 is not set" in result.stderr
    assert node.calls() == []
