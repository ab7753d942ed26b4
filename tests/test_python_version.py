"""Python 3.11 or newer (enum.StrEnum, datetime.UTC): an older Python gets one line from the
program, the tools and tools/up.sh, before anything that would fail with a traceback is
imported. The older Python is played by this one with sys.version_info replaced."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import python_version
from planning import ROOT

# Run in a fresh interpreter that believes it is 3.10.12, then report how it ended and
# whether the modules an old Python cannot import were imported at all.
OLD_PYTHON = """
import collections, json, runpy, sys
Version = collections.namedtuple("Version", "major minor micro releaselevel serial")
sys.version_info = Version(3, 10, 12, "final", 0)
try:
    {run}
    ended = "ran on"
except SystemExit as e:
    ended = ["SystemExit", str(e.code)]
except Exception as e:
    ended = [type(e).__name__, str(e)]
print(json.dumps({{"ended": ended, "imported": sorted(
    m for m in ("settings", "components.cluster", "components.roles", "tools.plan")
    if m in sys.modules)}}))
"""
LINE = (
    "openstack-k8s needs Python 3.11 or newer (it uses enum.StrEnum and datetime.UTC); "
    f"{sys.executable} is Python 3.10.12"
)


def as_old_python(run: str, *args: str) -> dict:
    code = OLD_PYTHON.format(run=run)
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.splitlines()[-1])


def test_this_python_will_do_and_an_older_one_is_named(monkeypatch):
    assert python_version.problem() is None
    monkeypatch.setattr(sys, "version_info", (3, 10, 12, "final", 0))
    assert python_version.problem() == LINE


def test_the_offline_plan_stops_before_importing_settings(tmp_path):
    out = tmp_path / "plan"
    got = as_old_python(
        'sys.argv = ["tools.plan", "--stack", "prod", "--out", sys.argv[1]]; '
        'runpy.run_module("tools.plan", run_name="__main__", alter_sys=True)',
        str(out),
    )
    assert got == {"ended": ["SystemExit", LINE], "imported": []}
    assert not out.exists()


def test_the_program_stops_before_importing_settings():
    """Under the Pulumi CLI __main__.py raises RunError: the CLI shows its one line."""
    got = as_old_python('runpy.run_path("__main__.py", run_name="__main__")')
    assert got == {"ended": ["RunError", LINE], "imported": []}


def test_the_guard_runs_as_a_script():
    """What tools/up.sh runs before it builds a venv: silent and 0 on this Python."""
    out = subprocess.run(
        [sys.executable, "python_version.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert (out.returncode, out.stdout, out.stderr) == (0, "", "")
    got = as_old_python('runpy.run_path("python_version.py", run_name="__main__")')
    assert got == {"ended": ["SystemExit", LINE], "imported": []}


def test_the_minimum_is_the_one_the_readme_and_ci_name():
    want = ".".join(map(str, python_version.MINIMUM))
    assert f"Python {want}+" in (ROOT / "README.md").read_text()
    assert "Python 3.10" not in (ROOT / "README.md").read_text()
    preview = (ROOT / ".github" / "workflows" / "preview.yml").read_text()
    assert f'python-version: "{want}"' in preview
