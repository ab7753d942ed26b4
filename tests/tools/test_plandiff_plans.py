"""`python -m tools.plan --diff` on real offline plans of the dev stack: one more worker and a
Kubernetes version bump (calm), and the changes that can break a running cluster (loud,
first): a moving API endpoint, a renamed pool, a new pod network."""

from __future__ import annotations

import json
import subprocess
import sys

from planning import ROOT, Plan, run_plan

CALM = (
    "No resource is replaced or rebuilt, no instance is deleted, and the API endpoint "
    "stays where it is."
)


def diff(old, new) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.plan", "--diff", str(old.dir), str(new.dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_one_more_worker(plan):
    """Exactly the new worker's resources are added; nothing changes, nothing is replaced."""
    result = diff(plan("dev"), plan("dev", "workerPools[0].count=3"))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "0 to remove, 0 to change (0 replaced)" in out
    assert CALM in out
    rows = [line for line in out.splitlines() if line.startswith("| `")]
    assert all("dev-worker-general-2" in row for row in rows)
    names = {row.split("`")[3] for row in rows}
    assert {
        "dev-worker-general-2",
        "dev-worker-general-2-port",
        "dev-worker-general-2-join",
    } <= names
    assert f"**{len(rows)} to add" in out


def test_version_bump(plan):
    """No VM replaced; user-data changes shown as ignored; upgrade commands run again."""
    result = diff(plan("dev"), plan("dev", "kubernetesVersion=1.34.1"))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "0 to add, 0 to remove" in out and "(0 replaced)" in out
    assert CALM in out
    assert "3 with ignored changes" in out
    for node in (
        "dev-master-0-upgrade",
        "dev-worker-general-0-upgrade",
        "dev-worker-general-1-upgrade",
    ):
        assert node in out
    assert "kubernetes 1.34.1 from pkgs.k8s.io" in out
    assert "1.33.5" in out and "1.34.1" in out  # the user-data diff shows the version moving


def test_identical_plans(plan):
    p = plan("dev")
    result = diff(p, p)
    assert result.returncode == 0 and "No changes" in result.stdout


def first_box(out: str) -> str:
    """The first warning box, which must come before the counts."""
    assert "> [!WARNING]" in out, out[:2000]
    assert out.index("> [!WARNING]") < out.index(" to add, ")
    box = out.split("> [!WARNING]\n", 1)[1]
    return "".join(line + "\n" for line in box.splitlines() if line.startswith("> ")) if box else ""


def test_three_masters_without_an_endpoint_move_the_api(plan):
    """1 -> 3 masters with controlPlane.endpoint unset: the API goes from the master's 6443
    to the VIP's 8443, which a running cluster cannot follow."""
    result = diff(plan("dev"), plan("dev", "masters.count=3"))
    assert result.returncode == 1, result.stderr
    box = first_box(result.stdout)
    assert box.startswith("> This change **moves the API endpoint**")
    assert ':6443"` → `"https://' in box and ':8443"`' in box
    assert "adds Port `dev-master-vip`" in box
    assert CALM not in result.stdout


def test_vip_to_octavia_removes_the_vip(plan):
    three = ("masters.count=3",)
    result = diff(
        plan("dev", *three, "controlPlane.endpoint=vip"),
        plan("dev", *three, "controlPlane.endpoint=octavia"),
    )
    assert result.returncode == 1, result.stderr
    box = first_box(result.stdout)
    assert "moves the API endpoint" in box
    assert "removes Port `dev-master-vip`" in box and "adds LoadBalancer `dev-master-lb`" in box


def test_a_renamed_pool_deletes_its_instances(plan):
    result = diff(plan("dev"), plan("dev", "workerPools[0].name=web"))
    assert result.returncode == 1, result.stderr
    assert first_box(result.stdout) == (
        "> This change **deletes 2 instances**:\n"
        "> - 2 × Instance in WorkerPool `dev-worker-general`: dev-worker-general-0, dev-worker-general-1\n"
    )


def test_a_new_pod_network_is_warned_of(plan):
    result = diff(plan("dev"), plan("dev", "podCidr=10.200.0.0/16"))
    assert result.returncode == 1, result.stderr
    box = first_box(result.stdout)
    assert box.startswith("> This change **changes what a running cluster cannot change**")
    assert '`podCidr`: `"10.244.0.0/16"` → `"10.200.0.0/16"`' in box


