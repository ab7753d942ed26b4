"""The shell tools a user runs (tools/*.sh) pass shellcheck and are formatted as the node
scripts are (shfmt: two spaces, indented case branches); each check is shown to bite."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from planning import ROOT

TOOLS = sorted((ROOT / "tools").glob("*.sh"))
SHFMT_VERSION = re.search(r"^SHFMT_VERSION=(\S+)$", (ROOT / "tools" / "test.sh").read_text(), re.M)[
    1
]
SHFMT = (
    Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    / "openstack-k8s"
    / "bin"
    / f"shfmt-{SHFMT_VERSION}"
)
# The node scripts' .editorconfig, as flags: tools/ has no .editorconfig of its own.
SHFMT_FLAGS = ["-i", "2", "-ci"]
BAD = "#!/usr/bin/env bash\nmain() {\n    echo $1\n}\n"


def _shellcheck() -> str:
    found = Path(sys.executable).parent / "shellcheck"
    assert found.is_file(), "shellcheck missing: pip install -r requirements-dev.txt"
    return str(found)


def _shfmt() -> str:
    assert SHFMT.is_file(), f"{SHFMT} is missing: run `bash tools/test.sh`, which builds it"
    return str(SHFMT)


def test_the_tools_are_found():
    assert {p.name for p in TOOLS} >= {"up.sh", "test.sh"}


@pytest.mark.parametrize("path", TOOLS, ids=lambda p: p.name)
def test_shellcheck_clean(path):
    result = subprocess.run([_shellcheck(), str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", TOOLS, ids=lambda p: p.name)
def test_shfmt_formatted(path):
    result = subprocess.run(
        [_shfmt(), *SHFMT_FLAGS, "-d", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout[-4000:] + result.stderr


def test_both_checks_bite(tmp_path):
    bad = tmp_path / "bad.sh"
    bad.write_text(BAD)
    checked = subprocess.run([_shellcheck(), str(bad)], capture_output=True, text=True)
    assert checked.returncode == 1 and "SC2086" in checked.stdout, checked.stdout
    formatted = subprocess.run(
        [_shfmt(), *SHFMT_FLAGS, "-d", str(bad)], capture_output=True, text=True
    )
    assert formatted.returncode == 1 and "+  echo $1" in formatted.stdout, formatted.stdout
