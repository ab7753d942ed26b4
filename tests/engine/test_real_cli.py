"""The real Pulumi CLI (tools/real-engine.sh) runs this project with our language host, the bridged
OpenStack provider and the stand-ins, with no cloud: bad config is refused in one line before
anything registers; the bridge plans resources without credentials (it authenticates lazily); and
a preview of a whole stack stops at its first data source when the OpenStack API is not there."""

from __future__ import annotations

import socket
import textwrap

import pytest
from planning import with_access
from real import CLUSTER_SIDE, PROJECT, Stack, error_diagnostics, steps

pytestmark = pytest.mark.engine

STACK_URN = f"urn:pulumi:dev::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-dev"


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that refuses connections: bound, never listening, held for the test."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def closed_cloud(port: int) -> dict[str, str]:
    """OS_* variables of an OpenStack whose Keystone is a closed port."""
    return {
        "OS_AUTH_URL": f"http://127.0.0.1:{port}/v3",
        "OS_USERNAME": "nobody",
        "OS_PASSWORD": "nothing",
        "OS_PROJECT_NAME": "none",
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": "RegionOne",
    }


@pytest.mark.parametrize(
    ("sets", "key", "reason"),
    [
        (("masters.count=2",), "masters.count", "must be odd"),
        (('clusterName=" "',), "clusterName", "must be a DNS label"),
        # Given in the stack file, not with --secret: the host must say which keys are secret.
        (
            (
                "openstack.applicationCredential=given",
                "openstack.applicationCredentialId=ci",
                "openstack.applicationCredentialSecret=s3cret",
            ),
            "openstack.applicationCredentialSecret",
            "is a secret in plain text",
        ),
    ],
    ids=["even-masters", "blank-cluster-name", "plain-text-secret"],
)
def test_bad_config_is_one_error_line_naming_the_key_and_nothing_registers(
    engine, tmp_path, closed_port, sets, key, reason
):
    stack = Stack.from_stack_file(
        engine, tmp_path, "dev", with_access("dev", sets), env=closed_cloud(closed_port)
    )
    stack.init()
    res = stack.preview()
    assert res.returncode != 0, res.describe()
    doc = res.json()
    errors = error_diagnostics(doc)
    assert len(errors) == 1, res.describe()
    line = errors[0].removeprefix("error: ")
    assert "\n" not in line and line.startswith(f"{PROJECT}:{key}: ") and reason in line, line
    assert "Traceback" not in res.stdout + res.stderr
    # Only the stack itself: the program stopped before its first resource.
    assert list(steps(doc)) == [STACK_URN]


def test_a_blank_cluster_name_in_the_human_output_too(engine, tmp_path, closed_port):
    """Without --json, the user sees the line (once, in the diagnostics) and no traceback."""
    stack = Stack.from_stack_file(
        engine,
        tmp_path,
        "dev",
        with_access("dev", ('clusterName=""',)),
        env=closed_cloud(closed_port),
    )
    stack.init()
    res = stack.preview(json_output=False)
    out = res.stdout + res.stderr
    assert res.returncode != 0 and "Traceback" not in out, res.describe()
    diagnostics = out.split("Diagnostics:", 1)[1]
    assert diagnostics.count(f"error: {PROJECT}:clusterName: ") == 1, out


PROBE = """\
import pulumi_openstack as openstack

net = openstack.networking.Network("probe-net", name="probe-net", admin_state_up=True)
openstack.networking.SecGroup("probe-sg", name="probe-sg", description="engine probe")
openstack.networking.Subnet("probe-subnet", network_id=net.id, cidr="10.99.0.0/24")
"""


def test_the_bridge_plans_without_credentials(engine, tmp_path, closed_port):
    """A program of OpenStack resources only (no data source): the bridged provider checks and
    plans them with its Keystone a closed port, as the real one does (no call before `up`)."""
    project = tmp_path / "probe"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: probe\nruntime: python\n")
    (project / "__main__.py").write_text(PROBE)
    # A `tools` package of the project's own, as ours has: the language host and stand-ins
    # start in the project directory and must still find their own code, not the project's.
    (project / "tools").mkdir()
    (project / "tools" / "__init__.py").write_text("")
    stack = Stack(
        engine, tmp_path / "work", "probe", {}, closed_cloud(closed_port), project_dir=project
    )
    stack.init()
    res = stack.preview()
    assert res.ok, res.describe()
    by_type = {s["newState"]["type"]: s for s in res.json()["steps"]}
    # The default provider is not a step of its own; each resource names it, at the SDK's version.
    assert {t: s["op"] for t, s in by_type.items()} == {
        "pulumi:pulumi:Stack": "create",
        "openstack:networking/network:Network": "create",
        "openstack:networking/secGroup:SecGroup": "create",
        "openstack:networking/subnet:Subnet": "create",
    }
    for t, s in by_type.items():
        if t.startswith("openstack:"):
            provider = s["newState"]["provider"]
            assert provider.startswith(
                "urn:pulumi:probe::probe::pulumi:providers:openstack::default_5_5_3::"
            )
    # Check ran in the provider: the inputs carry its defaults (ipVersion) next to ours.
    subnet = by_type["openstack:networking/subnet:Subnet"]["newState"]["inputs"]
    assert subnet["cidr"] == "10.99.0.0/24" and subnet["ipVersion"] == 4, subnet
    assert "ipVersion" in subnet["__defaults"]
    secgroup = by_type["openstack:networking/secGroup:SecGroup"]["newState"]["inputs"]
    assert secgroup["description"] == "engine probe"


