"""The resource graph the program hands the engine, read from offline plans made
under the mock engine by the real `python -m tools.plan`."""

from __future__ import annotations

import ipaddress
import json

import pytest

from planning import COMMAND, run_plan

COMPONENT_TYPES = {
    "openstack-k8s:index:Cluster",
    "openstack-k8s:index:PrivateNetwork",
    "openstack-k8s:index:DiscoveryNode",
    "openstack-k8s:index:ControlPlane",
    "openstack-k8s:index:WorkerPool",
}
RULE = "openstack:networking/secGroupRule:SecGroupRule"
SG = "openstack:networking/secGroup:SecGroup"
TWO_POOLS = (
    'workerPools=[{"name":"general","count":2},{"name":"gpu","count":1,"flavor":"g1.large"}]',
)


def test_resource_tree_one_master(plan):
    """The dev stack: one Cluster with its four kinds of component, instances named by role
    and index, every resource parented inside the Cluster."""
    p = plan("dev")
    types = {r["type"] for r in p.resources}
    assert COMPONENT_TYPES <= types
    assert p.instances == [
        "dev-discovery-0",
        "dev-master-0",
        "dev-worker-general-0",
        "dev-worker-general-1",
    ]
    _assert_tree(p)


def test_resource_tree_three_masters_two_pools(plan):
    """Three masters, two pools: instance names carry role, pool and index."""
    p = plan("dev", "masters.count=3", *TWO_POOLS)
    assert p.instances == sorted(
        [
            "dev-discovery-0",
            "dev-master-0",
            "dev-master-1",
            "dev-master-2",
            "dev-worker-general-0",
            "dev-worker-general-1",
            "dev-worker-gpu-0",
        ]
    )
    pools = [r for r in p.resources if r["type"] == "openstack-k8s:index:WorkerPool"]
    assert sorted(r["name"] for r in pools) == ["dev-worker-general", "dev-worker-gpu"]
    assert p.named("dev-worker-gpu-0")["inputs"]["flavorName"] == "g1.large"
    _assert_tree(p)


def _assert_tree(p):
    """Every resource hangs under the Cluster; each child's name starts with its component's."""
    cluster = [r for r in p.resources if r["type"] == "openstack-k8s:index:Cluster"]
    assert len(cluster) == 1
    checked = 0
    for r in p.resources:
        if r is cluster[0]:
            continue
        parent = p.by_urn.get(r["parent"])
        assert parent is not None, f"{r['name']} is not parented inside the program"
        assert r["name"].startswith(parent["name"]), (r["name"], parent["name"])
        node = parent
        while node is not cluster[0]:
            node = p.by_urn[node["parent"]]
        checked += 1
    assert checked == len(p.resources) - 1 > 50


@pytest.mark.parametrize("sets", [("dev",), ("prod",)], ids=["dev", "prod"])
def test_instances_boot_in_parallel(plan, sets):
    """No VM waits for another VM, however indirectly; every VM waits for the router interface."""
    p = plan(*sets)
    instances = p.instances
    assert len(instances) >= 4
    for name in instances:
        waits = p.waits_for(name)
        assert not (waits & set(instances)), f"{name} waits for {waits & set(instances)}"
        assert any(
            p.by_name[w]["type"] == "openstack:networking/routerInterface:RouterInterface"
            for w in waits
        ), name


def test_boot_volume_only_when_sized(plan):
    """prod boots masters and workers from 40 GB Cinder volumes; dev boots from the image."""
    prod, dev = plan("prod"), plan("dev")
    master = prod.named("prod-master-0")["inputs"]
    assert master["blockDevices"][0]["volumeSize"] == 40
    assert master["blockDevices"][0]["destinationType"] == "volume"
    assert master["blockDevices"][0]["sourceType"] == "image"
    assert "imageName" not in master and "imageId" not in master
    discovery = prod.named("prod-discovery-0")["inputs"]
    assert "blockDevices" not in discovery and discovery["imageId"]
    image_id = dev.named("dev-master-0-image")["inputs"]["keepers"]["imageId"]
    for name in dev.instances:
        assert "blockDevices" not in dev.named(name)["inputs"]
        assert "imageName" not in dev.named(name)["inputs"]
        assert dev.named(name)["inputs"]["imageId"] == image_id


