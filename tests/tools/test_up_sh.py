"""tools/up.sh, run for real against a fake `pulumi` (and a fake `python3`, so that no venv
is built): qualified stack names find their stack file, the state goes to the backend the CLI
is logged in to (a local one only when there is none), OS_CLOUD must name a cloud some
clouds.yaml holds, and nothing is created before every check has passed."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from planning import ROOT  # noqa: E402

# Records every call and the backend it ran with. `whoami` answers as the real CLI (3.276)
# does: the JSON of the login in FAKE_WHOAMI_URL, else "not logged in" with exit status 3.
FAKE_PULUMI = """#!/usr/bin/env bash
printf '%s\\n' "$*" >> "$FAKE_LOG"
echo "backend=${PULUMI_BACKEND_URL:-}" >> "$FAKE_LOG"
if [[ $1 == whoami ]]; then
    if [[ -n ${FAKE_WHOAMI_URL:-} ]]; then
        printf '{\\n  "user": "someone",\\n  "url": "%s"\\n}\\n' "$FAKE_WHOAMI_URL"
        exit 0
    fi
    echo "${FAKE_WHOAMI_ERROR:-error: this command requires logging in; try running \\`pulumi login\\` first}" >&2
    exit 3
fi
"""
# `python3 -m venv .venv` makes a .venv whose pip only records that it ran; the version check
# (`python3 python_version.py`) runs for real, or answers as an old Python with
# FAKE_PYTHON_TOO_OLD.
FAKE_PYTHON = """#!/usr/bin/env bash
if [[ $1 == python_version.py ]]; then
    echo "python3 $*" >> "$FAKE_LOG"
    [[ -z ${FAKE_PYTHON_TOO_OLD:-} ]] || { echo "$FAKE_PYTHON_TOO_OLD" >&2; exit 1; }
    exec "$REAL_PYTHON" "$@"
fi
[[ "$1 $2" == "-m venv" ]] || exit 99
mkdir -p "$3/bin"
printf '#!/usr/bin/env bash\\necho "pip $*" >> "$FAKE_LOG"\\n' > "$3/bin/pip"
chmod +x "$3/bin/pip"
"""
CLOUDS = """\
# what `openstack` and the provider read
clouds:
  mycloud:
    auth:
      auth_url: https://keystone.example.test:5000/v3
    region_name: RegionOne
  "quoted-cloud":
    auth: {auth_url: https://keystone.example.test:5000/v3}
"""
WHOAMI = "whoami --json --non-interactive"
VERSION_CHECK = "python3 python_version.py"


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def checkout(tmp_path):
    """A copy of the script in a checkout of its own, with the fakes first on PATH, a
    clouds.yaml naming `mycloud` in ~/.config/openstack, and no Pulumi login."""
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "up.sh", repo / "tools" / "up.sh")
    shutil.copy(ROOT / "python_version.py", repo / "python_version.py")
    (repo / "requirements.txt").write_text("pulumi\n")
    (repo / "Pulumi.dev.yaml").write_text("config: {}\n")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _executable(bin_dir / "pulumi", FAKE_PULUMI)
    _executable(bin_dir / "python3", FAKE_PYTHON)
    (tmp_path / ".config" / "openstack").mkdir(parents=True)
    (tmp_path / ".config" / "openstack" / "clouds.yaml").write_text(CLOUDS)
    log = tmp_path / "calls.log"
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FAKE_LOG": str(log),
        "REAL_PYTHON": sys.executable,
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

    run.repo, run.log, run.home = repo, log, tmp_path
    run.calls = lambda: log.read_text().splitlines() if log.exists() else []
    return run


def _nothing_created(checkout) -> None:
    assert not (checkout.repo / ".pulumi-state").exists()
    assert not (checkout.repo / ".venv").exists()
    assert not [c for c in checkout.calls() if c.startswith(("stack", "up"))]


def test_not_logged_in_anywhere_the_state_is_local(checkout):
    """The ordinary path without a login, to show the fakes stand in for what the script
    calls: the CLI is asked first, then a local backend in ./.pulumi-state is used."""
    result = checkout("dev", "--yes")
    assert result.returncode == 0, result.stderr
    backend = f"backend=file://{checkout.repo}/.pulumi-state"
    assert checkout.calls() == [
        VERSION_CHECK,
        WHOAMI,
        "backend=",
        "pip install -q --disable-pip-version-check -r requirements.txt",
        "stack select --create dev",
        backend,
        "up --stack dev --yes",
        backend,
    ]
    assert (checkout.repo / ".pulumi-state").is_dir()
    assert f"pulumi login file://{checkout.repo}/.pulumi-state" in result.stderr


@pytest.mark.parametrize("stack", ["myorg/dev", "myorg/openstack-k8s/dev"])
def test_a_qualified_stack_uses_the_file_of_its_last_part(checkout, stack):
    """`org/dev` is configured by Pulumi.dev.yaml, as Pulumi itself reads it."""
    result = checkout(stack)
    assert result.returncode == 0, result.stderr
    calls = checkout.calls()
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
    assert checkout.calls() == [VERSION_CHECK, WHOAMI, "backend="]
    _nothing_created(checkout)


def test_a_backend_url_is_used_as_given_without_asking_the_cli(checkout):
    result = checkout("dev", PULUMI_CONFIG_PASSPHRASE=None, PULUMI_BACKEND_URL="s3://bucket/state")
    assert result.returncode == 0, result.stderr
    calls = checkout.calls()
    assert WHOAMI not in calls
    assert "backend=s3://bucket/state" in calls
    assert not (checkout.repo / ".pulumi-state").exists()


def test_a_pulumi_cloud_login_is_used_and_needs_no_passphrase(checkout):
    """The user's `pulumi login` wins: no local state, no passphrase, and PULUMI_BACKEND_URL
    left unset so that every pulumi command runs against the login."""
    result = checkout(
        "dev", PULUMI_CONFIG_PASSPHRASE=None, FAKE_WHOAMI_URL="https://api.pulumi.com"
    )
    assert result.returncode == 0, result.stderr
    assert checkout.calls() == [
        VERSION_CHECK,
        WHOAMI,
        "backend=",
        "pip install -q --disable-pip-version-check -r requirements.txt",
        "stack select --create dev",
        "backend=",
        "up --stack dev",
        "backend=",
    ]
    assert not (checkout.repo / ".pulumi-state").exists()
    assert "state in https://api.pulumi.com" in result.stderr


def test_a_file_login_is_used_and_still_needs_a_passphrase(checkout):
    """`pulumi login file:///srv/state`: the state goes there, and a file backend encrypts
    secrets with a passphrase, so without one nothing is created."""
    url = "file:///srv/pulumi-state"
    refused = checkout("dev", PULUMI_CONFIG_PASSPHRASE=None, FAKE_WHOAMI_URL=url)
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"tools/up.sh: a local backend ({url}) encrypts the stack's secrets with a passphrase: "
        "set PULUMI_CONFIG_PASSPHRASE or PULUMI_CONFIG_PASSPHRASE_FILE"
    )
    _nothing_created(checkout)
    checkout.log.unlink()
    result = checkout("dev", FAKE_WHOAMI_URL=url)
    assert result.returncode == 0, result.stderr
    assert "up --stack dev" in checkout.calls()
    assert {c for c in checkout.calls() if c.startswith("backend=")} == {"backend="}
    assert not (checkout.repo / ".pulumi-state").exists()


@pytest.mark.parametrize("login", ["credentials", "token"])
def test_a_login_that_fails_is_an_error_not_a_reason_to_go_local(checkout, login):
    """Logged in (credentials.json names a current backend, or PULUMI_ACCESS_TOKEN is set) but
    `pulumi whoami` fails, say an expired token: one line with the CLI's error, nothing made."""
    overrides = {"FAKE_WHOAMI_ERROR": "error: token expired"}
    if login == "credentials":
        (checkout.home / ".pulumi").mkdir()
        (checkout.home / ".pulumi" / "credentials.json").write_text(
            '{\n    "current": "https://api.pulumi.com",\n    "accessTokens": {}\n}\n'
        )
    else:
        overrides["PULUMI_ACCESS_TOKEN"] = "pul-0000"
    result = checkout("dev", **overrides)
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "tools/up.sh: pulumi whoami fails for the backend you are logged in to "
        "(error: token expired): fix the login, or set PULUMI_BACKEND_URL"
    )
    _nothing_created(checkout)


