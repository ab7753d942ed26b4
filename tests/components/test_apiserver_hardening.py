"""The API server's hardening: Secrets encrypted at rest, an audit log, OIDC. New masters get
it through kubeadm (the files with their PKI, the flags in the ClusterConfiguration); running
masters through master-apiserver-config.sh, one after another (run here against fakes of
kubeadm, curl and kubectl that keep state like the real ones)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import tarfile

import pytest
from fakes import Clock
from fakes import master as master_fakes
import yaml

from cloud_init import apiserver, script
from component_args import control_plane, kubeadm_files
from components.cluster import audit_policy
from tools.plan import user_data_text

OIDC_CONFIG = {
    "issuerUrl": "https://id.example.org/realms/k8s",
    "clientId": "k8s",
    "groupsClaim": "groups",
}
# The private network's range in the stacks here (network.cidr's default).
SUBNET = "10.10.0.0/22"


def _cluster_config(text: str) -> dict:
    return next(d for d in yaml.safe_load_all(text) if d["kind"] == "ClusterConfiguration")


def test_every_master_gets_the_key_and_the_policy_by_command(under_mocks, stack_settings):
    """(The control plane alone, in process: the hardening is the masters' own.)"""
    settings = stack_settings(masters={"count": 3}, apiServer={"oidc": OIDC_CONFIG})
    regs = under_mocks(lambda: control_plane(settings), subnet=SUBNET).registrations
    names = {r.name for r in regs}
    for i in range(3):
        files = kubeadm_files(regs, f"t-master-{i}")
        enc = yaml.safe_load(files[apiserver.ENCRYPTION_FILE])
        assert enc["kind"] == "EncryptionConfiguration"
        provider = enc["resources"][0]["providers"][0]["secretbox"]
        assert len(base64.b64decode(provider["keys"][0]["secret"])) == 32
        assert enc["resources"][0]["providers"][-1] == {"identity": {}}
        assert yaml.safe_load(files[apiserver.AUDIT_POLICY_FILE])["kind"] == "Policy"
    # The key is a Pulumi secret and never in user-data (readable from the metadata service).
    first = next(r for r in regs if r.name == "t-master-0")
    assert "#cloud-config" in user_data_text(first.raw_inputs["userData"])
    assert "secretbox" not in user_data_text(first.raw_inputs["userData"])
    assert "t-master-encryption-key" in names
    cluster = _cluster_config(kubeadm_files(regs, "t-master-0")["kubeadm/init.yaml"])
    args = {a["name"]: a["value"] for a in cluster["apiServer"]["extraArgs"]}
    assert args["encryption-provider-config"] == "/etc/kubernetes/encryption/config.yaml"
    assert args["audit-log-maxage"] == "30" and args["audit-log-path"].startswith(
        "/var/log/kubernetes/audit/"
    )
    assert (
        args["oidc-issuer-url"] == "https://id.example.org/realms/k8s"
        and args["oidc-username-prefix"] == "oidc:"
    )
    mounts = {v["name"]: v for v in cluster["apiServer"]["extraVolumes"]}
    assert mounts["encryption"]["readOnly"] is True and mounts["audit-log"]["readOnly"] is False


def test_running_masters_are_reconfigured_one_after_another(plan):
    """A changed setting is a changed label on each master's -apiserver command (the plan diff
    shows it), nothing is replaced, and master i waits for master i-1."""
    on = plan("dev", "masters.count=3")
    changed = plan("dev", "masters.count=3", "apiServer.audit.maxAgeDays=90")
    for i in range(3):
        name = f"dev-master-{i}-apiserver"
        assert on.named(name)["inputs"]["update"] == on.named(name)["inputs"]["create"]
        assert (
            "audit" in on.named(name)["inputs"]["create"]
            and "90d" in changed.named(name)["inputs"]["create"]
        )
        if i:
            assert f"dev-master-{i - 1}-apiserver" in on.waits_for(name)
            assert f"dev-master-{i}-join" in on.waits_for(name)
    differs = [n for n, r in on.by_name.items() if r["inputs"] != changed.by_name[n]["inputs"]]
    # (the first master's kubeadm-files carries the new init config too, in its secret stdin)
    assert sorted(differs) == [f"dev-master-{i}-apiserver" for i in range(3)]
    assert set(on.by_name) == set(changed.by_name)


def test_everything_off(under_mocks, stack_settings):
    settings = stack_settings(
        apiServer={"encryption": {"enabled": False}, "audit": {"enabled": False}}
    )
    regs = under_mocks(lambda: control_plane(settings), subnet=SUBNET).registrations
    cluster = _cluster_config(kubeadm_files(regs, "t-master-0")["kubeadm/init.yaml"])
    assert [a["name"] for a in cluster["apiServer"]["extraArgs"]] == ["profiling"]
    assert "extraVolumes" not in cluster["apiServer"]
    names = {r.name for r in regs}
    assert "t-master-0-kubeadm-files" in names and "t-master-encryption-key" not in names


def test_audit_policy_file(tmp_path, stack_settings):
    import settings

    good = tmp_path / "policy.yaml"
    good.write_text("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n")
    s = stack_settings(apiServer={"audit": {"policy": str(good)}})
    assert audit_policy(s) == good.read_text()
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: Pod\n")
    with pytest.raises(
        settings.ConfigError, match="apiServer.audit.policy: .* is not an audit.k8s.io/v1 Policy"
    ):
        audit_policy(stack_settings(apiServer={"audit": {"policy": str(bad)}}))
    assert yaml.safe_load(audit_policy(stack_settings()))["rules"][-1] == {"level": "Metadata"}


# --- master-apiserver-config.sh against fakes ----------------------------------------------

FAKES = {
    **master_fakes.FAKES,
    "kubeadm": """
        import os, sys, json
        state = json.load(open(os.environ["FAKE_STATE"])); state["calls"].append(sys.argv[1:])
        if sys.argv[1:4] == ["init", "phase", "control-plane"]:
            config = open(sys.argv[sys.argv.index("--config") + 1]).read()
            flags = [l for l in os.environ.get("APISERVER_FLAGS", "").splitlines() if l]
            os.makedirs(os.environ["KUBERNETES_DIR"] + "/manifests", exist_ok=True)
            with open(os.environ["KUBERNETES_DIR"] + "/manifests/kube-apiserver.yaml", "w") as f:
                # kubeadm's own manifests carry annotations of their own.
                head = ("apiVersion: v1\\nkind: Pod\\nmetadata:\\n  annotations:\\n"
                        "    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: 10.0.0.5:6443\\n"
                        "  name: kube-apiserver\\nspec:\\n  containers:\\n  - command:\\n    - kube-apiserver\\n")
                f.write(head + "".join(f"    - {x}\\n" for x in flags))
            state["restarted"] = True
        json.dump(state, open(os.environ["FAKE_STATE"], "w"))
    """,
    # Two of them run at once in a pipeline: each appends its own line.
    "kubectl": """
        import os, sys, json
        with open(os.environ["FAKE_STATE"] + ".kubectl", "a") as log:
            log.write(json.dumps(["kubectl", *sys.argv[1:]]) + "\\n")
        sys.stdin.read() if "replace" in sys.argv else print('{"items": []}')
    """,
}


def files_tar(policy: str = "kind: Policy\n") -> str:
    """FILES_TAR_B64 as the program makes it: the encryption config and the audit policy."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for path, text in (
            ("encryption/config.yaml", "kind: EncryptionConfiguration\n"),
            ("audit/policy.yaml", policy),
        ):
            info = tarfile.TarInfo(path)
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text.encode()))
    return base64.b64encode(buf.getvalue()).decode()


@pytest.fixture
def master(tmp_path):
    bin_dir = tmp_path / "bin"
    master_fakes.install(bin_dir, FAKES)
    kdir = tmp_path / "etc-kubernetes"
    state = tmp_path / "state.json"
    # A fake clock: RECONFIGURE_TIMEOUT=60 with RETRY_DELAY=15 is four tries, on any machine.
    clock = Clock(tmp_path)
    env = {
        **clock.env,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FAKE_STATE": str(state),
        "KUBERNETES_DIR": str(kdir),
        "FILES_TAR_B64": files_tar(),
        "KUBEADM_CONFIG_B64": base64.b64encode(b"kind: ClusterConfiguration\n").decode(),
        "APISERVER_FLAGS": "--encryption-provider-config=/etc/kubernetes/encryption/config.yaml\n--audit-log-maxage=30\n",
        "FIRST_MASTER": "true",
        "ENCRYPTED": "true",
        "RETRY_DELAY": "15",
        "RECONFIGURE_TIMEOUT": "60",
    }

    def run(api_up=True, **extra):
        state.write_text(json.dumps({"calls": [], "api_up": api_up}))
        kubectl_log = tmp_path / "state.json.kubectl"
        kubectl_log.write_text("")
        result = subprocess.run(
            ["bash", "-s"],
            input=script("master-apiserver-config.sh"),
            capture_output=True,
            text=True,
            timeout=60,
            env={**env, **extra},
        )
        calls = json.loads(state.read_text())
        calls["calls"] += [json.loads(line) for line in kubectl_log.read_text().splitlines()]
        return result, calls, kdir

    run.clock = clock
    return run


def test_reconfigure_installs_regenerates_stores_and_rewrites(master):
    result, state, kdir = master()
    assert result.returncode == 0, result.stderr
    assert (kdir / "encryption/config.yaml").read_text() == "kind: EncryptionConfiguration\n"
    assert oct((kdir / "encryption/config.yaml").stat().st_mode & 0o777) == "0o600"
    verbs = [c[:4] for c in state["calls"] if c[0] == "init"]
    assert verbs == [
        ["init", "phase", "control-plane", "apiserver"],
        ["init", "phase", "upload-config", "kubeadm"],
    ]
    assert any(c[:2] == ["kubectl", "--kubeconfig"] and "replace" in c for c in state["calls"])
    assert "--audit-log-maxage=30" in (kdir / "manifests/kube-apiserver.yaml").read_text()
    # A second run finds everything in place and touches nothing.
    again, state2, _ = master()
    assert again.returncode == 0 and "already runs" in again.stderr
    assert not [c for c in state2["calls"] if c[0] in ("init", "kubectl")]
    # A joining master regenerates its own API server only.
    (kdir / "manifests/kube-apiserver.yaml").unlink()
    other, state3, _ = master(FIRST_MASTER="false")
    assert other.returncode == 0
    assert [c[:4] for c in state3["calls"] if c[0] == "init"] == [
        ["init", "phase", "control-plane", "apiserver"]
    ]
    assert not [c for c in state3["calls"] if c[0] == "kubectl"]


def test_a_changed_file_alone_restarts_the_api_server(master):
    """A new audit policy with the same flags: kubeadm writes the same manifest, and the kubelet
    restarts a static pod only when its manifest changes. The script marks the manifest with
    a digest of the flags and files, so kube-apiserver is restarted and reads the new policy,
    and it waits for the pod that carries the mark."""
    first, _, kdir = master()
    assert first.returncode == 0, first.stderr
    manifest = kdir / "manifests/kube-apiserver.yaml"
    before = manifest.read_text()
    changed, state, _ = master(FILES_TAR_B64=files_tar("kind: Policy\nrules: []\n"))
    assert changed.returncode == 0, changed.stderr
    assert (kdir / "audit/policy.yaml").read_text() == "kind: Policy\nrules: []\n"
    after = manifest.read_text()
    assert after != before
    marks = [yaml.safe_load(t)["metadata"]["annotations"] for t in (before, after)]
    key = "openstack-k8s.io/apiserver-config-sha256"
    assert marks[0][key] != marks[1][key] and len(marks[1][key]) == 64
    # kubeadm's own annotations stay.
    assert "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint" in marks[1]
    assert [
        "crictl",
        "pods",
        "--name",
        "kube-apiserver",
        "--state",
        "ready",
        "-o",
        "json",
    ] in state["calls"]


def test_reconfigure_fails_loudly_when_the_api_does_not_come_back(master):
    result, state, _ = master(api_up=False)
    assert result.returncode == 1
    assert "did not answer" in result.stderr and "crictl" in result.stderr
    # Tries at 0, 15, 30 and 45 s of RECONFIGURE_TIMEOUT=60; the next would start at its end.
    assert len([c for c in state["calls"] if c == ["curl"]]) == 4
    assert master.clock.sleeps() == [15.0] * 3


def test_reconfigure_refuses_missing_input(master):
    result, state, kdir = master(FILES_TAR_B64="")
    assert result.returncode == 2 and "FILES_TAR_B64" in result.stderr
    # Refused before anything changed: no kubeadm call, no file written.
    assert not [c for c in state["calls"] if c[0] == "init"]
    assert not (kdir / "encryption").exists()
