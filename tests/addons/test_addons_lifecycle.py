"""The add-ons over the cluster's life: a provider that is never replaced under them, and a
destroy that first removes what the cloud controller and Cinder CSI made in the cloud
(master-cleanup-cloud.sh, run against a fake kubectl that keeps state like an API server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from addons.cloud_conf import cloud_conf_sections
from cloud_init import script

PROVIDER = "pulumi:providers:kubernetes"
SCRIPT = "master-cleanup-cloud.sh"


def test_kubernetes_provider_has_a_cluster_identifier(plan):
    """Without one, any kubeconfig change (a renewed admin certificate, an endpoint unknown in
    a preview) replaces the provider and every object it made; creating them again fails
    with AlreadyExists."""
    p = plan("dev")
    (provider,) = [r for r in p.resources if r["type"] == PROVIDER]
    assert provider["inputs"]["clusterIdentifier"] == "openstack-k8s/dev"


def test_cleanup_runs_before_any_add_on_goes(plan):
    """The cleanup is a delete-only command on the first master that depends on every add-on
    object: the engine deletes it (runs it) before the CCM and the CSI driver are gone."""
    p = plan("dev")
    cleanup = p.named("dev-addons-cloud-cleanup")
    assert "create" not in cleanup["inputs"] and "update" not in cleanup["inputs"]
    assert "master-cleanup-cloud" in cleanup["inputs"]["delete"] or cleanup["inputs"][
        "delete"
    ].startswith("echo ")
    objects = {r["name"] for r in p.resources if r["type"].startswith("kubernetes:")}
    assert {"dev-addons-deployment-openstack-cloud-controller-manager"} & objects or any(
        "cloud-controller" in o for o in objects
    )
    assert objects and objects <= p.waits_for("dev-addons-cloud-cleanup")
    # Nothing to clean without the CCM and the CSI driver.
    q = plan("dev", "cloudController.enabled=false", "csi.enabled=false")
    assert "dev-addons-cloud-cleanup" not in q.by_name


def test_ovn_load_balancers_let_the_ccm_manage_node_security_groups():
    base = dict(
        auth={
            "auth_url": "https://k:5000/v3",
            "application_credential_id": "i",
            "application_credential_secret": "s",
        },
        region=None,
        subnet_id="sub",
        floating_network_id="ext",
        lb_enabled=True,
    )
    assert (
        cloud_conf_sections(**base, lb_provider="ovn")["LoadBalancer"]["manage-security-groups"]
        is True
    )
    assert (
        "manage-security-groups"
        not in cloud_conf_sections(**base, lb_provider="amphora")["LoadBalancer"]
    )


# --- master-cleanup-cloud.sh against a stateful fake kubectl --------------------------------

FAKE_KUBECTL = textwrap.dedent('''\
    #!/usr/bin/env python3
    """kubectl, as far as master-cleanup-cloud.sh uses it: state in $FAKE_STATE (JSON)."""
    import json, os, sys
    path = os.environ["FAKE_STATE"]
    state = json.load(open(path))
    argv, args = sys.argv[1:], []
    while argv:
        a = argv.pop(0)
        if a == "--kubeconfig":
            argv.pop(0)
        elif not a.startswith("--request-timeout"):
            args.append(a)
    state["calls"].append(args)
    def save():
        json.dump(state, open(path, "w"))
    if not state["api"]:
        save(); sys.exit(1)
    if args[:2] == ["get", "--raw"]:
        save(); print("ok"); sys.exit(0)
    # Every call lets the controllers make progress: finalizers come off after `lag` calls.
    for kind in ("services", "volumes"):
        for item in state[kind]:
            if item.get("deleting"):
                item["lag"] -= 1
        state[kind] = [i for i in state[kind] if not (i.get("deleting") and i["lag"] <= 0 and not i.get("stuck"))]
    if args[:2] == ["get", "services"]:
        for s in state["services"]:
            if s["type"] == "LoadBalancer":
                print(f"{s['ns']}/{s['name']}")
    elif args[:2] == ["get", "persistentvolumes"]:
        for v in state["volumes"]:
            print(f"{v['name']} {v['policy']}")
    elif args[:2] == ["delete", "service"]:
        ns, name = args[args.index("-n") + 1], args[3] if args[2] == "-n" else args[2]
        for s in state["services"]:
            if s["ns"] == ns and s["name"] in args:
                s["deleting"] = True
    elif args[:2] == ["delete", "persistentvolumeclaims"]:
        for v in state["volumes"]:
            if v["policy"] == "Delete":
                v["deleting"] = True
    save()
''')


@pytest.fixture
def cluster(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.replace("/usr/bin/env python3", sys.executable))
    kubectl.chmod(0o755)
    state = tmp_path / "state.json"

    def run(api=True, services=(), volumes=(), **env):
        state.write_text(
            json.dumps(
                {"api": api, "services": list(services), "volumes": list(volumes), "calls": []}
            )
        )
        result = subprocess.run(
            ["bash", "-s"],
            input=script(SCRIPT),
            capture_output=True,
            text=True,
            timeout=60,
            env={
                "PATH": f"{bin_dir}:{os.environ['PATH']}",
                "FAKE_STATE": str(state),
                "RETRY_DELAY": "0.05",
                "API_TIMEOUT": "0.3",
                "CLEANUP_TIMEOUT": "3",
                "KUBERNETES_DIR": str(tmp_path),
                **env,
            },
        )
        return result, json.loads(state.read_text())

    return run


def _svc(name, type_="LoadBalancer", lag=3, **kw):
    return {"ns": "web", "name": name, "type": type_, "lag": lag, **kw}


def test_cleanup_deletes_load_balancers_and_volumes_and_waits(cluster):
    result, state = cluster(
        services=[_svc("shop"), _svc("api", lag=6), _svc("internal", type_="ClusterIP")],
        volumes=[
            {"name": "pvc-1", "policy": "Delete", "lag": 4},
            {"name": "pvc-kept", "policy": "Retain", "lag": 1},
        ],
    )
    assert result.returncode == 0, result.stderr
    assert [s["name"] for s in state["services"]] == ["internal"]
    assert [v["name"] for v in state["volumes"]] == ["pvc-kept"]
    deletes = [c for c in state["calls"] if c[0] == "delete"]
    assert [c[:2] for c in deletes] == [
        ["delete", "service"],
        ["delete", "service"],
        ["delete", "persistentvolumeclaims"],
    ]
    assert "no LoadBalancer Service" in result.stdout


def test_cleanup_fails_loudly_when_something_stays(cluster):
    result, state = cluster(services=[_svc("shop", stuck=True)], CLEANUP_TIMEOUT="0.5")
    assert result.returncode == 1
    assert "web/shop" in result.stderr and "still there" in result.stderr


def test_cleanup_of_a_cluster_already_gone_does_not_block_destroy(cluster):
    result, state = cluster(api=False, services=[_svc("shop")])
    assert result.returncode == 0
    assert "does not answer" in result.stderr
    assert all(c[:2] == ["get", "--raw"] for c in state["calls"]) and state["calls"]