def _rules(p):
    """(role, protocol, port range, source) for every ingress rule; source is a CIDR or the
    role whose security group the rule admits (read from the rule's dependencies)."""
    groups = {r["urn"]: r["name"].rsplit("-sg-", 1)[1] for r in p.of_type(SG)}
    out = []
    for r in p.of_type(RULE):
        i = r["inputs"]
        role = r["name"].split("-sg-", 1)[1].split("-", 1)[0]
        source = i.get("remoteIpPrefix")
        if source is None:
            assert i.get("remoteGroupId"), r["name"]
            others = {groups[d] for d in r["dependencies"] if d in groups} - {role}
            assert len(others) <= 1, r["name"]
            source = others.pop() if others else role
        out.append((role, i["protocol"], (i.get("portRangeMin"), i.get("portRangeMax")), source))
    return out


def test_security_groups_least_privilege(plan):
    """Per-role ingress as the issue lists it; etcd, kubelet and SSH never open to the world."""
    p = plan("prod")
    rules = _rules(p)
    assert len(rules) > 20
    by_port = {}
    for role, proto, ports, source in rules:
        by_port.setdefault((role, proto, ports), set()).add(source)
    # the VIP's haproxy listens on 8443 (the public way in); 6443 stays inside the cluster
    assert by_port[("master", "tcp", (8443, 8443))] == {
        "master",
        "worker",
        "192.0.2.0/24",
        "198.51.100.0/24",
    }
    assert by_port[("master", "tcp", (6443, 6443))] == {"master", "worker"}
    assert by_port[("master", "tcp", (2379, 2380))] == {"master"}
    assert by_port[("discovery", "tcp", (2379, 2379))] == {"master", "worker"}
    assert by_port[("discovery", "tcp", (2379, 2380))] == {"discovery"}
    # metrics-server on a worker scrapes every kubelet
    assert by_port[("master", "tcp", (10250, 10250))] == {"master", "worker"}
    assert by_port[("worker", "tcp", (10250, 10250))] == {"master", "worker"}
    for role in ("master", "worker"):
        assert by_port[(role, "udp", (8472, 8472))] == {"master", "worker"}
        assert by_port[(role, "tcp", (22, 22))] == {"discovery"}
    assert by_port[("discovery", "tcp", (22, 22))] == {"192.0.2.0/24"}
    assert by_port[("worker", "tcp", (30000, 32767))] == {"10.20.0.0/22"}
    assert by_port[("master", "112", (None, None))] == {"master"}
    for role, _proto, ports, source in rules:
        lo, hi = ports
        sensitive = lo is not None and any(lo <= port <= hi for port in (22, 2379, 2380, 10250))
        if sensitive and role != "discovery":
            assert source in ("master", "worker", "discovery"), (role, ports, source)
        assert not (sensitive and source == "0.0.0.0/0"), (role, ports, source)


def test_secrets_stay_secret(plan):
    """User-data, join material and the kubeconfig are secrets; no private key is in the plan."""
    p = plan("prod")
    text = (p.dir / "plan.json").read_text()
    assert "PRIVATE KEY" not in text
    for name in p.instances:
        assert p.named(name)["inputs"]["userData"] == "[secret]"
    joins = [r for r in p.of_type(COMMAND) if r["name"].endswith("-join")]
    tokens = [r for r in p.of_type(COMMAND) if r["name"].endswith("-token")]
    assert len(joins) == len(tokens) == 2 + 5
    for r in joins:
        assert r["inputs"]["stdin"] == "[secret]", r["name"]
    for r in tokens:
        assert "stdout" in r["options"]["additionalSecretOutputs"]
        assert r["inputs"]["logging"] == "stderr"
    assert p.named("prod-admin-key")["inputs"].get("algorithm") == "ECDSA"
    assert p.named("prod-master-0-kubeadm-files")["inputs"]["stdin"] == "[secret]"
    assert p.data["outputs"]["kubeconfig"] == "[secret]"
    assert "secret" in p.named("prod-etcd-backup")["options"]["additionalSecretOutputs"]


