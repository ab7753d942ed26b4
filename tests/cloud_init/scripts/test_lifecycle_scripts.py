"""The node lifecycle scripts run for real under bash, fed the way the pulumi-command
resources feed them (`bash -s`, exports then the script on stdin), with fake kubeadm, kubectl,
etcdctl, cloud-init, systemctl and journalctl on PATH that record their calls and fail on
demand. Deadlines and pauses are shrunk through the scripts' own env knobs."""

import base64
import os
import socket
import threading
import time
from pathlib import Path

import pytest

from cloud_init import SCRIPTS
from fakes import Clock, FakeBin, run_remote

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
    """A fake node: its /etc/kubernetes and /run under tmp_path, fakes for its binaries, and
    a fake clock (node.clock) that only the scripts' sleeps move: deadlines count tries."""
    fakes = FakeBin(tmp_path, FAKED, clock=True)
    fakes.k8s = tmp_path / "etc-kubernetes"
    fakes.k8s.mkdir()
    fakes.run = tmp_path / "run"
    fakes.run.mkdir()
    return fakes


def join(node, **env):
    """node-join.sh with a real base64 join config and fast retries."""
    exports = dict(
        KUBEADM_JOIN_CONFIG_B64=base64.b64encode(JOIN_CONFIG.encode()).decode(),
        JOIN_TIMEOUT="5",
        RETRY_DELAY="0.05",
        KUBELET_GRACE="0",
        KUBERNETES_DIR=str(node.k8s),
        RUNTIME_DIR=str(node.run),
    )
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
    node.rule(
        "kubeadm",
        "join --config *",
        {
            "rc": 1,
            "stderr": "couldn't validate the identity of the API Server",
            "copy_arg": [2, str(seen)],
        },
        {"rc": 1, "stderr": "token abcdef.0123456789abcdef is invalid"},
        {"rc": 0, "write": {str(node.k8s / "kubelet.conf"): "x"}},
    )
    result = join(node)
    assert result.returncode == 0, result.stderr
    assert verbs(node.calls("kubeadm")) == ["join", "reset", "join", "reset", "join"]
    assert "joined the cluster after 3 attempt(s)" in result.stdout
    assert "0123456789abcdef" not in result.stdout + result.stderr  # token redacted
    assert list(node.run.iterdir()) == []
    config_path = node.calls("kubeadm")[0][2]
    assert config_path.startswith(str(node.run)) and not Path(config_path).exists()
    assert seen.read_text() == JOIN_CONFIG


def test_join_gives_up_at_deadline_with_actionable_message(node):
    """Past JOIN_TIMEOUT the script stops, exits 1 and tells the user what to check: the API
    endpoint (probed), the token's lifetime, the CA pin and the kubelet's journal."""
    node.rule(
        "kubeadm",
        "join *",
        {
            "rc": 1,
            "stderr": "error execution phase preflight: "
            "couldn't validate the identity of the API Server",
        },
    )
    node.rule("journalctl", "*", {"stdout": "kubelet.go:1: failed to load kubelet config\n"})
    result = join(node, JOIN_TIMEOUT="10", RETRY_DELAY="2")
    assert result.returncode == 1
    # Attempts at 0, 2 and 6 s; the pause doubles, and the last one is cut to the deadline.
    # Counted from the script's own lines: each attempt is bounded for real by what is left
    # (10, 8 and 4 s), which could cut a fake's record of the call on a busy machine.
    attempts = [line for line in result.stdout.splitlines() if ": kubeadm join (" in line]
    assert [a.split(":")[1] for a in attempts] == [" attempt 1", " attempt 2", " attempt 3"]
    assert node.clock.sleeps() == [2.0, 4.0, 4.0]
    assert "did not join within JOIN_TIMEOUT=10s" in result.stderr
    assert "API endpoint 127.0.0.1:1 is NOT reachable" in result.stderr
    assert "bootstrap token" in result.stderr and "not pinned" in result.stderr
    # A later plain `pulumi up` reuses the token: the advice says how to mint a new one.
    assert "pulumi up --replace" in result.stderr and "-token')" in result.stderr
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
    result = join(node, PRESERVE_PKI="true")
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


# --- node-ready.sh ------------------------------------------------------------------------


def ready(node, log, **env):
    exports = dict(READY_TIMEOUT="5", CLOUD_INIT_OUTPUT_LOG=str(log))
    exports.update(env)
    return run_remote(SCRIPTS / "node-ready.sh", exports, node.env())


def test_ready_gate_passes_when_cloud_init_is_done(node, tmp_path):
    """cloud-init done: exit 0, and the wait was `cloud-init status --wait`."""
    result = ready(node, tmp_path / "none.log")
    assert result.returncode == 0, result.stderr
    assert node.calls("cloud-init") == [["status", "--wait"]]


