"""A Kubernetes version bump as the engine would see it: no VM is replaced, only
the upgrade commands change, and they run in order: first master, the other masters one by
one, then workers in lanes of upgrade.maxUnavailable per pool."""

from __future__ import annotations

from planning import COMMAND

BASE = (
    "masters.count=3",
    'workerPools=[{"name":"general","count":5},{"name":"edge","count":2}]',
    "upgrade.maxUnavailable=2",
)
UPGRADE_SUFFIXES = ("-upgrade", "-upgrade-credential")


def test_version_bump_changes_only_upgrade_commands(plan):
    """Same resources at 1.33.5 and 1.34.1; instances keep their inputs (their user-data does
    change, and is ignored for existing nodes); every changed input belongs to an upgrade
    command or to an in-cluster add-on whose image follows the minor, and every upgrade
    command changes."""
    old = plan("dev", *BASE, "kubernetesVersion=1.33.5")
    new = plan("dev", *BASE, "kubernetesVersion=1.34.1")
    assert set(old.by_name) == set(new.by_name)
    changed = {n for n, r in old.by_name.items() if r["inputs"] != new.by_name[n]["inputs"]}
    upgrades = {
        n for n in old.by_name if n.endswith(UPGRADE_SUFFIXES) and old.by_name[n]["type"] == COMMAND
    }
    assert len(upgrades) == 3 + 1 + 7
    addons = changed - upgrades
    assert upgrades <= changed
    assert addons and all(new.named(n)["type"].startswith("kubernetes:") for n in addons), addons
    assert {"dev-addons-daemonset-openstack-cloud-controller-manager"} <= addons
    for name in old.instances:
        assert "userData" in new.named(name)["options"]["ignoreChanges"]
        assert old.user_data(name) != new.user_data(name) or name.startswith("dev-discovery")
    for name in upgrades - {"dev-master-0-upgrade-credential"}:
        inputs = new.named(name)["inputs"]
        assert "create" not in inputs and "triggers" not in inputs  # triggers would replace it
        assert inputs["update"] == "sudo bash -s  # kubernetes 1.34.1 from pkgs.k8s.io"
        assert (
            old.named(name)["inputs"]["update"]
            == "sudo bash -s  # kubernetes 1.33.5 from pkgs.k8s.io"
        )
    credential = new.named("dev-master-0-upgrade-credential")["inputs"]
    assert "export TARGET_VERSION=1.34.1\n" in credential["stdin"]


def test_upgrade_order(plan):
    """first master -> master 1 -> master 2 -> the upgrade credential -> workers; within a
    pool a worker waits for the worker maxUnavailable places before it, and no other."""
    p = plan("dev", *BASE, "kubernetesVersion=1.34.1")
    assert "dev-master-0-init" in p.waits_for("dev-master-0-upgrade")
    assert "dev-master-0-upgrade" in p.waits_for("dev-master-1-upgrade")
    assert {"dev-master-1-upgrade", "dev-master-2-join"} <= p.waits_for("dev-master-2-upgrade")
    assert "dev-master-0-init" in p.waits_for("dev-master-0-upgrade-credential")
    checked = 0
    for pool, count in (("general", 5), ("edge", 2)):
        for i in range(count):
            node = f"dev-worker-{pool}-{i}"
            waits = p.waits_for(f"{node}-upgrade")
            assert {
                "dev-master-2-upgrade",
                "dev-master-0-upgrade-credential",
                f"{node}-join",
            } <= waits
            lane = {f"dev-worker-{pool}-{j}-upgrade" for j in range(i % 2, i, 2)}
            other_lane = {f"dev-worker-{pool}-{j}-upgrade" for j in range((i + 1) % 2, count, 2)}
            later = {f"dev-worker-{pool}-{j}-upgrade" for j in range(i, count)}
            assert lane <= waits
            assert not other_lane & waits, f"{node} waits for a worker of another lane"
            assert not later & waits
            checked += 1
    assert checked == 7


