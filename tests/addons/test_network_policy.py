"""NetworkPolicy enforced by Calico policy-only next to flannel (addons.calico), and workload
pods kept off the metadata service: the objects offline (Kubernetes schemas, CRDs, the CNI
conflist install-cni writes, the metadata policy), and the plan with networkPolicy on and off."""

from __future__ import annotations

import copy
import ipaddress
import json
from pathlib import PurePosixPath

import kubernetes_validate
import pytest

from addons import calico, versions
from addons.manifests import ADDON_LABEL, addon_objects, object_key
from addons.resources import custom_dependencies, is_custom
from cloud_init.node import CNI_CONFLIST
from validators import kubernetes_strict, structural_problems

MINORS = versions.SUPPORTED_MINORS
LABEL = "network-policy"


def objects(minor="1.34", image_repository=None):
    return addon_objects(
        kubernetes_version=f"{minor}.1",
        image_repository=image_repository,
        storage_class={},
        features={"network_policy": True},
    )


def by_kind(objs, kind):
    return [o for o in objs if o["kind"] == kind]


def calico_node(objs):
    (ds,) = by_kind(objs, "DaemonSet")
    return ds


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def install_cni(objs):
    (init,) = calico_node(objs)["spec"]["template"]["spec"]["initContainers"]
    return init


def felix(objs):
    (container,) = calico_node(objs)["spec"]["template"]["spec"]["containers"]
    return container


# --- the objects against Kubernetes ------------------------------------------------------


@pytest.mark.parametrize("minor", MINORS)
def test_every_standard_object_validates_strictly(minor):
    """ServiceAccounts, RBAC, CRDs and the DaemonSet are what each supported Kubernetes
    accepts, unknown fields rejected; only Calico's own kinds are left to the tests below."""
    objs = objects(minor)
    standard = [o for o in objs if not is_custom(o["apiVersion"])]
    for obj in standard:
        kubernetes_strict(obj, f"{minor}.0")
    assert len(standard) == len(objs) - 2
    assert {o["kind"] for o in objs if is_custom(o["apiVersion"])} == {
        "Tier",
        "GlobalNetworkPolicy",
    }


