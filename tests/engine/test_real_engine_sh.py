"""tools/real-engine.sh: shellcheck- and shfmt-clean (tools/ style: four spaces), and what it
leaves behind: a PATH directory with `pulumi` and our language host only, and a PULUMI_HOME with
every plugin at the version requirements.txt pins."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from real import ROOT

SCRIPT = ROOT / "tools" / "real-engine.sh"


def shfmt() -> str:
    """The shfmt tools/test.sh builds (its SHFMT_VERSION); a missing one fails, never skips."""
    version = re.search(r"^SHFMT_VERSION=(\S+)$", (ROOT / "tools" / "test.sh").read_text(), re.M)[1]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    tool = cache / "openstack-k8s" / "bin" / f"shfmt-{version}"
    assert tool.is_file(), f"{tool} is missing: run `bash tools/test.sh`"
    return str(tool)


def test_shellcheck_is_clean():
    shellcheck = Path(sys.executable).with_name("shellcheck")
    res = subprocess.run([str(shellcheck), str(SCRIPT)], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_shfmt_is_clean():
    res = subprocess.run([shfmt(), "-i", "4", "-d", str(SCRIPT)], capture_output=True, text=True)
    assert (res.returncode, res.stdout) == (0, ""), res.stdout


@pytest.mark.engine
def test_the_path_dir_and_the_plugins(engine):
    # No pulumi-resource-* beside pulumi: the CLI would take it over the installed plugin.
    assert sorted(p.name for p in engine.bin_dir.iterdir()) == ["pulumi", "pulumi-language-python"]
    version = subprocess.run([engine.pulumi, "version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == "v3.276.0"

    pins = dict(re.findall(r"^pulumi-(\w+)==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M))
    expected = {
        f"resource-{name}-v{pins[name]}"
        for name in ("openstack", "tls", "random", "command", "kubernetes")
    }
    assert {p.name for p in engine.plugins.iterdir() if p.is_dir()} == expected
    # The stand-ins say what they are, and run this checkout's code.
    wrapper = (engine.plugins / f"resource-tls-v{pins['tls']}" / "pulumi-resource-tls").read_text()
    assert "STAND-IN" in wrapper and f"PYTHONPATH={ROOT} " in wrapper
    assert "-m tools.engine.standins tls" in wrapper
