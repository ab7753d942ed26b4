"""`python -m tools.plan --diff` on real offline plans of the dev stack: one more worker and a
Kubernetes version bump (calm), and the changes that can break a running cluster (loud,
first): a moving API endpoint, a renamed pool, a new pod network."""

from __future__ import annotations

import subprocess
import sys

from planning import ROOT

CALM = (
    "No resource is replaced or rebuilt, no instance is deleted, and the API endpoint "
    "stays where it is."
)


def diff(old, new) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.plan", "--diff", str(old.dir), str(new.dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_one_more_worker(plan):
    """Exactly the new worker's resources are added; nothing changes, nothing is replaced."""
    result = diff(plan("dev"), plan("dev", "workerPools[0].count=3"))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "0 to remove, 0 to change (0 replaced)" in out
    assert CALM in out
    rows = [line for line in out.splitlines() if line.startswith("| `")]
    assert all("dev-worker-general-2" in row for row in rows)
    names = {row.split("`")[3] for row in rows}
    assert {
        "dev-worker-general-2",
        "dev-worker-general-2-port",
        "dev-worker-general-2-join",
    } <= names
    assert f"**{len(rows)} to add" in out


def test_version_bump(plan):
    """No VM replaced; user-data changes shown as ignored; upgrade commands run again."""
    result = diff(plan("dev"), plan("dev", "kubernetesVersion=1.34.1"))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "0 to add, 0 to remove" in out and "(0 replaced)" in out
    assert CALM in out
    assert "3 with ignored changes" in out
    for node in (
        "dev-master-0-upgrade",
        "dev-worker-general-0-upgrade",
        "dev-worker-general-1-upgrade",
    ):
        assert node in out
    assert "kubernetes 1.34.1 from pkgs.k8s.io" in out
    assert "1.33.5" in out and "1.34.1" in out  # the user-data diff shows the version moving


def test_identical_plans(plan):
    p = plan("dev")
    result = diff(p, p)
    assert result.returncode == 0 and "No changes" in result.stdout


def first_box(out: str) -> str:
    """The first warning box, which must come before the counts."""
    assert "> [!WARNING]" in out, out[:2000]
    assert out.index("> [!WARNING]") < out.index(" to add, ")
    box = out.split("> [!WARNING]\n", 1)[1]
    return "".join(line + "\n" for line in box.splitlines() if line.startswith("> ")) if box else ""


def test_three_masters_without_an_endpoint_move_the_api(plan):
    """1 -> 3 masters with controlPlane.endpoint unset: the API goes from the master's 6443
    to the VIP's 8443, which a running cluster cannot follow."""
    result = diff(plan("dev"), plan("dev", "masters.count=3"))
    assert result.returncode == 1, result.stderr
    box = first_box(result.stdout)
    assert box.startswith("> This change **moves the API endpoint**")
    assert ':6443"` → `"https://' in box and ':8443"`' in box
    assert "adds Port `dev-master-vip`" in box
    assert CALM not in result.stdout


def test_vip_to_octavia_removes_the_vip(plan):
    three = ("masters.count=3",)
    result = diff(
        plan("dev", *three, "controlPlane.endpoint=vip"),
        plan("dev", *three, "controlPlane.endpoint=octavia"),
    )
    assert result.returncode == 1, result.stderr
    box = first_box(result.stdout)
    assert "moves the API endpoint" in box
    assert "removes Port `dev-master-vip`" in box and "adds LoadBalancer `dev-master-lb`" in box


def test_a_renamed_pool_deletes_its_instances(plan):
    result = diff(plan("dev"), plan("dev", "workerPools[0].name=web"))
    assert result.returncode == 1, result.stderr
    assert first_box(result.stdout) == (
        "> This change **deletes 2 instances**:\n"
        "> - 2 × Instance in WorkerPool `dev-worker-general`: dev-worker-general-0, dev-worker-general-1\n"
    )


def test_a_new_pod_network_is_warned_of(plan):
    result = diff(plan("dev"), plan("dev", "podCidr=10.200.0.0/16"))
    assert result.returncode == 1, result.stderr
    box = first_box(result.stdout)
    assert box.startswith("> This change **changes what a running cluster cannot change**")
    assert '`podCidr`: `"10.244.0.0/16"` → `"10.200.0.0/16"`' in box


def test_api_server_settings_reconfigure_running_masters(plan):
    """An API server setting (here OIDC sign-in and the audit log's age) changes no VM: the
    diff says which masters are reconfigured, by which commands, from what to what, in the
    clear although the files travel in a secret."""
    oidc = 'apiServer.oidc={"issuerUrl":"https://id.example.org/k8s","clientId":"k8s"}'
    result = diff(
        plan("dev", "masters.count=3"),
        plan("dev", "masters.count=3", oidc, "apiServer.audit.maxAgeDays=90"),
    )
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "> [!NOTE]\n> This change **reconfigures 3 masters**:" in out
    assert out.index("reconfigures 3 masters") < out.index(" to add, ")
    note = out.split("> [!NOTE]\n", 1)[1].split("\n\n", 1)[0]
    assert (
        "audit" in note
        and "30d, oidc off` → `" in note
        and "90d, oidc https://id.example.org/k8s`" in note
    )
    assert "`dev-master-0-apiserver`, `dev-master-1-apiserver`, `dev-master-2-apiserver`" in note
    assert CALM in out


def test_a_new_worker_reconfigures_no_master(plan):
    result = diff(plan("dev"), plan("dev", "workerPools[0].count=3"))
    assert result.returncode == 1 and "[!NOTE]" not in result.stdout


def test_a_key_rotation_is_announced_in_its_order(plan):
    """Raising keyGeneration adds the rotation's commands: the note lists them in the order
    they run (add, promote on every master, one rewrite, drop), before the counts."""
    result = diff(
        plan("dev", "masters.count=3"),
        plan("dev", "masters.count=3", "apiServer.encryption.keyGeneration=2"),
    )
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "This change **rotates the Secrets encryption key on 3 masters**" in out
    note = out.split("rotates the Secrets encryption key", 1)[1].split("\n\n", 1)[0]
    names = [line.split("`")[1] for line in note.splitlines() if line.startswith("> - `")]
    phases = [n.rsplit("-", 2)[1] for n in names]
    assert phases == ["add"] * 3 + ["promote"] * 3 + ["rewrite"] + ["drop"] * 3
    assert "drop key1" in note and out.index("rotates the Secrets") < out.index(" to add, ")
    assert CALM in out


def test_a_longer_drain_runs_nothing_now(plan):
    """timeouts.drain is read by the drain command's delete step only: nothing runs on the
    workers today, and the diff must not say a command runs again."""
    result = diff(plan("dev"), plan("dev", "timeouts.drain=900"))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert (
        "#### 2 × `Command` `dev-worker-general-0-drain`, `dev-worker-general-1-drain`: "
        "update in place: nothing runs now, only what runs at delete changes"
    ) in out
    assert "runs again" not in out and CALM in out
