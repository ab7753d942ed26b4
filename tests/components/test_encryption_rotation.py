"""Rotating the Secrets encryption key (apiServer.encryption.keyGeneration): the offline plan
has the steps on every master in the documented order, their keys secret, and none of it at
generation 1; master-encryption-rotate.sh is run here against fakes of crictl (a kubelet that
replaces kube-apiserver's pod when its manifest changes), curl and kubectl that keep state."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import subprocess

import pytest
from fakes import Clock
from fakes import master as master_fakes
import yaml

from cloud_init import apiserver
from component_args import ComponentPlan, control_plane
from components.commands import stdin_text

# The private network's range in the stacks here (network.cidr's default).
SUBNET = "10.10.0.0/22"
MASTERS = [f"dev-master-{i}" for i in range(3)]
# The steps, in the order they must run: each one waits for the one before it.
ORDER = (
    [f"{m}-encryption-add-2" for m in MASTERS]
    + [f"{m}-encryption-promote-2" for m in MASTERS]
    + ["dev-master-encryption-rewrite-2"]
    + [f"{m}-encryption-drop-2" for m in MASTERS]
)


def _direct(p, name: str) -> set[str]:
    return {p.by_urn[u]["name"] for u in p.named(name)["dependencies"] if u in p.by_urn}


def _keys(config_text: str) -> list[str]:
    providers = yaml.safe_load(config_text)["resources"][0]["providers"]
    assert providers[-1] == {"identity": {}}, "identity must stay last"
    return [k["name"] for k in providers[0]["secretbox"]["keys"]]


def _masters(under_mocks, stack_settings, generation: int, count: int = 3) -> ComponentPlan:
    """The control plane alone, in process (the rotation is the masters' own), named as in
    the dev stack."""
    settings = stack_settings(
        clusterName="dev",
        masters={"count": count},
        apiServer={"encryption": {"keyGeneration": generation}},
    )
    return ComponentPlan(under_mocks(lambda: control_plane(settings), subnet=SUBNET))


def test_a_rotation_runs_step_by_step_through_every_master(under_mocks, stack_settings):
    p = _masters(under_mocks, stack_settings, 2)
    for before, after in zip(ORDER[:-1], ORDER[1:], strict=True):
        assert before in _direct(p, after), f"{after} does not wait for {before}"
    # The steady commands install the new single-key file only once the rotation is over, and
    # a master joins only then (it would not read Secrets under the old key).
    for m in MASTERS:
        assert "dev-master-2-encryption-drop-2" in p.waits_for(f"{m}-apiserver")
    for m in MASTERS[1:]:
        assert "dev-master-2-encryption-drop-2" in _direct(p, f"{m}-join")
    assert "dev-master-0-init" in _direct(p, "dev-master-0-encryption-add-2")
    assert "dev-master-1-kubeadm-files" in _direct(p, "dev-master-1-encryption-add-2")
    # The rewrite runs on the first master, where admin.conf is.
    raw = p.raw(["dev-master-0-kubeadm-files", "dev-master-encryption-rewrite-2"])
    assert (
        raw["dev-master-encryption-rewrite-2"]["connection"]["host"]
        == raw["dev-master-0-kubeadm-files"]["connection"]["host"]
    )
    assert "export PHASE=rewrite" in raw["dev-master-encryption-rewrite-2"]["stdin"]
    # Both generations' keys exist during generation 2; the first keeps its old name.
    assert {"dev-master-encryption-key", "dev-master-encryption-key-2"} <= set(p.by_name)
    assert "encryption secretbox key2" in p.named("dev-master-0-apiserver")["inputs"]["create"]


def _env_of(stdin: str) -> dict[str, str]:
    return {k: v.strip("'") for k, v in re.findall(r"^export ([A-Z_0-9]+)=(\S+)$", stdin, re.M)}


def test_each_step_carries_its_file_and_the_keys_stay_secret(under_mocks, stack_settings):
    p = _masters(under_mocks, stack_settings, 2)
    steps = [n for n in ORDER if "-encryption-rewrite-" not in n]
    for name in steps:
        assert p.named(name)["inputs"]["stdin"] == "[secret]", name
        assert "export" not in p.named(name)["inputs"]["create"]
    raw = p.raw(
        [
            "dev-master-1-encryption-add-2",
            "dev-master-1-encryption-promote-2",
            "dev-master-1-encryption-drop-2",
            "dev-master-1-kubeadm-files",
        ]
    )
    order = {}
    for phase in ("add", "promote", "drop"):
        env = _env_of(raw[f"dev-master-1-encryption-{phase}-2"]["stdin"])
        assert env["PHASE"] == phase and env["KEY_NAME"] == "key2"
        order[phase] = _keys(base64.b64decode(env["ENCRYPTION_CONFIG_B64"]).decode())
        assert base64.b64decode(env["FINAL_CONFIG_B64"]) == base64.b64decode(
            _env_of(raw["dev-master-1-encryption-drop-2"]["stdin"])["ENCRYPTION_CONFIG_B64"]
        )
    assert order == {"add": ["key1", "key2"], "promote": ["key2", "key1"], "drop": ["key2"]}
    # The drop step's file is byte for byte what every master keeps (and new masters get with
    # their PKI), so the steady -apiserver commands find it in place.
    drop = base64.b64decode(
        _env_of(raw["dev-master-1-encryption-drop-2"]["stdin"])["ENCRYPTION_CONFIG_B64"]
    ).decode()
    assert p.kubeadm_files("dev-master-1")[apiserver.ENCRYPTION_FILE] == drop
    secret = yaml.safe_load(drop)["resources"][0]["providers"][0]["secretbox"]["keys"][0]["secret"]
    for m in MASTERS:
        assert secret not in p.user_data(m)


def test_generation_one_has_no_rotation(plan):
    p = plan("dev", "masters.count=3")
    assert not [n for n in p.by_name if "-encryption-" in n and n != "dev-master-encryption-key"]
    assert "key2" not in p.named("dev-master-0-apiserver")["inputs"]["create"]


def test_a_later_generation_keeps_only_its_key_and_the_previous_one(under_mocks, stack_settings):
    p = _masters(under_mocks, stack_settings, 3, count=1)
    keys = sorted(n for n in p.by_name if n.startswith("dev-master-encryption-key"))
    assert keys == ["dev-master-encryption-key-2", "dev-master-encryption-key-3"]
    assert (
        "dev-master-0-encryption-add-3" in p.by_name
        and "dev-master-0-encryption-add-2" not in p.by_name
    )
    env = _env_of(
        p.raw(["dev-master-0-encryption-add-3"])["dev-master-0-encryption-add-3"]["stdin"]
    )
    assert _keys(base64.b64decode(env["ENCRYPTION_CONFIG_B64"]).decode()) == ["key2", "key3"]


# --- master-encryption-rotate.sh against fakes ---------------------------------------------

FAKES = {
    **master_fakes.FAKES,
    # Two of them run at once in a pipeline: each appends its own line.
    "kubectl": """
        import json, os, sys
        with open(os.environ["FAKE_STATE"] + ".kubectl", "a") as log:
            log.write(json.dumps(["kubectl", *sys.argv[1:]]) + "\\n")
        if "replace" in sys.argv:
            got = json.load(sys.stdin)
            assert got["items"][0]["metadata"]["name"] == "db-password"
            if os.path.exists(os.environ["FAKE_STATE"] + ".replace-fails"):
                print('Error from server (Conflict): Operation cannot be fulfilled on secrets "db-password"', file=sys.stderr)
                sys.exit(1)
        else:
            print(json.dumps({"kind": "List", "items": [{"kind": "Secret", "metadata": {"name": "db-password"}}]}))
    """,
}

MANIFEST = """apiVersion: v1
kind: Pod
metadata:
  annotations:
    kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: 10.0.0.5:6443
  creationTimestamp: null
  labels:
    component: kube-apiserver
  name: kube-apiserver
  namespace: kube-system
spec:
  containers:
  - command:
    - kube-apiserver
    - --encryption-provider-config=/etc/kubernetes/encryption/config.yaml
"""
KEY1, KEY2, KEY3 = (base64.b64encode(bytes([n]) * 32).decode() for n in (1, 2, 3))
ANNOTATION = "openstack-k8s.io/encryption-config-sha256"


def _config(*keys: tuple[str, str]) -> str:
    return apiserver.encryption_config("secretbox", list(keys))


PHASES = {
    "add": _config(("key1", KEY1), ("key2", KEY2)),
    "promote": _config(("key2", KEY2), ("key1", KEY1)),
    "drop": _config(("key2", KEY2)),
}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def master(tmp_path):
    """A running master at generation 1; run(phase, **env) runs one step as its command
    would (the same stdin) and returns (result, calls, kubernetes dir)."""
    bin_dir = tmp_path / "bin"
    master_fakes.install(bin_dir, FAKES)
    kdir = tmp_path / "etc-kubernetes"
    (kdir / "manifests").mkdir(parents=True)
    (kdir / "encryption").mkdir()
    (kdir / "manifests/kube-apiserver.yaml").write_text(MANIFEST)
    (kdir / "encryption/config.yaml").write_text(_config(("key1", KEY1)))
    (kdir / "admin.conf").write_text("apiVersion: v1\nkind: Config\n")
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"calls": [], "api_up": True, "kubelet_restarts": True, "pod": {}}))
    # A fake clock: ROTATE_TIMEOUT=60 with RETRY_DELAY=15 is four tries of a wait, on any
    # machine (a deadline of one real second gave one try on a loaded one). A minute, as the
    # rewrite bounds its kubectl calls for real by what is left of the deadline.
    clock = Clock(tmp_path)
    fake_env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_STATE": str(state), **clock.env}

    def run(phase: str, api_up: bool = True, kubelet_restarts: bool = True, **extra):
        s = json.loads(state.read_text())
        s.update(calls=[], api_up=api_up, kubelet_restarts=kubelet_restarts)
        state.write_text(json.dumps(s))
        kubectl_log = tmp_path / "state.json.kubectl"
        kubectl_log.write_text("")
        env = {
            "PHASE": phase,
            "KEY_NAME": "key2",
            "ROTATE_TIMEOUT": "60",
            "RETRY_DELAY": "15",
            "KUBERNETES_DIR": str(kdir),
            "API_URL": "https://127.0.0.1:6443",
        }
        if phase in PHASES:
            env |= {
                "ENCRYPTION_CONFIG_B64": _b64(PHASES[phase]),
                "FINAL_CONFIG_B64": _b64(PHASES["drop"]),
            }
        env = {k: v for k, v in (env | extra).items() if v is not None}
        result = subprocess.run(
            ["bash", "-s"],
            input=stdin_text("master-encryption-rotate.sh", env),
            capture_output=True,
            text=True,
            timeout=60,
            env=fake_env,
        )
        calls = json.loads(state.read_text())["calls"]
        calls += [json.loads(line) for line in kubectl_log.read_text().splitlines()]
        return result, calls, kdir

    run.clock = clock
    return run


def _annotation(kdir) -> str | None:
    return yaml.safe_load((kdir / "manifests/kube-apiserver.yaml").read_text())["metadata"][
        "annotations"
    ].get(ANNOTATION)


def test_the_steps_install_each_file_and_restart_the_api_server(master):
    seen = []
    for phase in ("add", "promote", "rewrite", "drop"):
        result, calls, kdir = master(phase)
        assert result.returncode == 0, result.stderr
        config = (kdir / "encryption/config.yaml").read_text()
        seen.append(_keys(config))
        assert oct((kdir / "encryption/config.yaml").stat().st_mode & 0o777) == "0o600"
        # The manifest names the file's digest (the kubelet replaces the pod), keeps what
        # kubeadm wrote, and no half-written copy is left beside it.
        assert _annotation(kdir) == hashlib.sha256(config.encode()).hexdigest()
        assert (
            "kubeadm.kubernetes.io/kube-apiserver.advertise-address.endpoint: 10.0.0.5:6443"
            in (kdir / "manifests/kube-apiserver.yaml").read_text()
        )
        assert os.listdir(kdir / "manifests") == ["kube-apiserver.yaml"]
        if phase != "rewrite":
            assert ["curl"] in calls and any(c[:2] == ["crictl", "pods"] for c in calls)
    assert seen == [["key1", "key2"], ["key2", "key1"], ["key2", "key1"], ["key2"]]
    # What every master keeps from then on: the -apiserver command finds nothing to change.
    assert (kdir / "encryption/config.yaml").read_text() == PHASES["drop"]


def test_a_finished_step_does_nothing_again(master):
    master("add")
    _, _, kdir = master("promote")
    before = {
        p: (kdir / p).read_bytes()
        for p in ("manifests/kube-apiserver.yaml", "encryption/config.yaml")
    }
    again, calls, _ = master("promote")
    assert again.returncode == 0 and "already runs with key2 (promote)" in again.stderr
    assert before == {p: (kdir / p).read_bytes() for p in before}
    first, calls, _ = master("rewrite")
    assert first.returncode == 0 and "every Secret rewritten with key2" in first.stderr
    assert [c for c in calls if "replace" in c] == [
        ["kubectl", "--kubeconfig", f"{kdir}/admin.conf", "replace", "-f", "-"]
    ]
    assert [c for c in calls if "get" in c] == [
        [
            "kubectl",
            "--kubeconfig",
            f"{kdir}/admin.conf",
            "get",
            "secrets",
            "--all-namespaces",
            "-o",
            "json",
        ]
    ]
    second, calls, _ = master("rewrite")
    assert second.returncode == 0 and "already rewritten" in second.stderr
    assert not [c for c in calls if c[0] == "kubectl"]


def test_a_master_with_only_the_new_key_never_goes_back(master, tmp_path):
    """A master made at this generation (its PKI brought the new key only) keeps it."""
    kdir = tmp_path / "etc-kubernetes"
    (kdir / "encryption/config.yaml").write_text(PHASES["drop"])
    result, _, _ = master("add")
    assert result.returncode == 0, result.stderr
    assert (kdir / "encryption/config.yaml").read_text() == PHASES["drop"]


def test_a_master_that_has_not_joined_is_left_alone(master, tmp_path):
    kdir = tmp_path / "etc-kubernetes"
    (kdir / "manifests/kube-apiserver.yaml").unlink()
    (kdir / "encryption/config.yaml").write_text(PHASES["drop"])
    result, calls, _ = master("add")
    assert result.returncode == 0 and "nothing to do" in result.stderr
    assert (kdir / "encryption/config.yaml").read_text() == PHASES["drop"] and not calls


def test_an_api_server_that_does_not_come_back_fails_the_step(master):
    result, calls, kdir = master("add", api_up=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("master-encryption-rotate: kube-apiserver on ")
    assert (
        "did not answer https://127.0.0.1:6443/readyz" in lines[-1]
        and "pulumi up again" in lines[-1]
    )
    # Tries at 0, 15, 30 and 45 s of ROTATE_TIMEOUT=60; the next would start at its end.
    assert len([c for c in calls if c == ["curl"]]) == 4
    assert master.clock.sleeps() == [15.0] * 3
    # The next up goes on from there: the file is in place, the step finishes.
    again, _, _ = master("add")
    assert again.returncode == 0 and "already runs with key2 (add)" in again.stderr


def test_a_kubelet_that_keeps_the_old_pod_fails_the_step(master):
    result, calls, _ = master("add", kubelet_restarts=False)
    assert result.returncode == 1
    assert (
        "the kubelet did not restart kube-apiserver" in result.stderr
        and "journalctl -u kubelet" in result.stderr
    )
    assert len([c for c in calls if c[:2] == ["crictl", "pods"]]) == 4
    assert master.clock.sleeps() == [15.0] * 3
    # Not ready with the new file is not "already": a re-run waits for the pod again.
    stuck, _, _ = master("add", kubelet_restarts=False)
    assert stuck.returncode == 1 and "already" not in stuck.stderr


def test_a_failed_rewrite_says_to_run_up_again(master, tmp_path):
    (tmp_path / "state.json.replace-fails").write_text("")
    result, calls, kdir = master("rewrite")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "master-encryption-rotate: could not rewrite every Secret with key2 within ROTATE_TIMEOUT (every master "
        "still reads both keys: nothing is lost); check 'kubectl get secrets -A', then run pulumi up again"
    )
    assert len([c for c in calls if "replace" in c]) == 4  # retried until the deadline
    assert master.clock.sleeps() == [15.0] * 3
    assert not (kdir / "encryption/rewritten").exists()


@pytest.mark.parametrize(
    "bad, says",
    [
        ({"PHASE": "rotate"}, "PHASE must be add, promote, drop or rewrite"),
        ({"PHASE": None}, "PHASE must be"),
        ({"KEY_NAME": "key-2"}, "KEY_NAME must be key<generation>"),
        ({"ENCRYPTION_CONFIG_B64": None}, "ENCRYPTION_CONFIG_B64 is not set"),
        ({"ENCRYPTION_CONFIG_B64": "not base64!"}, "ENCRYPTION_CONFIG_B64 is not base64"),
        (
            {"FINAL_CONFIG_B64": _b64("kind: Pod\n")},
            "FINAL_CONFIG_B64 is not an EncryptionConfiguration",
        ),
        ({"ROTATE_TIMEOUT": "soon"}, "ROTATE_TIMEOUT must be a number of seconds"),
    ],
)
def test_bad_input_changes_nothing(master, tmp_path, bad, says):
    kdir = tmp_path / "etc-kubernetes"
    before = (kdir / "encryption/config.yaml").read_text()
    result, calls, _ = master("add", **bad)
    assert result.returncode == 2 and says in result.stderr, result.stderr
    assert (kdir / "encryption/config.yaml").read_text() == before and _annotation(kdir) is None
    assert not calls


def test_a_key_the_rotation_does_not_carry_is_never_dropped(master, tmp_path):
    """A lowered keyGeneration would rotate away from a key the cluster uses: refused."""
    kdir = tmp_path / "etc-kubernetes"
    (kdir / "encryption/config.yaml").write_text(_config(("key3", KEY3)))
    result, _, _ = master("add")
    assert (
        result.returncode == 2
        and "was apiServer.encryption.keyGeneration lowered?" in result.stderr
    )
    assert (
        _keys((kdir / "encryption/config.yaml").read_text()) == ["key3"]
        and _annotation(kdir) is None
    )