def test_upgrade_commands_reach_the_right_nodes(plan):
    """Masters upgrade on themselves; a worker upgrades on itself with the node-upgrader token
    made on the first master, running upgrade-worker.sh and its three step scripts from the
    step kit installed on it (its -step-kit command)."""
    import base64
    import gzip
    import io
    import re
    import tarfile

    p = plan("dev", *BASE)
    names = [
        "dev-worker-edge-1-upgrade",
        "dev-worker-edge-1-step-kit",
        "dev-master-1-upgrade",
        "dev-master-1-step-kit",
        "dev-master-0-upgrade-credential",
    ]
    raw = p.raw(names)
    master0 = p.data["outputs"]["masterAddresses"][0]
    worker = raw["dev-worker-edge-1-upgrade"]
    assert worker["connection"]["host"] == p.data["outputs"]["workerAddresses"]["edge"][1]
    assert raw["dev-master-0-upgrade-credential"]["connection"]["host"] == master0
    stdin = worker["stdin"]
    assert re.search(r"^export KUBE_TOKEN=\S+$", stdin, re.M)
    # Three masters behind the VIP: haproxy's port.
    assert re.search(r"^export KUBE_API=https://10\.[0-9.]+:8443$", stdin, re.M)
    assert "exec bash /usr/local/lib/openstack-k8s/steps/upgrade-worker.sh" in stdin
    assert "UPGRADE_CORDON_B64" not in stdin and "#!/usr/bin/env bash" not in stdin

    def kit(ready: str) -> dict[str, str]:
        b64 = re.search(r"^export STEP_KIT_TAR_B64=(\S+)$", raw[ready]["stdin"], re.M)
        data = gzip.decompress(base64.b64decode(b64.group(1).strip("'")))
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            return {m.name: tar.extractfile(m).read().decode() for m in tar.getmembers()}

    on_worker = kit("dev-worker-edge-1-step-kit")
    for step in ("upgrade-worker", "upgrade-cordon", "upgrade-node", "upgrade-uncordon"):
        assert on_worker[f"{step}.sh"].startswith("#!/usr/bin/env bash"), step
    assert "export ROLE=master\n" in raw["dev-master-1-upgrade"]["stdin"]
    assert "steps/upgrade-node.sh" in raw["dev-master-1-upgrade"]["stdin"]
    assert "kubeadm upgrade" in kit("dev-master-1-step-kit")["upgrade-node.sh"]


WORKLOADS = ("kubernetes:apps/v1:DaemonSet", "kubernetes:apps/v1:Deployment")


def test_control_plane_then_add_ons_then_workers(plan):
    """Kubernetes' version-skew policy: no component newer than the API server it talks to,
    kubelets never newer than the API server. On the recorded graph: every add-on object
    (the cloud controller, Cinder CSI, metrics-server, Calico, and everything they need)
    waits for the last master's upgrade, hence for every master's; every worker's upgrade
    waits for every add-on workload (its pods run the images pinned per minor); and nothing
    waits the other way round."""
    p = plan("dev", *BASE, "kubernetesVersion=1.34.1")
    masters = [f"dev-master-{i}-upgrade" for i in range(3)]
    workers = [f"dev-worker-general-{i}-upgrade" for i in range(5)] + [
        f"dev-worker-edge-{i}-upgrade" for i in range(2)
    ]
    objects = [r["name"] for r in p.resources if r["type"].startswith("kubernetes:")]
    workloads = [r["name"] for r in p.resources if r["type"] in WORKLOADS]
    assert len(objects) > 40
    assert {
        "dev-addons-daemonset-openstack-cloud-controller-manager",
        "dev-addons-daemonset-csi-cinder-nodeplugin",
        "dev-addons-deployment-csi-cinder-controllerplugin",
        "dev-addons-deployment-metrics-server",
        "dev-addons-daemonset-calico-node",
    } == set(workloads)
    for name in objects:
        waits = p.waits_for(name)
        assert set(masters) <= waits, name
        assert not waits & set(workers), name
    for name in masters:
        assert not p.waits_for(name) & set(objects), name
    for name in workers:
        assert set(workloads) <= p.waits_for(name), name
    # One edge per lane: the first worker of each lane (2 lanes per pool) waits for the
    # add-ons itself, the others through the worker before them.
    direct = {
        name
        for name in workers
        if {p.by_urn[u]["name"] for u in p.named(name)["dependencies"]} & set(workloads)
    }
    assert direct == {
        "dev-worker-general-0-upgrade",
        "dev-worker-general-1-upgrade",
        "dev-worker-edge-0-upgrade",
        "dev-worker-edge-1-upgrade",
    }