def test_the_validator_rejects_a_broken_daemonset():
    """The strict validation above can fail: a misspelt field of the calico-node pod."""
    ds = copy.deepcopy(calico_node(objects()))
    ds["spec"]["template"]["spec"]["initContainer"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_strict(ds, "1.34.0")


def test_every_object_is_labelled_and_unique():
    objs = objects()
    assert all(o["metadata"]["labels"][ADDON_LABEL] == LABEL for o in objs)
    keys = [object_key(o) for o in objs]
    assert len(keys) == len(set(keys))


# --- CRDs ----------------------------------------------------------------------------------


def test_crds_are_structural():
    crds = by_kind(objects(), "CustomResourceDefinition")
    assert len(crds) == len(calico.CRDS)
    for crd in crds:
        (version,) = crd["spec"]["versions"]
        assert version["name"] == "v1" and version["served"] and version["storage"]
        assert structural_problems(version["schema"]["openAPIV3Schema"]) == [], crd["metadata"][
            "name"
        ]
        names = crd["spec"]["names"]
        # The API server requires the name to be <plural>.<group>.
        assert crd["metadata"]["name"] == f"{names['plural']}.{crd['spec']['group']}"


def test_the_structural_check_can_fail():
    assert structural_problems({"type": "object", "properties": {"spec": {}}})
    assert structural_problems(
        {"type": "object", "properties": {"metadata": {"type": "object", "properties": {}}}}
    )
    assert structural_problems({"type": "array"})
    assert structural_problems({"x-kubernetes-preserve-unknown-fields": True})


def test_every_custom_object_has_its_crd_and_waits_for_it():
    """A Tier or GlobalNetworkPolicy whose kind has no CRD is refused by the API server; each
    one waits for its CRD, and the policy for its tier."""
    objs = objects()
    crd_kinds = {
        (c["spec"]["group"], c["spec"]["names"]["kind"])
        for c in by_kind(objs, "CustomResourceDefinition")
    }
    custom = [o for o in objs if is_custom(o["apiVersion"])]
    for obj in custom:
        assert (obj["apiVersion"].split("/")[0], obj["kind"]) in crd_kinds, obj["kind"]
        assert obj["apiVersion"] == calico.CALICO_API
    (policy,) = by_kind(objs, "GlobalNetworkPolicy")
    assert custom_dependencies(policy, objs) == [
        "apiextensions.k8s.io/v1/CustomResourceDefinition/globalnetworkpolicies.crd.projectcalico.org",
        "crd.projectcalico.org/v1/Tier/openstack-k8s",
    ]
    without_crd = [o for o in objs if o["metadata"]["name"] != "tiers.crd.projectcalico.org"]
    (tier,) = by_kind(objs, "Tier")
    with pytest.raises(ValueError, match="no CustomResourceDefinition for Tier"):
        custom_dependencies(tier, without_crd)


def test_felix_may_read_every_calico_kind_it_has_a_crd_for():
    """RBAC and CRDs are one list: a kind felix is forbidden to list keeps it from ever being
    in sync (not ready), while a kind without a CRD is only skipped."""
    objs = objects()
    plurals = {c["spec"]["names"]["plural"] for c in by_kind(objs, "CustomResourceDefinition")}
    role = next(r for r in by_kind(objs, "ClusterRole") if r["metadata"]["name"] == "calico-node")
    readable = {
        res
        for rule in role["rules"]
        if rule["apiGroups"] == [calico.CALICO_GROUP] and {"list", "watch"} <= set(rule["verbs"])
        for res in rule["resources"]
    }
    assert readable == plurals


@pytest.mark.parametrize(
    "minor,watched",
    [
        ("1.33", {"adminnetworkpolicies", "baselineadminnetworkpolicies"}),
        ("1.34", {"clusternetworkpolicies", "virtualmachineinstancemigrations"}),
    ],
)
def test_felix_may_list_what_its_release_watches(minor, watched):
    """v3.31 watches (Baseline)AdminNetworkPolicies; v3.32 ClusterNetworkPolicies and
    KubeVirt migrations instead."""
    role = next(
        r for r in by_kind(objects(minor), "ClusterRole") if r["metadata"]["name"] == "calico-node"
    )
    outside = {
        res
        for rule in role["rules"]
        if set(rule["apiGroups"]) & {"policy.networking.k8s.io", "kubevirt.io"}
        for res in rule["resources"]
    }
    assert outside == watched


def test_rbac_is_least_privilege():
    """No wildcard, no Secrets, no write to pods; the token calico-node may mint is only the
    CNI plugin's."""
    objs = objects()
    for role in by_kind(objs, "ClusterRole"):
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] + rule["resources"] + rule["apiGroups"], role[
                "metadata"
            ]["name"]
            assert "secrets" not in rule["resources"]
            if "pods" in rule["resources"]:
                assert set(rule["verbs"]) <= {"get", "list", "watch"}
            if rule["resources"] == ["serviceaccounts/token"]:
                assert rule["resourceNames"] == [calico.CNI_SERVICE_ACCOUNT]
    cni = next(
        r for r in by_kind(objs, "ClusterRole") if r["metadata"]["name"] == "calico-cni-plugin"
    )
    assert {(tuple(r["resources"]), tuple(r["verbs"])) for r in cni["rules"]} == {
        (("pods", "nodes", "namespaces"), ("get",)),
        (("pods/status",), ("patch",)),
    }
    bound = {
        (b["roleRef"]["name"], b["subjects"][0]["name"])
        for b in by_kind(objs, "ClusterRoleBinding")
    }
    assert bound == {("calico-node", "calico-node"), ("calico-cni-plugin", "calico-cni-plugin")}


# --- the DaemonSet and its conflist --------------------------------------------------------


def test_calico_node_runs_felix_only_next_to_flannel():
    ds = calico_node(objects())
    spec = ds["spec"]["template"]["spec"]
    assert spec["hostNetwork"] is True
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["priorityClassName"] == "system-node-critical"
    assert spec["serviceAccountName"] == "calico-node"
    env = env_of(felix(objects()))
    assert env["CALICO_NETWORKING_BACKEND"] == "none"
    assert env["CLUSTER_TYPE"] == "k8s,canal"
    assert env["DATASTORE_TYPE"] == "kubernetes"
    assert env["IP"] == "" and "IP_AUTODETECTION_METHOD" not in env
    assert env["NO_DEFAULT_POOLS"] == "true" and "CALICO_IPV4POOL_CIDR" not in env
    assert env["FELIX_INTERFACEPREFIX"] == "cali"
    assert env["FELIX_DEFAULTENDPOINTTOHOSTACTION"] == "ACCEPT"
    assert env["FELIX_IPINIPENABLED"] == "false"
    container = felix(objects())
    assert container["securityContext"] == {"privileged": True}
    assert container["livenessProbe"]["exec"]["command"] == ["/bin/calico-node", "-felix-live"]
    assert container["readinessProbe"]["exec"]["command"] == ["/bin/calico-node", "-felix-ready"]


