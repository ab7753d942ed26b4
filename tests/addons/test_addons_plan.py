"""The in-cluster add-ons as the engine would receive them (issue 8): they wait for the first
master's init, talk to the cluster through a provider built from the kubeconfig output,
cloud.conf only ever travels as a secret, and each feature switch removes exactly its own."""

from __future__ import annotations

import pytest

K8S_PROVIDER = "pulumi:providers:kubernetes"


def _addons(p):
    return {r["name"]: r for r in p.resources if r["type"].startswith("kubernetes:")}


def test_addons_wait_for_init_and_use_the_kubeconfig(plan):
    p = plan("dev")
    addons = _addons(p)
    assert len(addons) > 20
    providers = p.of_type(K8S_PROVIDER)
    assert len(providers) == 1
    provider = providers[0]
    assert provider["inputs"]["kubeconfig"] == "[secret]"
    # the kubeconfig is the program's own: its admin certificate, signed by the cluster CA
    assert {"dev-admin-cert", "dev-ca-cert"} <= p.waits_for(provider["name"])
    for name, r in addons.items():
        assert "dev-master-0-init" in p.waits_for(name), name
        assert r["parent"] == p.named("dev-addons")["urn"]


def test_cloud_conf_is_only_a_secret(plan):
    p = plan("dev")
    secret = (
        p.named("dev-addons-secret-kube-system-cloud-config")
        if "dev-addons-secret-kube-system-cloud-config" in p.by_name
        else next(r for r in p.resources if r["type"] == "kubernetes:core/v1:Secret")
    )
    assert secret["inputs"]["stringData"] == "[secret]"
    text = (p.dir / "plan.json").read_text()
    assert "application-credential-secret" not in text
    assert "[Global]" not in text
    credential = [
        r
        for r in p.resources
        if r["type"] == "openstack:identity/applicationCredential:ApplicationCredential"
    ]
    assert [r["name"] for r in credential] == ["dev-addons-openstack"]


@pytest.mark.parametrize(
    "feature,label",
    [
        ("cloudController.enabled", "cloud-controller"),
        ("csi.enabled", "cinder-csi"),
        ("metricsServer.enabled", "metrics-server"),
        ("networkPolicy.enabled", "network-policy"),
    ],
)
def test_turning_a_feature_off_removes_exactly_its_resources(plan, feature, label):
    """Exactly the objects labelled with the feature go; nothing else in the cluster's
    resources changes, except the kubelet flag that follows the cloud controller and the node
    commands that follow network policy (tests/components/test_network_policy_nodes.py)."""
    from addons.manifests import ADDON_LABEL

    on, off = plan("dev"), plan("dev", f"{feature}=false")
    removed = set(on.by_name) - set(off.by_name)
    assert not set(off.by_name) - set(on.by_name)
    labelled = {
        n
        for n, r in _addons(on).items()
        if (r["inputs"].get("metadata") or {}).get("labels", {}).get(ADDON_LABEL) == label
    }
    assert labelled, label
    assert labelled <= removed
    # only the cloud.conf Secret (and its credential) may go with them, once nothing needs it
    assert not {n for n in removed - labelled if "cloud-config" not in n}, removed - labelled
    follows_cloud = feature == "cloudController.enabled"
    for name, r in off.by_name.items():
        if r["type"].startswith("kubernetes:") and name != "dev-addons-provider":
            continue
        if follows_cloud and r["type"] == "command:remote:Command":
            continue  # join and init configs carry the kubelet's --cloud-provider flag
        if feature == "networkPolicy.enabled" and name.endswith("-network-policy"):
            continue  # the node commands that carry the change to running nodes
        assert r["inputs"] == on.by_name[name]["inputs"], name


def test_all_addons_off_leaves_no_kubernetes_resources(plan):
    p = plan(
        "dev",
        "cloudController.enabled=false",
        "csi.enabled=false",
        "metricsServer.enabled=false",
        "networkPolicy.enabled=false",
    )
    assert not [r for r in p.resources if r["type"].startswith(("kubernetes:", K8S_PROVIDER))]
    assert not p.of_type("openstack:identity/applicationCredential:ApplicationCredential")
    assert len(p.resources) > 50


def test_given_credentials_need_both_halves(tmp_path):
    from planning import run_plan

    result = run_plan(
        tmp_path / "p",
        "dev",
        ("openstack.applicationCredential=given", "openstack.applicationCredentialId=abc"),
    )
    assert result.returncode == 2
    assert "openstack-k8s:openstack.applicationCredentialSecret: is required" in result.stderr
