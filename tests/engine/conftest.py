"""Fixtures of the engine tier: the real CLI and plugins (tools/real-engine.sh), and the local
OpenStack (tools/openstack.sh) for the cloud tier. A missing piece fails, never skips."""

from __future__ import annotations

import shlex
import subprocess

import pytest
from real import ROOT, Engine


def _stack_files() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(ROOT.glob("Pulumi*.yaml"))}


@pytest.fixture(autouse=True)
def checkout_stack_files_untouched():
    """No test writes the checkout's Pulumi.*.yaml (`pulumi stack init` would put its salt
    there, a stack of another name would add a file): same files, same text, after each test."""
    before = _stack_files()
    yield
    assert _stack_files() == before, "a test wrote or created a Pulumi*.yaml in the checkout"


@pytest.fixture(scope="session")
def engine() -> Engine:
    """The engine built (or found in its cache) by tools/real-engine.sh, once per worker."""
    return Engine.build()


def _openstack(*args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    script = ROOT / "tools" / "openstack.sh"
    assert script.is_file(), (
        f"{script} is missing: the cloud tests run against the local OpenStack it starts"
    )
    return subprocess.run(
        ["bash", str(script), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def openstack_env() -> dict[str, str]:
    """The OS_* (and OSK8S_*) variables of the local OpenStack, which must be running
    (`bash tools/openstack.sh start`; tools/test.sh starts it before the cloud tests and stops
    it after them: test workers sharing one cloud must not start or stop it themselves)."""
    status = _openstack("status")
    assert status.returncode == 0, (
        "the local OpenStack is not running: `bash tools/openstack.sh start` first\n"
        + status.stdout[-1000:]
        + status.stderr[-1000:]
    )
    res = _openstack("env")
    assert res.returncode == 0, f"tools/openstack.sh env failed:\n{res.stderr[-2000:]}"
    env = {}
    for line in res.stdout.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export" and "=" in words[1]:
            key, _, value = words[1].partition("=")
            env[key] = value
    assert "OS_AUTH_URL" in env, f"tools/openstack.sh env printed no OS_AUTH_URL:\n{res.stdout}"
    return env
