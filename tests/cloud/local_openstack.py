"""The local OpenStack of tools/openstack.sh, for tests: start it (or reuse a running one),
connect to it, and stop it again when this session started it.

Other test packages use the session fixture by importing it into their conftest.py:

    from cloud.fixtures import openstack_cloud  # noqa: F401
"""

from __future__ import annotations

import fcntl
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "openstack.sh"
RUN = Path(os.environ.get("OSK8S_OPENSTACK_RUN", "/tmp/osk8s-openstack"))
# A cold start installs Debian packages and the OpenStack venv first.
START_TIMEOUT = 1800


def script(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def exported_env() -> dict[str, str]:
    """What `eval "$(tools/openstack.sh env)"` would export."""
    result = script("env")
    assert result.returncode == 0, result.stderr
    env = {}
    for line in result.stdout.splitlines():
        assert line.startswith("export "), line
        key, _, value = line[len("export ") :].partition("=")
        env[key] = value
    return env


def running() -> bool:
    """Every recorded process alive and every API answering."""
    return script("status").returncode == 0


def recorded_pids(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(line.split()[1]) for line in path.read_text().splitlines()]


def live_group_members(pgids: list[int]) -> list[str]:
    """Processes, anywhere on the machine, in one of these process groups."""
    wanted = set(pgids)
    left = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in wanted and fields[0] != "Z":
            left.append(f"{stat.parent.name} (group {fields[2]})")
    return left


@dataclass
class LocalCloud:
    env: dict[str, str]
    started_here: bool

    def connect(self):
        """An openstacksdk connection as the admin user of the admin project."""
        import openstack

        return openstack.connect(
            auth_url=self.env["OS_AUTH_URL"],
            username=self.env["OS_USERNAME"],
            password=self.env["OS_PASSWORD"],
            project_name=self.env["OS_PROJECT_NAME"],
            user_domain_name=self.env["OS_USER_DOMAIN_NAME"],
            project_domain_name=self.env["OS_PROJECT_DOMAIN_NAME"],
            region_name=self.env["OS_REGION_NAME"],
            interface=self.env["OS_INTERFACE"],
        )


def ensure_started() -> LocalCloud:
    """Reuse a healthy control plane, or start one (one process at a time: a lock file)."""
    RUN.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{RUN}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = False
        if not running():
            result = script("start", timeout=START_TIMEOUT)
            assert result.returncode == 0, (
                f"tools/openstack.sh start failed:\n{result.stderr[-6000:]}"
            )
            started = True
    return LocalCloud(env=exported_env(), started_here=started)


def stop_and_check() -> None:
    """Stop, then prove that no process of any group it had started is left."""
    pgids = recorded_pids(RUN / "pids")
    assert pgids, f"nothing recorded in {RUN / 'pids'}"
    result = script("stop", timeout=300)
    assert result.returncode == 0, result.stderr
    assert live_group_members(pgids) == []
    assert not (RUN / "pids").exists()