def test_ready_gate_prints_log_tail_on_failure(node, tmp_path):
    """cloud-init error: exit 1, stderr names the failure and carries the last 40 lines of
    the output log (not the 41st from the end), plus `status --long`."""
    log = tmp_path / "cloud-init-output.log"
    log.write_text("".join(f"log line {i}\n" for i in range(1, 101)))
    node.rule("cloud-init", "status --wait", {"rc": 1})
    node.rule("cloud-init", "status --long", {"stdout": "status: error\nerrors:\n - boom\n"})
    result = ready(node, log)
    assert result.returncode == 1
    assert "cloud-init failed (status exit 1)" in result.stderr
    shown = [n for n in range(1, 101) if f"log line {n}\n" in result.stderr]
    assert shown == list(range(61, 101))
    assert "- boom" in result.stderr


def test_ready_gate_is_bounded(node, tmp_path):
    """cloud-init never finishing: READY_TIMEOUT stops the wait with a message saying so."""
    # A wait that would outlast run_remote's own bound (60 s): only READY_TIMEOUT ends it.
    node.rule("cloud-init", "status --wait", {"sleep": 600})
    result = ready(node, tmp_path / "missing.log", READY_TIMEOUT="0.5")
    assert result.returncode == 1
    assert "did not finish within READY_TIMEOUT=0.5s" in result.stderr
    assert "missing.log is missing" in result.stderr


def test_ready_gate_accepts_recoverable_errors(node, tmp_path):
    """cloud-init >= 23.4 exits 2 for recoverable errors (e.g. deprecated keys): the node is
    up, so pass, but show the details."""
    node.rule("cloud-init", "status --wait", {"rc": 2})
    node.rule("cloud-init", "status --long", {"stdout": "recoverable_errors: deprecated key\n"})
    result = ready(node, tmp_path / "x.log")
    assert result.returncode == 0
    assert "recoverable_errors: deprecated key" in result.stderr


# --- master-init.sh -----------------------------------------------------------------------


def init(node, **env):
    config = node.k8s / "kubeadm" / "init.yaml"
    config.parent.mkdir(exist_ok=True)
    config.write_text("kind: InitConfiguration\n")
    exports = dict(
        KUBERNETES_DIR=str(node.k8s),
        KUBEADM_INIT_CONFIG=str(config),
        INIT_TIMEOUT="5",
        RETRY_DELAY="0.05",
        API_GRACE="0.5",
        INIT_MARKER=str(node.root / "var-lib-kubelet" / "kubeadm-init.done"),
        INIT_LOG=str(node.root / "kubeadm-init.log"),
        RUNTIME_DIR=str(node.run),
    )
    exports.update(env)
    return run_remote(SCRIPTS / "master-init.sh", exports, node.env())


def init_writes_admin_conf(node, rc=0):
    return {
        "rc": rc,
        "write": {str(node.k8s / "admin.conf"): "admin"},
        "stdout": "kubeadm join 10.0.0.5:6443 --token abcdef.0123456789abcdef\n",
    }


def test_init_runs_once_then_is_idempotent(node):
    """First run: one kubeadm init with the config, then it waits for the API (down at first)
    before returning. Second run: the API answers, nothing is re-run."""
    node.rule("kubectl", "* get --raw /readyz", {"rc": 1}, {"rc": 1}, {"rc": 0})
    node.rule("kubeadm", "init *", init_writes_admin_conf(node))
    first = init(node)
    assert first.returncode == 0, first.stderr
    assert node.calls("kubeadm") == [["init", "--config", str(node.k8s / "kubeadm" / "init.yaml")]]
    assert len(node.calls("kubectl")) == 3  # waited until /readyz answered
    assert "0123456789abcdef" not in first.stdout + first.stderr
    second = init(node)
    assert second.returncode == 0, second.stderr
    assert "already initialised" in second.stdout
    assert len(node.calls("kubeadm")) == 1
    assert list(node.run.iterdir()) == []


def test_init_resets_half_done_state_and_retries(node):
    """An init that died half way (admin.conf there, API silent, no marker) is reset first;
    a failing init is retried after a reset, within INIT_ATTEMPTS."""
    (node.k8s / "admin.conf").write_text("stale")
    node.rule("kubectl", "* get --raw /readyz", {"rc": 1}, {"rc": 0})
    node.rule("kubeadm", "init *", init_writes_admin_conf(node, rc=1), init_writes_admin_conf(node))
    node.rule("kubeadm", "reset *", {"remove": [str(node.k8s / "admin.conf")]})
    result = init(node, INIT_ATTEMPTS="3")
    assert result.returncode == 0, result.stderr
    assert verbs(node.calls("kubeadm")) == ["reset", "init", "reset", "init"]
    assert "attempt 1 failed" in result.stderr
    assert "abcdef.<redacted>" in result.stderr


def test_init_gives_up_after_attempts(node):
    """Every init failing: stop after INIT_ATTEMPTS with a message pointing at the full log."""
    node.rule("kubectl", "* get --raw /readyz", {"rc": 1})
    node.rule("kubeadm", "init *", {"rc": 1, "stderr": "[ERROR Port-6443]: Port 6443 is in use\n"})
    result = init(node, INIT_ATTEMPTS="2")
    assert result.returncode == 1
    assert verbs(node.calls("kubeadm")) == ["init", "init"]
    assert "Port 6443 is in use" in result.stderr
    assert "kubeadm-init.log (full kubeadm output)" in result.stderr


