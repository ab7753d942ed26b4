"""The Python is formatted by ruff and passes ruff's rules (ruff.toml: pycodestyle, pyflakes,
bugbear, pyupgrade, and the complexity limit). Each check is first shown to catch what it is
for on a file made to fail it, so a passing run means the rules ran."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from planning import ROOT

RUFF = Path(sys.executable).with_name("ruff")

# Eleven paths through one function: one over the limit.
TOO_COMPLEX = (
    "def f(x):\n"
    + "".join(f"    if x == {i}:\n        return {i}\n" for i in range(11))
    + "    return -1\n"
)


def ruff(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(RUFF), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_rules_catch_what_they_are_for(tmp_path):
    (tmp_path / "ruff.toml").write_text((ROOT / "ruff.toml").read_text())
    (tmp_path / "bad.py").write_text(TOO_COMPLEX + "import os\n")
    result = ruff("check", "--no-cache", ".", cwd=tmp_path)
    assert result.returncode == 1
    assert "C901" in result.stdout and "F401" in result.stdout and "E402" in result.stdout
    (tmp_path / "bad.py").write_text("x = {  'a':1 }\n")
    assert ruff("format", "--no-cache", "--check", ".", cwd=tmp_path).returncode == 1


def test_the_code_passes_the_rules():
    result = ruff("check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-4000:]


def test_the_code_is_formatted():
    result = ruff("format", "--no-cache", "--check", ".")
    assert result.returncode == 0, result.stdout[-4000:]