def test_an_os_cloud_that_no_clouds_yaml_holds_fails_its_checks(checkout):
    """Before anything else is asked or made: one line naming OS_CLOUD and where it looked.
    `auth` is a key of mycloud, not a cloud, so it is not found either."""
    for cloud in ("nosuchcloud", "auth", "clouds"):
        result = checkout("dev", OS_CLOUD=cloud)
        assert result.returncode == 1, cloud
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert lines[0].startswith(
            f"tools/up.sh: OS_CLOUD={cloud}: no clouds.yaml names that cloud (looked in "
        )
        assert f"{checkout.home}/.config/openstack/clouds.yaml" in lines[0]
        assert f"{checkout.repo}/clouds.yaml" in lines[0]
        assert not checkout.log.exists()
        _nothing_created(checkout)


@pytest.mark.parametrize("where", ["home", "checkout", "OS_CLIENT_CONFIG_FILE", "quoted"])
def test_an_os_cloud_in_any_clouds_yaml_passes(checkout, tmp_path, where):
    """Every place openstacksdk and the provider read: the file OS_CLIENT_CONFIG_FILE names,
    ./clouds.yaml, ~/.config/openstack/clouds.yaml; a quoted name is the same name."""
    overrides = {}
    if where == "checkout":
        (checkout.home / ".config" / "openstack" / "clouds.yaml").unlink()
        (checkout.repo / "clouds.yaml").write_text(CLOUDS)
    elif where == "OS_CLIENT_CONFIG_FILE":
        (checkout.home / ".config" / "openstack" / "clouds.yaml").unlink()
        (tmp_path / "elsewhere.yaml").write_text(CLOUDS)
        overrides["OS_CLIENT_CONFIG_FILE"] = str(tmp_path / "elsewhere.yaml")
    elif where == "quoted":
        overrides["OS_CLOUD"] = "quoted-cloud"
    result = checkout("dev", **overrides)
    assert result.returncode == 0, result.stderr
    assert "up --stack dev" in checkout.calls()


def test_openrc_variables_need_no_clouds_yaml(checkout):
    (checkout.home / ".config" / "openstack" / "clouds.yaml").unlink()
    result = checkout("dev", OS_CLOUD=None, OS_AUTH_URL="https://keystone.example.test:5000/v3")
    assert result.returncode == 0, result.stderr
    assert "up --stack dev" in checkout.calls()


def test_an_old_python3_stops_before_anything_is_made(checkout):
    """python_version.py's one line, as the program would give it only after the venv, the
    login and the stack were made."""
    line = "openstack-k8s needs Python 3.11 or newer (it uses enum.StrEnum and datetime.UTC); ..."
    result = checkout("dev", FAKE_PYTHON_TOO_OLD=line)
    assert result.returncode == 1
    assert result.stderr.strip() == line
    assert checkout.calls() == [VERSION_CHECK]
    _nothing_created(checkout)