def test_same_config_same_plan(tmp_path):
    """Planning the same stack twice gives byte-identical files: no clock, no randomness."""
    outs = []
    for i in range(2):
        out = tmp_path / f"p{i}"
        result = run_plan(out, "prod")
        assert result.returncode == 0, result.stderr[-2000:]
        outs.append(out)
    files = sorted(f.relative_to(outs[0]) for f in outs[0].rglob("*") if f.is_file())
    assert len(files) == 1 + 11
    for f in files:
        assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f


def test_adding_a_worker_touches_only_that_worker(plan):
    """One more worker adds its own resources and changes no input of any other resource."""
    before = plan("dev", "masters.count=3", *TWO_POOLS)
    after = plan("dev", "masters.count=3", TWO_POOLS[0].replace('"count":2', '"count":3'))
    added = set(after.by_name) - set(before.by_name)
    assert set(before.by_name) <= set(after.by_name)
    assert added == {
        "dev-worker-general-2",
        "dev-worker-general-2-port",
        "dev-worker-general-2-image",
        "dev-worker-general-2-sshd",
        "dev-worker-general-2-ready",
        "dev-worker-general-2-step-kit",
        "dev-worker-general-2-flannel-renewal",
        "dev-worker-general-2-token",
        "dev-worker-general-2-join",
        "dev-worker-general-2-drain",
        "dev-worker-general-2-network-policy",
    } | {n for n in added if n.startswith("dev-worker-general-2-upgrade")}
    changed = [
        n
        for n, r in before.by_name.items()
        if (r["inputs"], r["dependencies"], r["options"])
        != (
            after.by_name[n]["inputs"],
            after.by_name[n]["dependencies"],
            after.by_name[n]["options"],
        )
    ]
    assert changed == []
    assert len(before.by_name) > 100


def test_outputs(plan):
    """Stack outputs: the secret kubeconfig, the public API endpoint, addresses per role and an
    ssh config reaching every node through the jump host; mock addresses are in the subnet."""
    p = plan("dev", "masters.count=3", *TWO_POOLS)
    out = p.data["outputs"]
    assert out["kubeconfig"] == "[secret]"
    assert out["apiEndpoint"].startswith("https://") and out["apiEndpoint"].endswith(
        ":8443"
    )  # the VIP
    subnet = ipaddress.ip_network("10.10.0.0/22")
    masters = out["masterAddresses"]
    assert len(masters) == 3 and all(ipaddress.ip_address(a) in subnet for a in masters)
    assert sorted(out["workerAddresses"]) == ["general", "gpu"]
    assert len(out["workerAddresses"]["general"]) == 2
    assert ipaddress.ip_address(out["discoveryAddress"]) not in subnet
    ssh = out["sshConfig"]
    for node in p.instances:
        assert f"Host {node}\n" in ssh
    assert ssh.count("ProxyJump dev-jump") == len(p.instances)
    assert (
        len(set(masters + out["workerAddresses"]["general"] + out["workerAddresses"]["gpu"])) == 6
    )


def test_user_data_changes_never_replace_nodes(plan):
    """cloud-init reads user-data once: the engine is told to ignore later changes to it, and
    the image id is the one pinned when the node was made (a re-uploaded image replaces
    nothing), so no running node is replaced by them."""
    p = plan("prod")
    for name in p.instances:
        ignored = p.named(name)["options"]["ignoreChanges"]
        assert "userData" in ignored, name
        assert p.named(f"{name}-image")["options"]["ignoreChanges"] == ["keepers"]
    assert json.loads((p.dir / "plan.json").read_text())["stack"] == "prod"


def test_growing_the_control_plane_replaces_no_master(plan):
    """From 1 to 3 masters behind a VIP: the first master's VM keeps every input the engine
    would act on (its port only gains the VIP as an allowed address)."""
    one = plan("dev", "controlPlane.endpoint=vip")
    three = plan("dev", "controlPlane.endpoint=vip", "masters.count=3")
    assert one.named("dev-master-0")["inputs"] == three.named("dev-master-0")["inputs"]
    assert one.named("dev-master-0")["options"] == three.named("dev-master-0")["options"]
    assert one.named("dev-master-0-init")["inputs"] == three.named("dev-master-0-init")["inputs"]
    assert {"dev-master-1", "dev-master-2"} <= set(three.by_name) - set(one.by_name)