def test_without_add_ons_workers_follow_the_control_plane(plan):
    """No add-on at all: workers still upgrade after the last master, and nothing else."""
    p = plan(
        "dev",
        *BASE,
        "cloudController.enabled=false",
        "csi.enabled=false",
        "metricsServer.enabled=false",
        "networkPolicy.enabled=false",
    )
    assert not [r for r in p.resources if r["type"].startswith("kubernetes:")]
    for i in range(5):
        assert "dev-master-2-upgrade" in p.waits_for(f"dev-worker-general-{i}-upgrade")


def _diff(old_dir, new_dir) -> str:
    import subprocess
    import sys

    from planning import ROOT

    result = subprocess.run(
        [sys.executable, "-m", "tools.plan", "--diff", str(old_dir), str(new_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    return result.stdout


def _box(out: str, title: str) -> list[str]:
    """The lines of the warning or note box with this title."""
    assert f"This change **{title}**:" in out, out[:3000]
    box = out.split(f"This change **{title}**:\n", 1)[1].split("\n\n", 1)[0]
    return [line.removeprefix("> - ") for line in box.splitlines()]


def test_the_plan_diff_lists_the_upgrade_order(plan):
    """The diff a pull request gets for a version bump says the order the graph gives: the
    masters one by one, then the add-ons whose images follow the minor, then the workers;
    and nothing is out of that order."""
    old = plan("dev", *BASE, "kubernetesVersion=1.33.5")
    new = plan("dev", *BASE, "kubernetesVersion=1.34.1")
    out = _diff(old.dir, new.dir)
    masters, addons, workers = _box(out, "upgrades Kubernetes in this order")
    assert masters == (
        "the control plane, one master after another: `dev-master-0-upgrade` → "
        "`dev-master-1-upgrade` → `dev-master-2-upgrade` (`kubernetes 1.34.1 from pkgs.k8s.io`)"
    )
    assert addons.startswith("then the add-ons (5 objects), once every master runs the new")
    assert "`dev-addons-daemonset-openstack-cloud-controller-manager`" in addons
    assert "`dev-addons-daemonset-calico-node`" in addons
    assert workers == (
        "then the workers (7), after the add-ons rolled out, `upgrade.maxUnavailable` at a "
        "time in each pool"
    )
    assert "out of the version-skew order" not in out
    assert out.index("upgrades Kubernetes in this order") < out.index(" to add, ")


def test_the_plan_diff_names_what_runs_out_of_order(plan, tmp_path):
    """The same bump, with the graph as it was before add-ons waited for the masters (they
    waited for kubeadm init only) and workers for the add-ons: a warning names each step
    the graph lets run out of the version-skew order."""
    import json
    import shutil

    old = plan("dev", *BASE, "kubernetesVersion=1.33.5")
    new = plan("dev", *BASE, "kubernetesVersion=1.34.1")
    loose = tmp_path / "loose"
    shutil.copytree(new.dir, loose)
    data = json.loads((loose / "plan.json").read_text())
    by_name = {r["name"]: r for r in data["resources"]}
    init, last = by_name["dev-master-0-init"]["urn"], by_name["dev-master-2-upgrade"]["urn"]
    addons = {r["urn"] for r in data["resources"] if r["type"].startswith("kubernetes:")}
    for r in data["resources"]:
        if r["urn"] in addons:
            r["dependencies"] = [init if d == last else d for d in r["dependencies"]]
        elif r["name"].startswith("dev-worker-"):
            r["dependencies"] = [d for d in r["dependencies"] if d not in addons]
    (loose / "plan.json").write_text(json.dumps(data))
    out = _diff(old.dir, loose)
    lines = _box(out, "upgrades out of the version-skew order")
    assert (
        "`dev-addons-daemonset-openstack-cloud-controller-manager` does not wait for every "
        "master's upgrade: it may roll out beside `kubeadm upgrade`, newer than an API server"
    ) in lines
    assert (
        "`dev-worker-general-0-upgrade` does not wait for "
        "`dev-addons-daemonset-calico-node`: the worker may upgrade before the add-on rolled out"
    ) in lines
    # Five changed add-on objects early, seven workers before each of the four changed
    # workloads (metrics-server keeps its image from 1.33 to 1.34).
    assert len(lines) == 5 + 7 * 4
    assert out.index("out of the version-skew order") < out.index(" to add, ")