def test_install_cni_conflist_is_flannel_delegating_to_calico_then_portmap():
    """The embedded conflist parses; flannel (IPAM from flanneld's lease) hands the pod to the
    calico plugin (policy k8s, kubernetes datastore, install-cni's kubeconfig), then portmap."""
    init = install_cni(objects())
    assert init["command"] == ["/opt/cni/bin/install"]
    env = env_of(init)
    conf = json.loads(env["CNI_NETWORK_CONFIG"])
    assert [p["type"] for p in conf["plugins"]] == ["flannel", "portmap"]
    flannel = conf["plugins"][0]
    assert flannel["subnetFile"] == "/run/flannel/subnet.env"
    delegate = flannel["delegate"]
    assert delegate["type"] == "calico"
    assert delegate["policy"] == {"type": "k8s"}
    assert delegate["datastore_type"] == "kubernetes"
    assert delegate["kubernetes"] == {"kubeconfig": "__KUBECONFIG_FILEPATH__"}
    assert delegate["include_default_routes"] is True
    # IPAM and MTU are flannel's to fill in from its lease.
    assert "ipam" not in delegate and "mtu" not in delegate
    assert conf["plugins"][1]["capabilities"] == {"portMappings": True}
    # The same host-local store as the node's bridge conflist: no address given out twice.
    assert conf["name"] == "cbr0"


def test_conflist_comes_before_the_nodes_own():
    """containerd takes the first conflist in lexical order: ours must sort before
    10-flannel.conflist, and install-cni must delete nothing but its own file."""
    env = env_of(install_cni(objects()))
    node_own = PurePosixPath(CNI_CONFLIST).name
    assert sorted([node_own, env["CNI_CONF_NAME"]])[0] == env["CNI_CONF_NAME"] != node_own
    assert env["CNI_CONF_NAME"].endswith(".conflist")
    assert env["CNI_OLD_CONF_NAME"] == env["CNI_CONF_NAME"]
    assert env["SLEEP"] == "false"
    assert env["CALICO_CNI_SERVICE_ACCOUNT"] == calico.CNI_SERVICE_ACCOUNT
    # The node keeps its distribution's standard plugins; only calico, calico-ipam and
    # flannel come from the image.
    assert set(env["SKIP_CNI_BINARIES"].split(",")) == {
        "host-local",
        "loopback",
        "portmap",
        "tuning",
    }
    mounts = {m["mountPath"] for m in install_cni(objects())["volumeMounts"]}
    assert mounts == {"/host/opt/cni/bin", "/host/etc/cni/net.d"}


@pytest.mark.parametrize("minor", MINORS)
def test_images_are_pinned_per_minor_and_mirrored(minor):
    tags = versions.tags_for(f"{minor}.0")
    assert tags["calico_node"] == tags["calico_cni"]
    assert tags["calico_node"] == ("v3.31.7" if minor in ("1.32", "1.33") else "v3.32.1")
    objs = objects(minor)
    assert felix(objs)["image"] == f"quay.io/calico/node:{tags['calico_node']}"
    assert install_cni(objs)["image"] == f"quay.io/calico/cni:{tags['calico_cni']}"
    mirrored = objects(minor, image_repository="mirror.example/k8s")
    listed = versions.image_list(f"{minor}.0", "mirror.example/k8s")
    assert felix(mirrored)["image"] == f"mirror.example/k8s/node:{tags['calico_node']}" in listed
    assert (
        install_cni(mirrored)["image"] == f"mirror.example/k8s/cni:{tags['calico_cni']}" in listed
    )


# --- the metadata service ------------------------------------------------------------------


def metadata_policy(objs=None):
    (policy,) = by_kind(objs or objects(), "GlobalNetworkPolicy")
    return policy


