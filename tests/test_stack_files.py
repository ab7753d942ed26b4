"""The stack files the project ships: none opens SSH or the API to the internet, and the dev
stack plans only once its user has said where they connect from (issue 24, point 8)."""

from __future__ import annotations

import ipaddress
import subprocess
import sys

import yaml

from planning import CONNECT_FROM, ROOT

# By name: tests/tools/test_plan_cli.py writes throwaway Pulumi.zz-*.yaml next to these.
STACK_FILES = [ROOT / "Pulumi.dev.yaml", ROOT / "Pulumi.prod.yaml"]
ALLOWED = ("sshAllowedCidrs", "apiAllowedCidrs", "nodePortAllowedCidrs")


def test_the_shipped_dev_stack_does_not_plan_until_told_where_you_connect_from(tmp_path):
    """Straight through the CLI, without the tests' CONNECT_FROM: one line naming the key and
    the command that sets it, exit 2, nothing written."""
    out = tmp_path / "plan"
    result = subprocess.run(
        [sys.executable, "-m", "tools.plan", "--stack", "dev", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: openstack-k8s:sshAllowedCidrs: is required: ")
    assert "pulumi config set --path 'sshAllowedCidrs[0]'" in lines[0]
    assert not out.exists()


def test_the_dev_stack_plans_once_told_and_opens_nothing_to_the_world(plan):
    """The documented way to plan dev (planning.CONNECT_FROM) plans, and SSH and the API are
    open to those addresses only."""
    assert CONNECT_FROM
    p = plan("dev")
    sources = {
        r["inputs"].get("remoteIpPrefix")
        for r in p.of_type("openstack:networking/secGroupRule:SecGroupRule")
    }
    assert "203.0.113.0/24" in sources
    assert "0.0.0.0/0" not in sources


def test_no_shipped_stack_file_opens_anything_to_the_internet():
    for path in STACK_FILES:
        config = yaml.safe_load(path.read_text())["config"]
        for key in ALLOWED:
            for cidr in config.get(f"openstack-k8s:{key}") or []:
                network = ipaddress.ip_network(cidr)
                assert network.prefixlen >= 8, f"{path.name}: {key} lists {cidr}"


def test_the_dev_stack_says_how_to_set_where_you_connect_from():
    """The file a new user edits first explains the refusal they will meet."""
    text = (ROOT / "Pulumi.dev.yaml").read_text()
    for needed in (
        "pulumi config set --stack dev --path 'sshAllowedCidrs[0]'",
        "pulumi config set --stack dev --path 'apiAllowedCidrs[0]'",
    ):
        assert needed in text
    assert "openstack-k8s:sshAllowedCidrs" not in yaml.safe_load(text)["config"]
