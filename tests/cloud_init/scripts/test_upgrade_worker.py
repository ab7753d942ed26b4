"""The worker-side rolling upgrade (upgrade-worker.sh) and the token it uses
(master-upgrade-credential.sh), run for real with bash, stub steps in a step kit directory
(what node-ready.sh installs, tests/cloud_init/scripts/test_step_kit.py) and a fake kubectl."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from cloud_init import script
from fakes import FakeBin

STUB = """#!/usr/bin/env bash
set -euo pipefail
echo "{step} KUBECONFIG=${{KUBECONFIG:-unset}} ROLE=${{ROLE:-unset}} NODE=$NODE_NAME" >> "$STUB_LOG"
if [[ -n "${{KUBECONFIG:-}}" ]]; then cp "$KUBECONFIG" "$STUB_LOG.{step}.kubeconfig"; stat -c %a "$KUBECONFIG" >> "$STUB_LOG"; fi
[[ "${{STUB_FAIL:-}}" != "{step}" ]] || {{ echo "{step} failed" >&2; exit 7; }}
"""


def run_worker(
    tmp_path: Path, steps=("cordon", "node", "uncordon"), **extra: str
) -> tuple[subprocess.CompletedProcess, list[str]]:
    kit = tmp_path / "steps"
    kit.mkdir()
    for s in steps:
        (kit / f"upgrade-{s}.sh").write_text(STUB.format(step=s))
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    log = tmp_path / "steps.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KUBE", "STEP_KIT"))}
    env.update(
        NODE_NAME="dev-worker-general-3",
        TARGET_VERSION="1.34.1",
        KUBE_API="https://10.10.0.30:6443",
        KUBE_TOKEN="secret-token-value",
        KUBE_CA=str(ca),
        STUB_LOG=str(log),
        TMPDIR=str(tmp_path),
        KUBECONFIG="/etc/should-not-leak",
        STEP_KIT_DIR=str(kit),
    )
    env.update(extra)
    result = subprocess.run(
        ["bash", "-s"],
        input=script("upgrade-worker.sh"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result, log.read_text().splitlines() if log.exists() else []


def test_steps_run_in_order_with_the_token_kubeconfig(tmp_path):
    """cordon and uncordon use a 0600 kubeconfig holding the token and the API endpoint; the
    node step runs with the kubelet's own credentials (no KUBECONFIG) as a worker; the
    temporary files are gone afterwards."""
    result, lines = run_worker(tmp_path)
    assert result.returncode == 0, result.stderr
    steps = [line.split()[0] for line in lines if not line.isdigit()]
    assert steps == ["cordon", "node", "uncordon"]
    node = next(line for line in lines if line.startswith("node "))
    assert "KUBECONFIG=unset" in node and "ROLE=worker" in node
    assert lines.count("600") == 2
    kubeconfig = (tmp_path / "steps.log.cordon.kubeconfig").read_text()
    assert (
        "token: secret-token-value" in kubeconfig
        and "server: https://10.10.0.30:6443" in kubeconfig
    )
    assert "secret-token-value" not in result.stdout + result.stderr
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("tmp")], (
        "temporary files left behind"
    )


@pytest.mark.parametrize("failing,ran", [("cordon", ["cordon"]), ("node", ["cordon", "node"])])
def test_a_failed_step_stops_the_upgrade_and_keeps_the_node_cordoned(tmp_path, failing, ran):
    """No uncordon after a failure: the node must not get work back half-upgraded."""
    result, lines = run_worker(tmp_path, STUB_FAIL=failing)
    assert result.returncode == 7
    assert [line.split()[0] for line in lines if not line.isdigit()] == ran
    assert f"{failing} failed" in result.stderr


def test_missing_input_is_refused(tmp_path):
    result, lines = run_worker(tmp_path, KUBE_TOKEN="")
    assert result.returncode == 2 and "KUBE_TOKEN is required" in result.stderr
    assert lines == []


@pytest.mark.parametrize("missing", ["cordon", "node", "uncordon"])
def test_a_kit_without_a_step_is_refused_before_the_cordon(tmp_path, missing):
    """A step missing from the kit stops the upgrade before anything is done (no cordon of a
    node that could not be upgraded), with one line that names the file and what installs it."""
    steps = [s for s in ("cordon", "node", "uncordon") if s != missing]
    result, lines = run_worker(tmp_path, steps=steps)
    assert result.returncode == 1 and lines == []
    assert result.stderr == (
        f"upgrade-worker: {tmp_path}/steps/upgrade-{missing}.sh is missing: "
        "the node's -ready command installs the step kit\n"
    )


def test_credential_prints_only_the_token_and_retries(tmp_path):
    """RBAC applied, token made with the asked duration, only the token on stdout; a first
    failure (API not answering yet) is retried."""
    fakes = FakeBin(tmp_path, ["kubectl"])
    fakes.rule(
        "kubectl",
        "* create token *",
        {"rc": 1, "stderr": "connection refused"},
        {"stdout": "eyJhbGciOi.token\n"},
    )
    result = subprocess.run(
        ["bash", "-s"],
        input=script("master-upgrade-credential.sh"),
        env=fakes.env(RETRY_DELAY="0", TOKEN_DURATION="6h", KUBECONFIG="/k/admin.conf"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "eyJhbGciOi.token\n"
    calls = fakes.calls("kubectl")
    assert [c[2:] for c in calls][1::2] == [
        ["-n", "kube-system", "create", "token", "openstack-k8s-node-upgrader", "--duration=6h"]
    ] * 2
    applies = [c[2:] for c in calls][0::2]
    assert len(applies) == 2 and all(a[:2] == ["apply", "-f"] for a in applies)
    assert all(c[:2] == ["--kubeconfig", "/k/admin.conf"] for c in calls)


def test_credential_gives_up_at_its_deadline(tmp_path):
    fakes = FakeBin(tmp_path, ["kubectl"], clock=True)
    fakes.rule("kubectl", "*", {"rc": 1})
    result = subprocess.run(
        ["bash", "-s"],
        input=script("master-upgrade-credential.sh"),
        env=fakes.env(RETRY_DELAY="0.25", CREDENTIAL_TIMEOUT="1"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "did not give a token" in result.stderr and result.stdout == ""
    # Tries at 0, 0.25, 0.5, 0.75 and 1 s (fake clock): the deadline has come at the fifth.
    assert [c[2] for c in fakes.calls("kubectl")] == ["apply"] * 5
    assert fakes.clock.sleeps() == [0.25] * 4