def test_policy_denies_exactly_the_metadata_address_then_passes():
    spec = metadata_policy()["spec"]
    assert spec["types"] == ["Egress"] and "ingress" not in spec
    deny, rest = spec["egress"]
    assert deny == {"action": "Deny", "destination": {"nets": ["169.254.169.254/32"]}}
    assert ipaddress.ip_network(deny["destination"]["nets"][0]).num_addresses == 1
    # Pass: users' NetworkPolicies in the default tier still decide the rest.
    assert rest == {"action": "Pass"}


def test_tier_comes_before_the_default_tier_and_names_follow_calicos_rule():
    objs = objects()
    (tier,) = by_kind(objs, "Tier")
    policy = metadata_policy(objs)
    # Calico: default tier at 1,000,000, kube-admin / adminnetworkpolicy at 1,000.
    assert 1_000 < tier["spec"]["order"] < 1_000_000
    assert tier["spec"]["defaultAction"] == "Pass"
    assert policy["spec"]["tier"] == tier["metadata"]["name"]
    # v3.31's CRD backend takes the tier from the name: "<tier>.<name>".
    assert policy["metadata"]["name"].split(".", 1)[0] == tier["metadata"]["name"]
    assert "." not in tier["metadata"]["name"]


def test_only_our_pods_that_need_it_are_exempt():
    """The selector matches every workload endpoint but the Cinder CSI controller in
    kube-system; host-network pods (CCM, CSI node plugin) have no endpoint at all."""
    selector = metadata_policy()["spec"]["selector"]
    assert selector == (
        "!((projectcalico.org/namespace == 'kube-system' && app == 'csi-cinder-controllerplugin'))"
    )
    full = addon_objects(
        kubernetes_version="1.34.1",
        image_repository=None,
        storage_class={},
        features={"cinder_csi": True, "cloud_controller": True},
    )
    controller = next(o for o in full if o["metadata"]["name"] == "csi-cinder-controllerplugin")
    assert controller["spec"]["template"]["metadata"]["labels"] == {
        "app": "csi-cinder-controllerplugin"
    }
    assert controller["metadata"]["namespace"] == "kube-system"
    host_network = {
        o["metadata"]["name"]
        for o in full
        if o["kind"] in ("DaemonSet", "Deployment")
        and o["spec"]["template"]["spec"].get("hostNetwork")
    }
    assert host_network == {"openstack-cloud-controller-manager", "csi-cinder-nodeplugin"}


# --- the plan ------------------------------------------------------------------------------


def labelled(p):
    return {
        r["name"]: r
        for r in p.resources
        if r["type"].startswith("kubernetes:")
        and ((r["inputs"].get("metadata") or {}).get("labels") or {}).get(ADDON_LABEL) == LABEL
    }


def test_default_plans_calico_and_off_plans_none_of_it(plan):
    on = plan("dev")
    mine = labelled(on)
    assert len(mine) == len(objects())
    assert (
        on.named("dev-addons-tier-openstack-k8s")["type"]
        == "kubernetes:crd.projectcalico.org/v1:Tier"
    )
    policy = "dev-addons-globalnetworkpolicy-openstack-k8s.metadata-service"
    assert on.named(policy)["type"] == "kubernetes:crd.projectcalico.org/v1:GlobalNetworkPolicy"
    assert {
        "dev-addons-tier-openstack-k8s",
        "dev-addons-customresourcedefinition-globalnetworkpolicies.crd.projectcalico.org",
        "dev-master-0-init",
    } <= on.waits_for(policy)
    off = plan("dev", "networkPolicy.enabled=false")
    assert not labelled(off)
    assert not [n for n in off.by_name if "calico" in n or "projectcalico" in n]
    assert "dev-addons" in off.by_name


def test_only_network_policy_on_still_makes_the_addons(plan):
    p = plan(
        "dev", "cloudController.enabled=false", "csi.enabled=false", "metricsServer.enabled=false"
    )
    assert "dev-addons" in p.by_name and "dev-addons-provider" in p.by_name
    k8s_objects = {n for n, r in p.by_name.items() if r["type"].startswith("kubernetes:")}
    assert k8s_objects == set(labelled(p))
    assert "dev-addons-cloud-cleanup" not in p.by_name
