"""tools/test.sh, run for real in a checkout of its own with fakes on PATH: `dpkg-query` (every
package installed), `python3` (a .venv whose python is a fake pytest), `date` (a clock the fake
pytest moves forward) and, for the shfmt build, `go`. Every tier runs even when one fails, the
report names each tier with its result and duration, and the exit status says whether all
passed."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from planning import ROOT

SHFMT_VERSION = re.search(r"^SHFMT_VERSION=(\S+)$", (ROOT / "tools" / "test.sh").read_text(), re.M)[
    1
]

# The clock: `date +%s` prints the number in $FAKE_CLOCK, which only the fake pytest moves.
FAKE_DATE = """#!/usr/bin/env bash
[[ $* == +%s ]] || exit 99
cat "$FAKE_CLOCK"
"""
FAKE_DPKG_QUERY = """#!/usr/bin/env bash
printf 'install ok installed'
"""
# A .venv whose pip records its call and whose python is pytest: it records its arguments,
# takes FAKE_SECONDS_<tier> seconds of the fake clock, and fails the tier FAKE_FAIL names.
FAKE_PYTHON3 = """#!/usr/bin/env bash
[[ "$1 $2" == "-m venv" ]] || exit 99
mkdir -p "$3/bin"
cat > "$3/bin/pip" <<'EOF'
#!/usr/bin/env bash
echo "pip $*" >> "$FAKE_LOG"
EOF
cat > "$3/bin/python" <<'EOF'
#!/usr/bin/env bash
case " $* " in
  *" not vm and not engine and not cloud "*) tier=offline ;;
  *" engine and not cloud "*) tier=engine ;;
  *" -m cloud "*) tier=cloud ;;
  *) tier=vm ;;
esac
echo "$tier: $*" >> "$FAKE_LOG"
seconds_var=FAKE_SECONDS_$tier
echo $(( $(cat "$FAKE_CLOCK") + ${!seconds_var:-0} )) > "$FAKE_CLOCK"
[[ $tier != "${FAKE_FAIL:-}" ]] || exit "${FAKE_FAIL_STATUS:-1}"
EOF
chmod +x "$3/bin/pip" "$3/bin/python"
"""
# `go env GOVERSION` says FAKE_GO_VERSION; `go install` leaves a shfmt in $GOBIN, or fails
# saying FAKE_GO_FAILS.
FAKE_GO = """#!/usr/bin/env bash
echo "go $*" >> "$FAKE_LOG"
case $1 in
  env) echo "$FAKE_GO_VERSION" ;;
  install)
    [[ -z ${FAKE_GO_FAILS:-} ]] || { echo "$FAKE_GO_FAILS" >&2; exit 1; }
    printf '#!/bin/sh\\n' > "$GOBIN/shfmt" && chmod +x "$GOBIN/shfmt"
    ;;
  *) exit 99 ;;
