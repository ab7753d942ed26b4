"""What tools/real-engine.sh leaves behind: a PATH directory with `pulumi` and our language
host only, and a PULUMI_HOME with every plugin at the version requirements.txt pins.
(shellcheck and shfmt check it with every tools/*.sh: tests/tools/test_tool_scripts.py.)"""

from __future__ import annotations

import re
import subprocess

import pytest
from real import ROOT


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