# The same stack file evaluated under each stack name given, in a fresh process (Pulumi's
# runtime is global): every resource by name, with its parent and dependencies by name (URNs
# carry the stack's name), its inputs as the plan shows them and unredacted.
_UNDER_STACK_NAMES = """
import json, sys
from tools import plan as P
from tools.mockengine import evaluate
raw, settings = P.load_stack(sys.argv[1], [])
out = {}
for stack in sys.argv[2:]:
    ev = evaluate(P.engine_config(raw), stack=stack, subnet=str(settings.network.cidr))
    names = {r.urn: r.name for r in ev.registrations}
    out[stack] = {
        r.name: {
            "type": r.type,
            "parent": names.get(r.parent, ""),
            "dependencies": sorted(names[d] for d in r.dependencies),
            "inputs": r.inputs,
            "raw": r.raw_inputs,
            "options": r.options,
        }
        for r in ev.registrations
    }
print(json.dumps(out))
"""
CREDENTIAL = "openstack:identity/applicationCredential:ApplicationCredential"


def test_stack_rename_replaces_nothing():
    """`pulumi stack rename` keeps the state and changes what pulumi.get_stack() says. The
    prod stack (add-ons, two application credentials) evaluated as `prod` and as
    `prod-renamed`: every resource has the same inputs, options and dependencies, the
    Kubernetes provider's clusterIdentifier above all (a changed one replaces the provider
    and so every add-on object, the 19 Calico CRDs among them). The only input that differs
    is the Keystone name of the application credentials, which carries the stack's name to
    keep two stacks of one cluster name apart, and which the engine is told to ignore."""
    import subprocess
    import sys

    from planning import ROOT

    result = subprocess.run(
        [sys.executable, "-c", _UNDER_STACK_NAMES, "prod", "prod", "prod-renamed"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    runs = json.loads(result.stdout)
    before, after = runs["prod"], runs["prod-renamed"]
    assert set(before) == set(after) and len(before) > 200

    provider = before["prod-addons-provider"]
    assert provider["type"] == "pulumi:providers:kubernetes"
    assert provider["raw"]["clusterIdentifier"] == "openstack-k8s/prod"
    addons = {
        n for n, r in before.items() if r["type"].startswith(("kubernetes:", "pulumi:providers:"))
    }
    # The CRDs a provider replacement would take with it are among what is compared.
    crds = [n for n in addons if before[n]["type"].endswith("CustomResourceDefinition")]
    assert len(crds) == 19 and len(addons) > 40

    differ = {}
    for name, r in before.items():
        other = after[name]
        for field in ("type", "parent", "dependencies", "options", "inputs"):
            if r[field] != other[field]:
                differ.setdefault(name, set()).add(field)
        # Unredacted where nothing else varies between two evaluations (a serialised
        # OpenSSH key carries random check bytes): the add-ons' own values, the cloud.conf
        # Secret's credential among them, and the credentials.
        if name in addons or r["type"] == CREDENTIAL:
            changed = {
                k
                for k in set(r["raw"]) | set(other["raw"])
                if r["raw"].get(k) != other["raw"].get(k)
            }
            if changed:
                differ.setdefault(name, set()).update(f"raw.{k}" for k in changed)
    credentials = sorted(n for n, r in before.items() if r["type"] == CREDENTIAL)
    assert credentials == ["prod-addons-openstack", "prod-etcd-backup"]
    assert differ == {n: {"inputs", "raw.name"} for n in credentials}
    for name in credentials:
        assert after[name]["options"]["ignoreChanges"] == ["name"]
        assert before[name]["raw"]["name"] == f"openstack-k8s-prod-{name}"
        assert after[name]["raw"]["name"] == f"openstack-k8s-prod-renamed-{name}"