def test_init_never_resets_a_cluster_that_was_up(node):
    """Marker present (init completed once) but the API silent: fail loudly, reset nothing."""
    marker = node.root / "var-lib-kubelet" / "kubeadm-init.done"
    marker.parent.mkdir()
    marker.write_text("")
    (node.k8s / "admin.conf").write_text("admin")
    node.rule("kubectl", "* get --raw /readyz", {"rc": 1})
    result = init(node)
    assert result.returncode == 1
    assert "not resetting a running control plane" in result.stderr
    assert node.calls("kubeadm") == []


def test_init_keeps_shipped_ca_across_reset(node):
    """PRESERVE_PKI: the CA cloud-init placed survives the reset of a half-done init."""
    (node.k8s / "pki").mkdir()
    (node.k8s / "pki" / "ca.key").write_text("CA KEY")
    (node.k8s / "admin.conf").write_text("stale")
    node.rule("kubectl", "* get --raw /readyz", {"rc": 1}, {"rc": 0})
    node.rule("kubeadm", "reset *", {"remove": [str(node.k8s / "pki" / "ca.key")]})
    node.rule("kubeadm", "init *", init_writes_admin_conf(node))
    result = init(node, PRESERVE_PKI="true")
    assert result.returncode == 0, result.stderr
    assert verbs(node.calls("kubeadm")) == ["reset", "init"]
    assert (node.k8s / "pki" / "ca.key").read_text() == "CA KEY"


# --- master-join-token.sh -----------------------------------------------------------------