def test_a_stack_preview_needs_the_openstack_api(engine, tmp_path, closed_port):
    """What a preview of the dev stack does with the OpenStack API unreachable: the program
    awaits data sources (the external network, the image, the auth scope) that only a live
    API answers, so the preview fails on the first with the refused address; nothing else
    is wrong with it. The cloud tier previews against the local OpenStack."""
    stack = Stack.from_stack_file(
        engine, tmp_path, "dev", with_access("dev"), env=closed_cloud(closed_port)
    )
    stack.init()
    res = stack.preview()
    assert res.returncode != 0, res.describe()
    errors = "\n".join(error_diagnostics(res.json()))
    data_sources = [
        "openstack:networking/getNetwork:getNetwork",
        "openstack:images/getImage:getImage",
        "openstack:identity/getAuthScope:getAuthScope",
    ]
    assert any(f"invoke of {tok} failed" in errors for tok in data_sources), errors
    assert f"127.0.0.1:{closed_port}" in errors and "connection refused" in errors, errors
    # A preview writes no state: the stack still has no resources.
    assert stack.export()["deployment"].get("resources") in (None, [])


def test_the_harness_writes_config_outside_the_checkout(engine, tmp_path):
    stack = Stack.from_stack_file(
        engine, tmp_path, "prod", ["masters.count=5", "workerPools[1].count=4"]
    )
    stack.write_config()
    written = stack.config_file.read_text()
    assert stack.config_file.parent == tmp_path
    assert f"{PROJECT}:masters:\n    count: 5\n" in written and "count: 4" in written
    assert stack.config[f"{PROJECT}:workerPools"][1]["name"] == "gateway"
    stack.set("kubernetesVersion=1.33.6")
    assert f"{PROJECT}:kubernetesVersion: 1.33.6" in textwrap.dedent(stack.config_file.read_text())


LOCAL_ONLY = """\
import pulumi
import pulumi_command as command
import pulumi_random as random
import pulumi_tls as tls

key = tls.PrivateKey("key", algorithm="ED25519")
suffix = random.RandomId("suffix", byte_length=4)
# A remote command needs a host: excluded (CLUSTER_SIDE), and its dependent with it.
cmd = command.remote.Command(
    "cmd", connection=command.remote.ConnectionArgs(host="192.0.2.1"), create="true"
)
random.RandomId("after-cmd", byte_length=2, opts=pulumi.ResourceOptions(depends_on=[cmd]))
pulumi.export("suffix", suffix.hex)
pulumi.export("publicKey", key.public_key_openssh)
"""


def test_up_preview_refresh_destroy_through_the_harness(engine, tmp_path):
    """The harness's life cycle on a program without cloud resources (the tls and random
    stand-ins make real values): `up` with CLUSTER_SIDE leaves the command and its dependent
    out, then nothing changes and nothing drifts, and `destroy` empties the state."""
    project = tmp_path / "local"
    project.mkdir()
    (project / "Pulumi.yaml").write_text("name: local\nruntime: python\n")
    (project / "__main__.py").write_text(LOCAL_ONLY)
    stack = Stack(engine, tmp_path / "work", "local", {}, project_dir=project)
    stack.init()
    stack.up(exclude=CLUSTER_SIDE)
    state = stack.export()["deployment"]["resources"]
    names = sorted(
        r["urn"].rsplit("::", 1)[1] for r in state if not r["type"].startswith("pulumi:")
    )
    assert names == ["key", "suffix"]
    outputs = next(r for r in state if r["type"] == "pulumi:pulumi:Stack")["outputs"]
    assert len(outputs["suffix"]) == 8 and outputs["publicKey"].startswith("ssh-ed25519 ")

    again = stack.preview(exclude=CLUSTER_SIDE, expect_no_changes=True)
    assert again.ok, again.describe()
    assert {s["op"] for s in again.json()["steps"]} == {"same"}
    stack.refresh(exclude=CLUSTER_SIDE, expect_no_changes=True)

    stack.destroy()
    assert stack.export()["deployment"].get("resources") in (None, [])
