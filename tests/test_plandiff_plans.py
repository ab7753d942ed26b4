"""`python -m tools.plan --diff` on real offline plans of the dev stack (issue 7): one more
worker, and a Kubernetes version bump."""
from __future__ import annotations

import subprocess
import sys

from planning import ROOT


def diff(old, new) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tools.plan", "--diff", str(old.dir), str(new.dir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_one_more_worker(plan):
    """Exactly the new worker's resources are added; nothing changes, nothing is replaced."""
    result = diff(plan("dev"), plan("dev", "workerPools[0].count=3"))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "0 to remove, 0 to change (0 replaced)" in out
    assert "No resource is replaced or rebuilt." in out
    rows = [line for line in out.splitlines() if line.startswith("| `")]
    assert len(rows) == 7 and all("dev-worker-general-2" in row for row in rows)
    assert "**7 to add" in out


def test_version_bump(plan):
    """No VM replaced; user-data changes shown as ignored; upgrade commands run again."""
    result = diff(plan("dev"), plan("dev", "kubernetesVersion=1.34.1"))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "0 to add, 0 to remove" in out and "(0 replaced)" in out
    assert "No resource is replaced or rebuilt." in out
    assert "3 with ignored changes" in out
    for node in ("dev-master-0-upgrade", "dev-worker-general-0-upgrade", "dev-worker-general-1-upgrade"):
        assert node in out
    assert "kubernetes 1.34.1 from pkgs.k8s.io" in out
    assert "1.33.5" in out and "1.34.1" in out  # the user-data diff shows the version moving


def test_identical_plans(plan):
    p = plan("dev")
    result = diff(p, p)
    assert result.returncode == 0 and "No changes" in result.stdout