def test_api_server_settings_reconfigure_running_masters(plan):
    """An API server setting (here OIDC sign-in and the audit log's age) changes no VM: the
    diff says which masters are reconfigured, by which commands, from what to what, in the
    clear although the files travel in a secret."""
    oidc = 'apiServer.oidc={"issuerUrl":"https://id.example.org/k8s","clientId":"k8s"}'
    result = diff(
        plan("dev", "masters.count=3"),
        plan("dev", "masters.count=3", oidc, "apiServer.audit.maxAgeDays=90"),
    )
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "> [!NOTE]\n> This change **reconfigures 3 masters**:" in out
    assert out.index("reconfigures 3 masters") < out.index(" to add, ")
    note = out.split("> [!NOTE]\n", 1)[1].split("\n\n", 1)[0]
    assert (
        "audit" in note
        and "30d, oidc off` → `" in note
        and "90d, oidc https://id.example.org/k8s`" in note
    )
    assert "`dev-master-0-apiserver`, `dev-master-1-apiserver`, `dev-master-2-apiserver`" in note
    assert CALM in out


def test_a_new_worker_reconfigures_no_master(plan):
    result = diff(plan("dev"), plan("dev", "workerPools[0].count=3"))
    assert result.returncode == 1 and "[!NOTE]" not in result.stdout


def test_a_key_rotation_is_announced_in_its_order(plan):
    """Raising keyGeneration adds the rotation's commands: the note lists them in the order
    they run (add, promote on every master, one rewrite, drop), before the counts."""
    result = diff(
        plan("dev", "masters.count=3"),
        plan("dev", "masters.count=3", "apiServer.encryption.keyGeneration=2"),
    )
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "This change **rotates the Secrets encryption key on 3 masters**" in out
    note = out.split("rotates the Secrets encryption key", 1)[1].split("\n\n", 1)[0]
    names = [line.split("`")[1] for line in note.splitlines() if line.startswith("> - `")]
    phases = [n.rsplit("-", 2)[1] for n in names]
    assert phases == ["add"] * 3 + ["promote"] * 3 + ["rewrite"] + ["drop"] * 3
    assert "drop key1" in note and out.index("rotates the Secrets") < out.index(" to add, ")
    assert CALM in out


def test_a_longer_drain_runs_nothing_now(plan):
    """timeouts.drain is read by the drain command's delete step only: nothing runs on the
    workers today, and the diff must not say a command runs again."""
    result = diff(plan("dev"), plan("dev", "timeouts.drain=900"))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert (
        "#### 2 × `Command` `dev-worker-general-0-drain`, `dev-worker-general-1-drain`: "
        "update in place: nothing runs now, only what runs at delete changes"
    ) in out
    assert "runs again" not in out and CALM in out


def plan_over(tmp_path, old, *sets: str) -> Plan:
    """The dev stack with sets, planned over `old` as the engine over its state."""
    out = tmp_path / "new"
    result = run_plan(out, "dev", sets, previous=old.dir)
    assert result.returncode == 0, result.stderr[-3000:]
    return Plan.load(out, sets)


def test_a_new_image_rebuilds_nothing_the_pin_keeps(plan, tmp_path):
    """Each node keeps the image id it was created from (`<node>-image`, ignoreChanges on its
    keepers): a new `image` changes no running VM, only what new nodes boot. Planned apart,
    the mock gave the pins' outputs the new id and the diff claimed 4 rebuilds."""
    old = plan("dev")
    new = plan_over(tmp_path, old, "image=ubuntu-26.04")
    result = diff(old, new)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert "[!WARNING]" not in out and "rebuild" not in out and CALM in out
    assert "0 to change (0 replaced), 4 with ignored changes" in out
    assert "#### 4 × `RandomId` `dev-discovery-0-image`, `dev-master-0-image`" in out
    for node in new.instances:
        assert new.named(node)["inputs"]["imageId"] == old.named(node)["inputs"]["imageId"]
    assert "not planned over the old one" not in out


