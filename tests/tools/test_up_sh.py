"""tools/up.sh, run for real against a fake `pulumi` (and a fake `python3`, so that no venv
is built): qualified stack names find their stack file, and nothing is created before every
check has passed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from planning import ROOT  # noqa: E402

FAKE_PULUMI = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$FAKE_LOG"
echo "backend=$PULUMI_BACKEND_URL" >> "$FAKE_LOG"
"""
# `python3 -m venv .venv` makes a .venv whose pip only records that it ran.
FAKE_PYTHON = """#!/usr/bin/env bash
[[ "$1 $2" == "-m venv" ]] || exit 99
mkdir -p "$3/bin"
printf '#!/usr/bin/env bash\\necho "pip $*" >> "$FAKE_LOG"\\n' > "$3/bin/pip"
chmod +x "$3/bin/pip"
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def checkout(tmp_path):
    """A copy of the script in a checkout of its own, with the fakes first on PATH."""
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "up.sh", repo / "tools" / "up.sh")
    (repo / "requirements.txt").write_text("pulumi\n")
    (repo / "Pulumi.dev.yaml").write_text("config: {}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "pulumi", FAKE_PULUMI)
    _executable(bin_dir / "python3", FAKE_PYTHON)
    log = tmp_path / "calls.log"
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FAKE_LOG": str(log),
        "OS_CLOUD": "mycloud",
        "PULUMI_CONFIG_PASSPHRASE": "test",
    }

    def run(*args: str, **overrides: str | None) -> subprocess.CompletedProcess:
        full = {**env, **overrides}
        full = {k: v for k, v in full.items() if v is not None}
        return subprocess.run(
            ["bash", str(repo / "tools" / "up.sh"), *args],
            env=full,
            capture_output=True,
            text=True,
            timeout=60,
        )

    run.repo, run.log = repo, log
    return run


def test_a_plain_stack_runs_pulumi_up(checkout):
    """The ordinary path, to show the fakes stand in for what the script calls."""
    result = checkout("dev", "--yes")
    assert result.returncode == 0, result.stderr
    calls = checkout.log.read_text().splitlines()
    backend = f"backend=file://{checkout.repo}/.pulumi-state"
    assert calls == [
        "pip install -q --disable-pip-version-check -r requirements.txt",
        "stack select --create dev",
        backend,
        "up --stack dev --yes",
        backend,
    ]
    assert (checkout.repo / ".pulumi-state").is_dir()


@pytest.mark.parametrize("stack", ["myorg/dev", "myorg/openstack-k8s/dev"])
def test_a_qualified_stack_uses_the_file_of_its_last_part(checkout, stack):
    """`org/dev` is configured by Pulumi.dev.yaml, as Pulumi itself reads it."""
    result = checkout(stack)
    assert result.returncode == 0, result.stderr
    calls = checkout.log.read_text().splitlines()
    assert f"stack select --create {stack}" in calls and f"up --stack {stack}" in calls


def test_a_missing_stack_file_is_named(checkout):
    result = checkout("myorg/prod")
    assert result.returncode == 1
    assert "no Pulumi.prod.yaml for stack myorg/prod" in result.stderr
    assert not checkout.log.exists()


def test_no_passphrase_creates_nothing(checkout):
    """A local backend without a passphrase is refused before the state directory (or the
    venv) exists: a failed first try leaves the checkout as it was."""
    result = checkout("dev", PULUMI_CONFIG_PASSPHRASE=None)
    assert result.returncode == 1
    assert "set PULUMI_CONFIG_PASSPHRASE" in result.stderr
    assert not (checkout.repo / ".pulumi-state").exists()
    assert not (checkout.repo / ".venv").exists()
    assert not checkout.log.exists()


def test_a_remote_backend_needs_no_passphrase_and_no_state_dir(checkout):
    result = checkout("dev", PULUMI_CONFIG_PASSPHRASE=None, PULUMI_BACKEND_URL="s3://bucket/state")
    assert result.returncode == 0, result.stderr
    assert "backend=s3://bucket/state" in checkout.log.read_text()
    assert not (checkout.repo / ".pulumi-state").exists()
