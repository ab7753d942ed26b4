"""Config as the Pulumi CLI hands it to the program (no mock engine): the real path."""
from __future__ import annotations

import json
import os
import subprocess
import sys

from planning import ROOT

PROGRAM = """
import pulumi.runtime.settings as runtime
import settings
runtime._set_stack("staging")  # what the language host does from its --stack argument
s = settings.from_pulumi()
print(s.name, s.masters.count, [p.name for p in s.worker_pools], s.external_network)
"""


def test_config_from_the_cli_environment():
    """`pulumi up` passes config as JSON in PULUMI_CONFIG (structured values as JSON text),
    not through the runtime's config bag the mock engine fills: the settings must come from
    there, and the cluster is named after the stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["PULUMI_CONFIG"] = json.dumps({
        "openstack-k8s:externalNetwork": "public",
        "openstack-k8s:image": "debian-12",
        "openstack-k8s:masters": json.dumps({"count": 3}),
        "openstack-k8s:workerPools": json.dumps([{"name": "edge", "count": 1}]),
        "openstack-k8s:sshAllowedCidrs": json.dumps(["192.0.2.0/24"]),
        "openstack:region": "RegionOne",  # another namespace: ignored, not refused
    })
    out = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "staging 3 ['edge'] public"


def test_missing_config_names_the_key():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["PULUMI_CONFIG"] = json.dumps({"openstack-k8s:image": "debian-12"})
    out = subprocess.run([sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0
    assert "openstack-k8s:externalNetwork: is required" in out.stderr