def test_a_new_network_range_is_no_change_a_cluster_survives(plan, tmp_path):
    """network.cidr replaces the subnet: a replacement is a new subnet (a new id), so every
    port moves to it (a new address), the router interface is replaced too, and the box
    says no running cluster survives it. Planned apart, ids came from names and no port
    changed."""
    old = plan("dev")
    new = plan_over(tmp_path, old, "network.cidr=10.20.0.0/22")
    result = diff(old, new)
    assert result.returncode == 1, result.stderr
    out = result.stdout
    box = first_box(out)
    assert box.startswith("> This change **changes what a running cluster cannot change**")
    assert '`networkCidr`: `"10.10.0.0/22"` → `"10.20.0.0/22"`: no running cluster survives' in box
    replaced = out.split("This change **replaces ", 1)[1].split("\n\n", 1)[0]
    assert "Subnet in PrivateNetwork `dev-network`: dev-network-subnet" in replaced
    assert "RouterInterface in PrivateNetwork `dev-network`: dev-network-router-interface" in (
        replaced
    )
    subnet_id = new.named("dev-network-subnet")["id"]
    assert subnet_id != old.named("dev-network-subnet")["id"]
    ports = [r for r in new.of_type("openstack:networking/port:Port")]
    assert len(ports) == 4
    for port in ports:
        assert port["inputs"]["fixedIps"][0]["subnetId"] == subnet_id
        assert port["id"] == old.named(port["name"])["id"]  # updated in place, kept
    assert (
        "#### 4 × `Port` `dev-discovery-0-port`, `dev-master-0-port`, "
        "`dev-worker-general-0-port`, `dev-worker-general-1-port`: update in place"
    ) in out
    addresses = [new.data["outputs"]["masterAddresses"], old.data["outputs"]["masterAddresses"]]
    assert addresses[0] != addresses[1] and all(a.startswith("10.20.") for a in addresses[0])


def test_plans_made_apart_say_what_they_cannot_show(plan):
    result = diff(plan("dev"), plan("dev", "workerPools[0].count=3"))
    assert result.returncode == 1 and "not planned over the old one" in result.stdout


def test_preview_json_is_the_engines_step_per_resource(plan, tmp_path):
    """--previous writes preview.json beside plan.json: a step per resource in the fields of
    `pulumi preview --json`; a replaced resource, and only one, has a new id."""
    old = plan("dev")
    result = run_plan(tmp_path / "new", "dev", ("network.cidr=10.20.0.0/22",), old.dir)
    assert result.returncode == 0, result.stderr
    new = Plan.load(tmp_path / "new")
    preview = json.loads((new.dir / "preview.json").read_text())
    steps = {s["urn"]: s for s in preview["steps"]}
    assert len(steps) == len(preview["steps"]) == len(new.resources) + 1 + 1  # stack, delete
    assert preview["changeSummary"] == {
        "create": 1,
        "delete": 1,
        "replace": 4,
        "same": len(new.resources) - 1 - 4 - 4 + 1,  # and the stack
        "update": 4,
    }
    assert "(1 create, 1 delete, 4 replace, 170 same, 4 update)" in result.stdout
    subnet = steps[new.named("dev-network-subnet")["urn"]]
    assert subnet["op"] == "replace" and subnet["replaceReasons"] == ["cidr"]
    assert subnet["detailedDiff"] == {"cidr": {"kind": "update-replace", "inputDiff": True}}
    assert subnet["oldState"]["inputs"]["cidr"] == "10.10.0.0/22"
    assert subnet["newState"]["inputs"]["cidr"] == "10.20.0.0/22"
    port = steps[new.named("dev-master-0-port")["urn"]]
    assert (port["op"], port["diffReasons"]) == ("update", ["fixedIps"])
    assert port["newState"]["id"] == port["oldState"]["id"]
    gone = [s for s in preview["steps"] if s["op"] == "delete"]
    assert [s["urn"].rsplit("::", 1)[1] for s in gone] == [
        "dev-network-sg-worker-tcp-30000-32767-from-10.10.0.0-22"
    ]
    assert "newState" not in gone[0] and gone[0]["oldState"]["type"].endswith("SecGroupRule")
    # The mock's ids agree with the steps: new exactly where the engine replaces.
    for r in new.resources:
        if r.get("custom") and r["urn"] in old.by_urn:
            replaced = r["id"] != old.by_urn[r["urn"]]["id"]
            assert replaced == (steps[r["urn"]]["op"] == "replace"), r["name"]