esac
"""

# The engine build records itself, or fails saying FAKE_BUILD_FAILS; the local OpenStack records
# each command and fails the one FAKE_OPENSTACK_FAILS names.
FAKE_REAL_ENGINE = """#!/usr/bin/env bash
echo "real-engine.sh $*" >> "$FAKE_LOG"
[[ -z ${FAKE_BUILD_FAILS:-} ]] || { echo "$FAKE_BUILD_FAILS" >&2; exit 1; }
echo /fake/engine/bin
"""
FAKE_OPENSTACK = """#!/usr/bin/env bash
echo "openstack.sh $*" >> "$FAKE_LOG"
[[ $1 != "${FAKE_OPENSTACK_FAILS:-}" ]]
"""
TIER_ROWS = ["setup", "offline", "vm", "engine-build", "engine", "openstack-install", "cloud"]


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def checkout(tmp_path):
    """tools/test.sh in a checkout of its own; shfmt already in the cache, kubectl present."""
    repo = tmp_path / "repo"
    (repo / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "test.sh", repo / "tools" / "test.sh")
    _executable(repo / "tools" / "real-engine.sh", FAKE_REAL_ENGINE)
    _executable(repo / "tools" / "openstack.sh", FAKE_OPENSTACK)
    (repo / "requirements-dev.txt").write_text("pytest\n")
    bin_dir = tmp_path / "bin"
    for name, text in {
        "date": FAKE_DATE,
        "dpkg-query": FAKE_DPKG_QUERY,
        "python3": FAKE_PYTHON3,
        "kubectl": "#!/bin/sh\n",
        "go": FAKE_GO,
    }.items():
        _executable(bin_dir / name, text)
    cache = tmp_path / "cache"
    shfmt = cache / "openstack-k8s" / "bin" / f"shfmt-{SHFMT_VERSION}"
    _executable(shfmt, "#!/bin/sh\n")
    clock = tmp_path / "clock"
    clock.write_text("1000\n")
    log = tmp_path / "calls.log"
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "XDG_CACHE_HOME": str(cache),
        "FAKE_LOG": str(log),
        "FAKE_CLOCK": str(clock),
        "FAKE_GO_VERSION": "go1.26.0",
    }

    def run(*args: str, **overrides: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(repo / "tools" / "test.sh"), *args],
            env={**env, **overrides},
            capture_output=True,
            text=True,
            timeout=60,
        )

    run.shfmt = shfmt
    run.calls = lambda: log.read_text().splitlines() if log.exists() else []
    # The tiers' pytest runs, in order (the background steps' calls interleave by chance).
    run.tier_calls = lambda: [
        c for c in run.calls() if c.split(":")[0] in ("offline", "vm", "engine", "cloud")
    ]
    return run


def report(result: subprocess.CompletedProcess) -> list[list[str]]:
    """The report's rows, each split into name, result and duration."""
    lines = result.stdout.splitlines()
    assert "tools/test.sh: report" in lines, result.stdout + result.stderr
    rows = lines[lines.index("tools/test.sh: report") + 1 : -1]
    return [re.split(r"\s{2,}", row.strip()) for row in rows]


def test_every_tier_runs_and_passes(checkout):
    result = checkout("-p", "no:cacheprovider", FAKE_SECONDS_offline="300", FAKE_SECONDS_vm="120")
    assert result.returncode == 0, result.stderr
    calls = checkout.calls()
    assert calls.count("pip install -q --disable-pip-version-check -r requirements-dev.txt") == 1
    assert checkout.tier_calls() == [
        "offline: -m pytest -n 2 -m not vm and not engine and not cloud -p no:cacheprovider",
        "vm: -m pytest -m vm -p no:cacheprovider",
        "engine: -m pytest -n 2 -m engine and not cloud -p no:cacheprovider",
        "cloud: -m pytest -m cloud -p no:cacheprovider",
    ]
    # The long installs run once, beside the tiers; the cloud is started around its tier only.
    assert calls.count("real-engine.sh ") == 1 and calls.count("openstack.sh install") == 1
    cloud = calls.index("cloud: -m pytest -m cloud -p no:cacheprovider")
    assert calls.index("openstack.sh start") < cloud < calls.index("openstack.sh stop")
    # Durations come from the fake clock: what each fake tier "took"; a background step
    # counts until the tier that needs it waits for it.
    assert report(result) == [
        ["setup", "passed", "0 s"],
        ["offline", "passed", "300 s"],
        ["vm", "passed", "120 s"],
        ["engine-build", "passed", "420 s"],
        ["engine", "passed", "0 s"],
        ["openstack-install", "passed", "420 s"],
        ["cloud", "passed", "0 s"],
    ]
    assert result.stdout.splitlines()[-1] == "tools/test.sh: all passed"


def test_a_failing_offline_tier_does_not_hide_the_later_tiers(checkout):
    """The point of the runner: the VM, engine and cloud tests still run and report, and the
    exit is 1."""
    result = checkout(FAKE_FAIL="offline", FAKE_SECONDS_offline="42", FAKE_SECONDS_vm="7")
    assert result.returncode == 1
    assert [c.split(":")[0] for c in checkout.tier_calls()] == ["offline", "vm", "engine", "cloud"]
    assert report(result)[:3] == [
        ["setup", "passed", "0 s"],
        ["offline", "FAILED (exit 1)", "42 s"],
        ["vm", "passed", "7 s"],
    ]
    assert [row[:2] for row in report(result)[3:]] == [[name, "passed"] for name in TIER_ROWS[3:]]
    assert result.stdout.splitlines()[-1] == "tools/test.sh: FAILED: offline"