def test_token_is_the_only_output_and_retried_until_api_answers(node):
    """The API is not answering at first: retried; stdout is exactly the token (a secret the
    caller captures), created with the requested TTL."""
    node.rule(
        "kubeadm",
        "token create *",
        {"rc": 1, "stderr": "connection refused"},
        {"rc": 0, "stdout": "abcdef.0123456789abcdef\n"},
    )
    result = run_remote(
        SCRIPTS / "master-join-token.sh",
        dict(
            TOKEN_TTL="15m",
            RETRY_DELAY="0.05",
            KUBERNETES_DIR=str(node.k8s),
            TOKEN_DESCRIPTION="join of worker-a-0",
        ),
        node.env(),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "abcdef.0123456789abcdef\n"
    calls = node.calls("kubeadm")
    assert len(calls) == 2
    assert calls[1] == [
        "token",
        "create",
        "--kubeconfig",
        str(node.k8s / "admin.conf"),
        "--ttl",
        "15m",
        "--description",
        "join of worker-a-0",
    ]


def test_token_gives_up_with_kubeadm_error(node):
    """No token by TOKEN_TIMEOUT: exit 1, nothing on stdout, kubeadm's error on stderr."""
    node.rule("kubeadm", "token create *", {"rc": 1, "stderr": "connection refused\n"})
    result = run_remote(
        SCRIPTS / "master-join-token.sh",
        dict(TOKEN_TIMEOUT="0.3", RETRY_DELAY="0.05", KUBERNETES_DIR=str(node.k8s)),
        node.env(),
    )
    assert result.returncode == 1
    assert result.stdout == ""
    assert "connection refused" in result.stderr and "TOKEN_TIMEOUT=0.3s" in result.stderr


# --- master-drain-node.sh -----------------------------------------------------------------

ETCD_MEMBERS = """8e9e05c52164694d, started, master-0, https://10.0.0.10:2380, https://10.0.0.10:2379, false
91bc3c398fb3c146, started, master-1, https://10.0.0.11:2380, https://10.0.0.11:2379, false
fd422379fda50e48, started, master-2, https://10.0.0.12:2380, https://10.0.0.12:2379, false
"""


def drain_node(node, name, **env):
    (node.k8s / "admin.conf").write_text("admin")
    exports = dict(
        NODE_NAME=name,
        DRAIN_TIMEOUT="5",
        API_TIMEOUT="0.5",
        ETCD_TIMEOUT="1",
        RETRY_DELAY="0.05",
        KUBERNETES_DIR=str(node.k8s),
    )
    exports.update(env)
    return run_remote(SCRIPTS / "master-drain-node.sh", exports, node.env())


def kubectl_verbs(node):
    """kubectl calls without the --kubeconfig/--request-timeout prefix."""
    return [
        " ".join(
            a
            for a in args
            if not a.startswith("--kubeconfig")
            and a != str(node.k8s / "admin.conf")
            and not a.startswith("--request-timeout")
        )
        for args in node.calls("kubectl")
    ]


def node_is(node, name, ready):
    node.rule(
        "kubectl", f"* get node {name} --ignore-not-found -o name", {"stdout": f"node/{name}\n"}
    )
    node.rule("kubectl", f"* get node {name} -o jsonpath=*", {"stdout": ready})


def test_drain_healthy_worker(node):
    """The ordinary scale-down: cordon, drain ignoring daemonsets and allowing emptyDir loss,
    then delete the Node; no etcd for a worker."""
    node_is(node, "worker-a-1", "True")
    result = drain_node(node, "worker-a-1")
    assert result.returncode == 0, result.stderr
    calls = kubectl_verbs(node)
    assert calls[2] == "cordon worker-a-1"
    drains = [c for c in calls if c.startswith("drain ")]
    assert len(drains) == 1 and "--ignore-daemonsets --delete-emptydir-data" in drains[0]
    assert calls[-1] == "delete node worker-a-1 --ignore-not-found --wait=false"
    assert node.calls("etcdctl") == []


def test_drain_with_host_gone_still_deletes_node(node):
    """The host is gone but the Node still says Ready (not noticed yet): the drain hangs until
    its bound (two thirds of DRAIN_TIMEOUT), the forced path gets what is left but the last 2 s,
    here nothing, the pods are deleted outright and the Node deleted; exit 0. The drain would
    outlast run_remote's own bound (60 s): only the script's bound ends it."""
    node_is(node, "worker-a-1", "True")
    node.rule("kubectl", "* drain worker-a-1 *", {"sleep": 600})
    result = drain_node(node, "worker-a-1", DRAIN_TIMEOUT="3")
    assert result.returncode == 0, result.stderr
    # The script's own word that the bounded drain ended unfinished (the fake's record of the
    # call could be cut by that bound on a busy machine).
    assert "drain of worker-a-1 did not finish" in result.stderr and "forcing" in result.stderr
    calls = kubectl_verbs(node)
    assert any(
        c.startswith(
            "delete pods --all-namespaces --field-selector spec.nodeName=worker-a-1 --force"
        )
        for c in calls
    ), calls
    assert calls[-1] == "delete node worker-a-1 --ignore-not-found --wait=false"


def test_drain_of_notready_node_skips_eviction(node):
    """A NotReady Node (kubelet gone) can never finish an eviction: no drain, pods deleted
    outright, Node deleted, exit 0."""
    node_is(node, "worker-a-1", "Unknown")
    result = drain_node(node, "worker-a-1")
    assert result.returncode == 0, result.stderr
    calls = kubectl_verbs(node)
    assert not any(c.startswith("drain ") for c in calls)
    assert calls[-1] == "delete node worker-a-1 --ignore-not-found --wait=false"


def test_drain_blocked_by_pdb_is_forced(node):
    """A PodDisruptionBudget refusing evictions: the polite drain fails, the forced one
    (--disable-eviction) runs, the Node goes."""
    node_is(node, "worker-a-1", "True")
    node.rule("kubectl", "* drain * --disable-eviction *", {"rc": 0})
    node.rule(
        "kubectl",
        "* drain *",
        {"rc": 1, "stderr": "Cannot evict pod as it would violate the pod's disruption budget."},
    )
    result = drain_node(node, "worker-a-1")
    assert result.returncode == 0, result.stderr
    drains = [c for c in kubectl_verbs(node) if c.startswith("drain ")]
    assert len(drains) == 2 and "--disable-eviction --force" in drains[1]
    assert "forcing" in result.stderr


def test_drain_of_absent_node_succeeds(node):
    """The Node object is already gone: nothing to cordon, drain or delete; exit 0."""
    result = drain_node(node, "worker-a-9")
    assert result.returncode == 0, result.stderr
    assert "already absent" in result.stdout
    assert [c.split()[0] for c in kubectl_verbs(node)] == ["get", "get"]


def test_drain_when_api_is_gone_does_not_wedge(node):
    """`pulumi destroy` of the whole stack: the API never answers; warn and exit 0 within
    API_TIMEOUT (and try etcd only briefly)."""
    node.rule("kubectl", "* get --raw /readyz", {"rc": 1})
    node.rule("etcdctl", "*", {"rc": 1, "stderr": "context deadline exceeded"})
    result = drain_node(node, "master-2", REMOVE_ETCD_MEMBER="true")
    assert result.returncode == 0, result.stderr
    assert "does not answer" in result.stderr
    # API_TIMEOUT=0.5 with RETRY_DELAY=0.05: tries at 0 to 0.45 s; then etcd, bounded by the
    # API's timeout as the API is gone, the same ten tries.
    assert kubectl_verbs(node) == ["get --raw /readyz"] * 10
    assert len(node.calls("etcdctl")) == 10
    assert node.clock.sleeps() == [0.05] * 18


def test_master_drain_removes_its_etcd_member(node):
    """Deleting master-1: after its Node, the etcd member *named master-1* goes (not another),
    through the local stacked etcd with the kubeadm etcd client certs."""
    node_is(node, "master-1", "True")
    node.rule("etcdctl", "* member list *", {"stdout": ETCD_MEMBERS})
    result = drain_node(node, "master-1", REMOVE_ETCD_MEMBER="true")
    assert result.returncode == 0, result.stderr
    calls = node.calls("etcdctl")
    assert calls[-1][-2:] == ["remove", "91bc3c398fb3c146"]
    assert f"--cert={node.k8s}/pki/etcd/healthcheck-client.crt" in calls[-1]
    assert "--endpoints=https://127.0.0.1:2379" in calls[-1]


def test_master_drain_with_member_already_gone(node):
    """The etcd member was removed before (or the node never became one): success, no remove."""
    node.rule("etcdctl", "* member list *", {"stdout": ETCD_MEMBERS})
    result = drain_node(node, "master-7", REMOVE_ETCD_MEMBER="true")
    assert result.returncode == 0, result.stderr
    calls = node.calls("etcdctl")
    assert len(calls) == 1 and calls[0][-4:] == ["member", "list", "-w", "simple"]
    assert "already removed" in result.stdout


# --- master-drain-node.sh against a real etcd ---------------------------------------------


def _free_ports(count):
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _etcd_pki(pki):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, in kubeadm's
    pki/etcd file names."""
    import datetime
    import ipaddress
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    start = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    def write(stem, cert, key):
        (pki / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (pki / f"{stem}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(name("etcd-ca"))
        .issuer_name(name("etcd-ca"))
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    write("ca", ca, ca_key)
    for serial, stem, usage in [
        (2, "server", ExtendedKeyUsageOID.SERVER_AUTH),
        (3, "healthcheck-client", ExtendedKeyUsageOID.CLIENT_AUTH),
    ]:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(stem))
            .issuer_name(name("etcd-ca"))
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=3650))
            .add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .sign(ca_key, hashes.SHA256())
        )
        write(stem, cert, key)


@pytest.fixture
def etcd_pair(tmp_path):
    """A real etcd (TLS clients, kubeadm's cert names) named master-0, plus a second member
    master-1 that joined as a learner and whose host then died (process killed). Both
    processes are killed by the PIDs started here, whatever happens."""
    import shutil
    import subprocess

    assert shutil.which("etcd"), "needs etcd-server (Debian package; tools/test.sh installs it)"
    pki = tmp_path / "etc-kubernetes" / "pki" / "etcd"
    pki.mkdir(parents=True)
    _etcd_pki(pki)
    c0, p0, c1, p1 = _free_ports(4)
    tls = [
        f"--cert-file={pki}/server.crt",
        f"--key-file={pki}/server.key",
        "--client-cert-auth",
        f"--trusted-ca-file={pki}/ca.crt",
    ]
    ctl = [
        "etcdctl",
        f"--endpoints=https://127.0.0.1:{c0}",
        f"--cacert={pki}/ca.crt",
        f"--cert={pki}/healthcheck-client.crt",
        f"--key={pki}/healthcheck-client.key",
    ]
    env = {"PATH": "/usr/bin:/bin", "ETCDCTL_API": "3"}
    procs = []

    def start(member, client, peer, cluster, state):
        log = open(tmp_path / f"{member}.log", "w")
        procs.append(
            subprocess.Popen(
                [
                    "etcd",
                    f"--name={member}",
                    f"--data-dir={tmp_path}/{member}.etcd",
                    f"--listen-client-urls=https://127.0.0.1:{client}",
                    f"--advertise-client-urls=https://127.0.0.1:{client}",
                    f"--listen-peer-urls=http://127.0.0.1:{peer}",
                    f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
                    f"--initial-cluster={cluster}",
                    f"--initial-cluster-state={state}",
                    *tls,
                ],
                stdout=log,
                stderr=log,
                env=env,
            )
        )

    def members():
        out = subprocess.run(
            [*ctl, "member", "list", "-w", "simple"], env=env, capture_output=True, text=True
        )
        return out.stdout

    def wait_for(predicate, what):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.1)
        raise AssertionError(f"etcd: {what}; members: {members()}")

    try:
        start("master-0", c0, p0, f"master-0=http://127.0.0.1:{p0}", "new")
        wait_for(lambda: "master-0" in members(), "master-0 did not start")
        subprocess.run(
            [*ctl, "member", "add", "master-1", "--learner", f"--peer-urls=http://127.0.0.1:{p1}"],
            env=env,
            check=True,
            capture_output=True,
        )
        start(
            "master-1",
            c1,
            p1,
            f"master-0=http://127.0.0.1:{p0},master-1=http://127.0.0.1:{p1}",
            "existing",
        )
        wait_for(lambda: ", master-1, " in members(), "master-1 did not start")
        procs[1].kill()  # its host is gone
        procs[1].wait()
        yield tmp_path / "etc-kubernetes", c0, members
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.etcd
def test_master_drain_removes_member_from_real_etcd(node, etcd_pair):
    """Against a real etcd with client TLS in kubeadm's file layout: the dead master's member
    (found by name) is removed with the script's default cert paths; the survivor stays; a
    second run finds it already gone and still succeeds."""
    k8s, client_port, members = etcd_pair
    assert ", master-1, " in members()
    (k8s / "admin.conf").write_text("admin")
    # The fake kubectl (no API server here: it answers, the Node is absent) in a directory of
    # its own, ahead of the real etcdctl; the fake etcdctl must never be reached.
    kubectl_only = node.root / "kubectl-only"
    kubectl_only.mkdir()
    (kubectl_only / "kubectl").symlink_to(node.bin / "kubectl")
    env = node.env(PATH=f"{kubectl_only}:/usr/bin:/bin")
    exports = dict(
        NODE_NAME="master-1",
        REMOVE_ETCD_MEMBER="true",
        DRAIN_TIMEOUT="5",
        API_TIMEOUT="0.3",
        ETCD_TIMEOUT="10",
        RETRY_DELAY="0.05",
        ETCD_ENDPOINTS=f"https://127.0.0.1:{client_port}",
        KUBERNETES_DIR=str(k8s),
    )
    result = run_remote(SCRIPTS / "master-drain-node.sh", exports, env)
    assert result.returncode == 0, result.stderr
    assert "removed etcd member master-1" in result.stdout
    remaining = members()
    assert ", master-0, " in remaining and "master-1" not in remaining
    assert node.calls("etcdctl") == []
    again = run_remote(SCRIPTS / "master-drain-node.sh", exports, env)
    assert again.returncode == 0, again.stderr
    assert "already removed" in again.stdout


@pytest.mark.etcd
def test_discovery_member_removed_by_name_from_real_etcd(etcd_pair):
    """Shrinking discovery: the leaving member is removed by name from a real etcd (TLS), a
    second run finds it gone and succeeds, and the last member is refused (exit 2), the
    member list left as it was."""
    from cloud_init.discovery import DiscoveryMember, remove_member_env

    k8s, client_port, members = etcd_pair
    pki = k8s / "pki" / "etcd"
    exports = {
        **remove_member_env(DiscoveryMember("master-1", "127.0.0.2"), timeout=10),
        "RETRY_DELAY": "0.05",
        "ETCD_ENDPOINTS": f"https://127.0.0.1:{client_port}",
        "ETCD_CACERT": str(pki / "ca.crt"),
        "ETCD_CERT": str(pki / "healthcheck-client.crt"),
        "ETCD_KEY": str(pki / "healthcheck-client.key"),
    }
    env = {"PATH": "/usr/bin:/bin"}
    assert ", master-1, " in members()
    result = run_remote(SCRIPTS / "discovery-remove-member.sh", exports, env)
    assert result.returncode == 0, result.stderr
    assert "removed etcd member master-1" in result.stderr
    assert "master-1" not in members() and ", master-0, " in members()
    again = run_remote(SCRIPTS / "discovery-remove-member.sh", exports, env)
    assert again.returncode == 0 and "already removed" in again.stderr, again.stderr
    last = run_remote(
        SCRIPTS / "discovery-remove-member.sh", {**exports, "MEMBER_NAME": "master-0"}, env
    )
    assert last.returncode == 2 and "only member" in last.stderr, last.stderr
    assert ", master-0, " in members()


def test_discovery_member_removal_is_bounded_when_etcd_is_gone(tmp_path):
    """No etcd answering: exit 1 within REMOVE_TIMEOUT, with etcd's last answer."""
    exports = {
        "MEMBER_NAME": "dev-discovery-2",
        "REMOVE_TIMEOUT": "1",
        "RETRY_DELAY": "0.1",
        "ETCD_ENDPOINTS": "https://127.0.0.1:1",
        "ETCD_CACERT": "/nonexistent",
        "ETCD_CERT": "/nonexistent",
        "ETCD_KEY": "/nonexistent",
    }
    clock = Clock(tmp_path)
    env = {"PATH": "/usr/bin:/bin", **clock.env}
    result = run_remote(SCRIPTS / "discovery-remove-member.sh", exports, env)
    assert result.returncode == 1, result.stderr
    # Tries at 0, 0.1, ... 0.9 s of REMOVE_TIMEOUT=1: ten, whatever the machine.
    assert clock.sleeps() == [0.1] * 9
    assert "could not remove etcd member dev-discovery-2" in result.stderr


# --- discovery-wait-sshd.sh: the jump host waits for a node's sshd ---------------------------


class Listener:
    """A TCP server on 127.0.0.1 that greets every client with `greeting` (None: accepts and
    says nothing) and counts the connections it saw. greet_first: greet only that many
    clients, then say nothing (a listener that hangs); close_first: close that many clients'
    connections without a word first (an sshd not ready yet)."""

    def __init__(
        self,
        greeting: bytes | None = b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        greet_first: int | None = None,
        close_first: int = 0,
    ):
        self.greeting, self.connections = greeting, 0
        self.greet_first, self.close_first = greet_first, close_first
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []

    def start(self) -> "Listener":
        def serve():
            self.sock.listen(16)
            while True:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return
                self.connections += 1
                if self.connections <= self.close_first:
                    conn.close()
                    continue
                greets = self.greet_first is None or self.connections <= self.greet_first
                if self.greeting is not None and greets:
                    conn.sendall(self.greeting)
                self.held.append(conn)  # left open, as sshd does while it waits for the client

        threading.Thread(target=serve, daemon=True).start()
        return self

    def close(self):
        for conn in self.held:
            conn.close()
        self.sock.close()


def wait_sshd(port: int, clock: Clock | None = None, **env):
    """The wait, on a fake clock (time moves only by its RETRY_DELAY sleeps): tests count its
    tries. A try's own bound (PROBE_TIMEOUT, or what is left) is real: `timeout` runs it."""
    exports = {
        "TARGET_HOST": "127.0.0.1",
        "TARGET_PORT": str(port),
        "SSH_WAIT_TIMEOUT": "5",
        "PROBE_TIMEOUT": "30",
        "RETRY_DELAY": "0.1",
        **env,
    }
    extra = clock.env if clock else {}
    return run_remote(
        SCRIPTS / "discovery-wait-sshd.sh", exports, {"PATH": "/usr/bin:/bin", **extra}
    )


def test_wait_sshd_returns_once_the_banner_arrives(tmp_path):
    """The first two tries find a port that closes without a word (the VM's sshd not ready),
    then sshd answers: the wait ends with its banner on stdout, two pauses in."""
    clock = Clock(tmp_path)
    server = Listener(close_first=2).start()
    try:
        result = wait_sshd(server.port, clock)
        assert result.returncode == 0, result.stderr
        assert result.stdout == "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\n"
        assert f"127.0.0.1:{server.port} answered after 0.200s (3 tries)" in result.stderr
        assert clock.sleeps() == [0.1, 0.1]
        assert server.connections == 3
    finally:
        server.close()


def test_wait_sshd_fails_bounded_when_nothing_listens(tmp_path):
    """A port nobody listens on: exit 1 at SSH_WAIT_TIMEOUT, saying what the tries saw. Tries
    at 0, 0.1, ... 1.4 s: the next would start at the deadline."""
    clock = Clock(tmp_path)
    server = Listener()  # bound, never listening: connections are refused
    try:
        result = wait_sshd(server.port, clock, SSH_WAIT_TIMEOUT="1.5")
    finally:
        server.close()
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert (
        f"sshd on 127.0.0.1:{server.port} did not answer within SSH_WAIT_TIMEOUT=1.5s "
        "(15 tries; last: connection refused or no route)" in result.stderr
    )
    assert clock.sleeps() == [0.1] * 14
    assert "security group" in result.stderr


@pytest.mark.parametrize(
    "greeting, probe, seen",
    [
        # Never answers: each try ends at its PROBE_TIMEOUT (real: timeout(1) cuts it).
        (None, "0.2", "no banner within PROBE_TIMEOUT"),
        # Answers at once: a bound that load cannot reach.
        (b"HTTP/1.1 400 Bad Request\r\n", "30", "an answer that is not an SSH banner"),
    ],
)
def test_wait_sshd_wants_an_ssh_banner_not_just_a_port(tmp_path, greeting, probe, seen):
    """An open port is not an sshd: a listener that says nothing (sshd hung, a proxy) or says
    something else keeps the wait going, and the failure names what it got."""
    clock = Clock(tmp_path)
    server = Listener(greeting).start()
    try:
        result = wait_sshd(
            server.port, clock, SSH_WAIT_TIMEOUT="1", PROBE_TIMEOUT=probe, RETRY_DELAY="0.5"
        )
    finally:
        server.close()
    assert result.returncode == 1, result.stdout
    assert f"(2 tries; last: {seen}" in result.stderr, result.stderr
    assert clock.sleeps() == [0.5]


def test_a_try_cut_short_by_the_deadline_keeps_what_a_whole_try_saw(tmp_path):
    """The last try gets only what is left of SSH_WAIT_TIMEOUT; timing out in that sliver says
    nothing about the node, so the failure still names what a whole try saw (here an answer
    that is not SSH), not a hang the deadline made. The first try may take up to 10 s, the
    second is cut at 0.3 s by what is left (9.7 s of the fake clock went by in between)."""
    clock = Clock(tmp_path)
    server = Listener(b"HTTP/1.1 400 Bad Request\r\n", greet_first=1).start()
    try:
        result = wait_sshd(
            server.port, clock, SSH_WAIT_TIMEOUT="10", PROBE_TIMEOUT="20", RETRY_DELAY="9.7"
        )
    finally:
        server.close()
    assert result.returncode == 1, result.stdout
    assert "(2 tries; last: an answer that is not an SSH banner" in result.stderr, result.stderr
    assert "no banner within" not in result.stderr
    assert clock.sleeps() == [9.7]


def test_wait_sshd_refuses_bad_input():
    assert wait_sshd(22, TARGET_HOST="").returncode == 2
    assert wait_sshd(22, TARGET_HOST="10.0.0.5; reboot").returncode == 2
    result = wait_sshd(70000)
    assert result.returncode == 2 and "TARGET_PORT" in result.stderr


def test_wait_sshd_env_builder():
    """What the jump host's command gets, refused early when it cannot work."""
    from cloud_init import jump

    assert jump.wait_sshd_env("10.0.0.7") == {
        "TARGET_HOST": "10.0.0.7",
        "TARGET_PORT": "22",
        "SSH_WAIT_TIMEOUT": "300",
    }
    with pytest.raises(ValueError):
        jump.wait_sshd_env("10.0.0.7; reboot")
    with pytest.raises(ValueError, match="port"):
        jump.wait_sshd_env("10.0.0.7", port=0)


# --- node-install-cert.sh: renewed certificates reach running nodes -------------------------


def _cert_pair(ca_key, ca_cert, cn, days=365):
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=2))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(ca_key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


@pytest.fixture(scope="module")
def pki():
    """A CA and two flannel client certificates it signed (the old and the renewed one), plus
    one from another CA and one already expired."""
    import datetime
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def ca(cn):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(1)
            .not_valid_before(now - datetime.timedelta(days=3))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return key, cert

    ca_key, ca_cert = ca("discovery-etcd-ca")
    other_key, other_cert = ca("another-ca")
    return {
        "ca": ca_cert.public_bytes(serialization.Encoding.PEM).decode(),
        "old": _cert_pair(ca_key, ca_cert, "flannel"),
        "new": _cert_pair(ca_key, ca_cert, "flannel"),
        "foreign": _cert_pair(other_key, other_cert, "flannel"),
        "expired": _cert_pair(ca_key, ca_cert, "flannel", days=-1),
    }


def install_cert(node, pair, pki, **env):
    from cloud_init.node import flannel_cert_env

    d = node.root / "etc-flannel-pki"
    exports = flannel_cert_env(cert_pem=pair[0], key_pem=pair[1], ca_pem=pki["ca"])
    import grp
    import pwd

    owner = f"{pwd.getpwuid(os.getuid()).pw_name}:{grp.getgrgid(os.getgid()).gr_name}"
    exports.update(
        CERT_PATH=str(d / "client.crt"),
        KEY_PATH=str(d / "client.key"),
        CA_PATH=str(d / "ca.crt"),
        KEY_OWNER=owner,
        **env,
    )
    return run_remote(SCRIPTS / "node-install-cert.sh", exports, node.env()), d


def test_renewed_flannel_certificate_reaches_the_node(node, pki):
    """First the old pair, then the renewed one: each time the files land with their modes and
    flanneld is restarted; installing the same pair again restarts nothing."""
    result, d = install_cert(node, pki["old"], pki)
    assert result.returncode == 0, result.stderr
    assert (d / "client.crt").read_text() == pki["old"][0] + "\n"
    assert oct((d / "client.key").stat().st_mode & 0o777) == "0o600"
    assert oct((d / "client.crt").stat().st_mode & 0o777) == "0o644"
    assert node.calls("systemctl") == [["restart", "flanneld.service"]]

    result, _ = install_cert(node, pki["new"], pki)
    assert result.returncode == 0, result.stderr
    assert (d / "client.crt").read_text() == pki["new"][0] + "\n"
    assert (d / "client.key").read_text() == pki["new"][1] + "\n"
    assert node.calls("systemctl") == [["restart", "flanneld.service"]] * 2

    result, _ = install_cert(node, pki["new"], pki)
    assert result.returncode == 0 and "already in place" in result.stdout, result.stderr
    assert len(node.calls("systemctl")) == 2


@pytest.mark.parametrize(
    "case, message",
    [
        ("mismatched", "is not the key of CERT_PEM"),
        ("foreign", "does not verify against CA_PEM"),
        ("expired", "expired"),
    ],
)
def test_a_bad_certificate_replaces_nothing(node, pki, case, message):
    """A key that is not the certificate's, a certificate from another CA, or an expired one:
    refused (exit 2) before anything is written, the working pair and flanneld left alone."""
    assert install_cert(node, pki["old"], pki)[0].returncode == 0
    before = {p.name: p.read_bytes() for p in (node.root / "etc-flannel-pki").iterdir()}
    pair = {"mismatched": (pki["new"][0], pki["old"][1])}.get(case) or pki[case]
    result, d = install_cert(node, pair, pki)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    assert len(node.calls("systemctl")) == 1


def test_a_failed_restart_is_retried_by_the_rerun(node, pki):
    """flanneld does not restart: exit 1, the new files in place; the re-run restarts it."""
    node.rule("systemctl", "restart *", {"rc": 1, "stderr": "Job failed"}, {"rc": 0})
    result, _ = install_cert(node, pki["new"], pki)
    assert result.returncode == 1 and "restarting flanneld.service failed" in result.stderr
    again, _ = install_cert(node, pki["new"], pki)
    assert again.returncode == 0, again.stderr
    assert node.calls("systemctl") == [["restart", "flanneld.service"]] * 2
    assert not list((node.root / "etc-flannel-pki").glob("*.restart-pending"))


def test_etcd_certificate_inputs():
    """A discovery member's renewed certificate: etcd's paths, its key owned by etcd, etcd
    restarted."""
    from cloud_init import discovery

    env = discovery.etcd_cert_env(
        cert_pem="-----BEGIN C", key_pem="-----BEGIN K", ca_pem="-----BEGIN A"
    )
    assert (env["CERT_PATH"], env["KEY_PATH"], env["CA_PATH"]) == (
        discovery.CERT_PATH,
        discovery.KEY_PATH,
        discovery.CA_PATH,
    )
    assert env["KEY_OWNER"] == "etcd:etcd" and env["RESTART_UNITS"] == "etcd.service"
    with pytest.raises(ValueError, match="key_pem"):
        discovery.etcd_cert_env(cert_pem="-----BEGIN C", key_pem="nope", ca_pem="-----BEGIN A")