def test_the_last_tier_failing_fails_the_run_and_the_cloud_is_stopped(checkout):
    result = checkout(FAKE_FAIL="cloud", FAKE_FAIL_STATUS="2")
    assert result.returncode == 1
    assert report(result)[-1] == ["cloud", "FAILED (exit 2)", "0 s"]
    assert checkout.calls()[-1] == "openstack.sh stop"
    assert result.stdout.splitlines()[-1] == "tools/test.sh: FAILED: cloud"


def test_a_failed_engine_build_fails_both_tiers_that_need_it_without_running_them(checkout):
    """The build's log is shown once; neither the engine's pytest nor the cloud is started."""
    result = checkout(FAKE_BUILD_FAILS="go: module lookup refused")
    assert result.returncode == 1
    assert result.stderr.count("go: module lookup refused") == 1
    assert [c.split(":")[0] for c in checkout.tier_calls()] == ["offline", "vm"]
    assert "openstack.sh start" not in checkout.calls()
    assert [row[:2] for row in report(result)] == [
        ["setup", "passed"],
        ["offline", "passed"],
        ["vm", "passed"],
        ["engine-build", "FAILED (exit 1)"],
        ["engine", "FAILED (exit 1)"],
        ["openstack-install", "passed"],
        ["cloud", "FAILED (exit 1)"],
    ]
    assert result.stdout.splitlines()[-1] == ("tools/test.sh: FAILED: engine-build engine cloud")


def test_a_cloud_that_does_not_start_fails_its_tier_and_is_still_stopped(checkout):
    result = checkout(FAKE_OPENSTACK_FAILS="start")
    assert result.returncode == 1
    assert "cloud" not in [c.split(":")[0] for c in checkout.tier_calls()]
    calls = checkout.calls()
    assert calls.index("openstack.sh start") < calls.index("openstack.sh stop")
    assert report(result)[-1][:2] == ["cloud", "FAILED (exit 1)"]


def test_tiers_can_be_chosen(checkout):
    """Only what the chosen tiers need is built or installed."""
    result = checkout("--tiers", "vm", "-k", "boot")
    assert result.returncode == 0, result.stderr
    assert checkout.calls()[1:] == ["vm: -m pytest -m vm -k boot"]
    assert [row[0] for row in report(result)] == ["setup", "vm"]


def test_an_unknown_tier_is_named_before_anything_runs(checkout):
    result = checkout("--tiers", "offline,soak")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        "tools/test.sh: --tiers: no tier named 'soak' (tiers: cloud engine offline vm)"
    )
    assert checkout.calls() == []


def test_shfmt_is_built_with_a_recent_go_and_reported(checkout):
    checkout.shfmt.unlink()
    result = checkout()
    assert result.returncode == 0, result.stderr
    assert f"go install mvdan.cc/sh/v3/cmd/shfmt@{SHFMT_VERSION}" in checkout.calls()
    assert os.access(checkout.shfmt, os.X_OK)
    assert [row[:2] for row in report(result)] == [["shfmt", "passed"]] + [
        [name, "passed"] for name in TIER_ROWS
    ]


def test_an_old_go_is_named_in_one_line_before_the_tiers(checkout):
    """Debian 12's golang-go (1.19) cannot build shfmt v3.12; say so, not a module error."""
    checkout.shfmt.unlink()
    result = checkout(FAKE_GO_VERSION="go1.19.8")
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"tools/test.sh: Go 1.19.8 is too old to build shfmt {SHFMT_VERSION}: "
        "Go 1.23 or newer (https://go.dev/dl/)"
    )
    assert not [c for c in checkout.calls() if c.startswith(("offline", "vm", "go install"))]


def test_a_failed_shfmt_build_is_reported_and_no_tier_runs(checkout):
    """A step beside the others (start_step/wait_step): its log is shown when it fails, the
    report names it, and setup failures stop the run before the tiers."""
    checkout.shfmt.unlink()
    result = checkout(FAKE_GO_FAILS="go: proxy.golang.org: connection refused")
    assert result.returncode == 1
    assert "go: proxy.golang.org: connection refused" in result.stderr
    assert [row[:2] for row in report(result)] == [
        ["shfmt", "FAILED (exit 1)"],
        ["setup", "FAILED (exit 1)"],
    ]
    assert result.stdout.splitlines()[-1] == "tools/test.sh: FAILED: shfmt setup"
    assert not [c for c in checkout.calls() if c.startswith(("offline", "vm"))]
