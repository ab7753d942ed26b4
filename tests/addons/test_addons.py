"""In-cluster add-ons (issue 8): pinned versions, cloud.conf, the Kubernetes objects, and
their life as pulumi_kubernetes resources under Pulumi's mock engine."""

import configparser
import copy
import json
import os
import subprocess
import sys
import textwrap

import kubernetes_validate
import pytest

from addons import versions
from addons.cloud_conf import cloud_conf, cloud_conf_sections, read_cloud_conf
from addons.gateway import gateway_labels_taints, gateway_pod_scheduling
from addons.resources import is_custom
from addons.manifests import (
    ADDON_LABEL,
    FEATURES,
    NAMESPACE,
    addon_objects,
    cloud_conf_secret,
    object_key,
)

from planning import ROOT as REPO  # noqa: E402

MINORS = versions.SUPPORTED_MINORS
STORAGE_CLASS = {
    "name": "cinder-ssd",
    "reclaim_policy": "Retain",
    "volume_type": "ssd",
    "default": True,
}
ALL_ON = {f: True for f in FEATURES}
# Every on/off combination of the features.
FEATURE_SETS = [
    {f: bool(mask & (1 << i)) for i, f in enumerate(FEATURES)} for mask in range(1 << len(FEATURES))
]
APP_CRED = {
    "auth_url": "https://keystone.example:5000/v3",
    "application_credential_id": "0123abcd",
    "application_credential_secret": 's3cr;et#with"quote\\and %percent',
}


def objects(minor="1.33", features=None, image_repository=None, storage_class=None):
    return addon_objects(
        kubernetes_version=f"{minor}.2",
        image_repository=image_repository,
        storage_class=storage_class or STORAGE_CLASS,
        features=ALL_ON if features is None else features,
    )


def containers(obj):
    """Every container (and init container) of a workload object."""
    spec = obj.get("spec", {}).get("template", {}).get("spec", {})
    return spec.get("containers", []) + spec.get("initContainers", [])


# --- versions ---------------------------------------------------------------------------


def test_at_least_the_three_current_minors_are_pinned():
    """The issue asks for 1.32, 1.33 and 1.34 at least; a dropped row must fail here."""
    assert {"1.32", "1.33", "1.34"} <= set(MINORS)


@pytest.mark.parametrize("minor", MINORS)
def test_cloud_provider_openstack_release_matches_the_minor(minor):
    """cloud-provider-openstack vX.Y.* is built for Kubernetes X.Y: a mismatch breaks nodes."""
    tags = versions.tags_for(f"{minor}.0")
    assert tags["cloud_controller_manager"].startswith(f"v{minor}.")
    assert tags["cinder_csi_plugin"].startswith(f"v{minor}.")
    assert set(tags) == set(versions.UPSTREAM)


@pytest.mark.parametrize("bad", ["1.31.4", "1.40.0", "v2.0", "latest", "1.33.x"])
def test_unknown_minor_is_an_error_naming_kubernetesVersion(bad):
    """A stack on a minor nobody pinned must stop at config time, saying which key to fix."""
    with pytest.raises(ValueError, match="kubernetesVersion"):
        addon_objects(
            kubernetes_version=bad,
            image_repository=None,
            storage_class=STORAGE_CLASS,
            features=ALL_ON,
        )


def test_version_forms_accepted():
    """kubeadm-style 'v1.33.2', plain '1.33.2' and '1.33' all select the 1.33 row."""
    assert versions.minor_of("v1.33.2") == versions.minor_of("1.33.2") == "1.33"
    assert versions.minor_of("1.33") == "1.33"


# --- objects: validity ------------------------------------------------------------------


@pytest.mark.parametrize("minor", MINORS)
def test_every_object_validates_strictly_for_every_feature_set(minor):
    """Each object (and the cloud.conf Secret) is what that Kubernetes version accepts,
    unknown fields rejected: a typo in a manifest-as-data would otherwise only show on a
    real cluster. Objects identical across feature sets are validated once (the validator
    reloads its schemas on every call, which is the slow part)."""
    unique = {}
    for features in FEATURE_SETS:
        for obj in objects(minor, features) + [cloud_conf_secret("[Global]\n")]:
            unique.setdefault(json.dumps(obj, sort_keys=True), obj)
    standard = [o for o in unique.values() if not is_custom(o["apiVersion"])]
    for obj in standard:
        kubernetes_validate.validate(obj, f"{minor}.0", strict=True)
    assert len(unique) == len(objects(minor)) + 1, "an object differs between feature sets"
    # Calico's Tier and policy have no schema here: tests/addons/test_network_policy.py checks them.
    assert {o["kind"] for o in unique.values() if is_custom(o["apiVersion"])} == {
        "Tier",
        "GlobalNetworkPolicy",
    }


def test_strict_validation_catches_a_broken_object():
    """Proves the validator in the test above can fail: an unknown field and a wrong type."""
    ds = next(o for o in objects() if o["kind"] == "DaemonSet")
    typo = copy.deepcopy(ds)
    typo["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
    wrong = copy.deepcopy(ds)
    wrong["spec"]["template"]["spec"]["hostNetwork"] = "yes"
    for broken in (typo, wrong):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, "1.33.0", strict=True)


def test_objects_are_unique_namespaced_in_kube_system_and_labelled():
    """Two objects with one key would fight over one API object; namespaced ones go to
    kube-system; every object says which feature owns it."""
    objs = objects()
    keys = [object_key(o) for o in objs]
    assert len(keys) == len(set(keys))
    cluster_scoped = {
        "ClusterRole",
        "ClusterRoleBinding",
        "CSIDriver",
        "StorageClass",
        "APIService",
        "CustomResourceDefinition",
        "Tier",
        "GlobalNetworkPolicy",
    }
    for obj in objs:
        meta = obj["metadata"]
        if obj["kind"] in cluster_scoped:
            assert "namespace" not in meta, object_key(obj)
        else:
            assert meta["namespace"] == NAMESPACE, object_key(obj)
        assert meta["labels"][ADDON_LABEL] in {
            "cloud-controller",
            "cinder-csi",
            "metrics-server",
            "network-policy",
        }
    assert not any(o["kind"] == "Secret" for o in objs), "cloud.conf must come from the caller"


def test_rendering_is_deterministic():
    """Same config, same objects: a preview must not show a diff for nothing."""
    assert json.dumps(objects()) == json.dumps(objects())


# --- objects: features ------------------------------------------------------------------


def test_turning_a_feature_off_removes_exactly_its_objects():
    """For every feature set, the objects are exactly the union of each enabled feature's
    own objects: turning one off removes its objects and touches nobody else's."""
    alone = {
        f: {object_key(o) for o in objects(features={g: g == f for g in FEATURES})}
        for f in FEATURES
    }
    assert all(alone.values())
    assert not (alone["cloud_controller"] & alone["cinder_csi"])
    assert not (alone["cinder_csi"] & alone["metrics_server"])
    assert not (alone["cloud_controller"] & alone["metrics_server"])
    for features in FEATURE_SETS:
        got = [object_key(o) for o in objects(features=features)]
        expected = set().union(*(alone[f] for f in FEATURES if features[f]))
        assert set(got) == expected, features
    assert objects(features={f: False for f in FEATURES}) == []


def test_feature_contents():
    """Each feature brings its core objects: the CCM DaemonSet, the CSI controller
    Deployment + node DaemonSet + CSIDriver + StorageClass, metrics-server + APIService."""
    by_feature = {}
    for o in objects():
        by_feature.setdefault(o["metadata"]["labels"][ADDON_LABEL], set()).add(
            (o["kind"], o["metadata"]["name"])
        )
    assert ("DaemonSet", "openstack-cloud-controller-manager") in by_feature["cloud-controller"]
    csi = by_feature["cinder-csi"]
    for item in [
        ("Deployment", "csi-cinder-controllerplugin"),
        ("DaemonSet", "csi-cinder-nodeplugin"),
        ("CSIDriver", "cinder.csi.openstack.org"),
        ("StorageClass", "cinder-ssd"),
    ]:
        assert item in csi
    assert ("APIService", "v1beta1.metrics.k8s.io") in by_feature["metrics-server"]
    with pytest.raises(ValueError, match="unknown feature"):
        objects(features={"octavia_ingress": True})


def test_ccm_runs_on_masters_and_tolerates_the_uninitialized_taint():
    """Nodes start with --cloud-provider=external and stay tainted until the CCM runs: a CCM
    that does not tolerate that taint never starts, and the cluster never schedules."""
    ds = next(o for o in objects() if o["metadata"]["name"] == "openstack-cloud-controller-manager")
    spec = ds["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
    tolerated = {(t["key"], t["effect"]) for t in spec["tolerations"]}
    assert ("node.cloudprovider.kubernetes.io/uninitialized", "NoSchedule") in tolerated
    assert ("node-role.kubernetes.io/control-plane", "NoSchedule") in tolerated
    args = spec["containers"][0]["args"]
    assert "--cloud-provider=openstack" in args
    assert spec["volumes"][-1] == {
        "name": "cloud-config-volume",
        "secret": {"secretName": "cloud-config"},
    }


def test_storage_class_follows_config():
    """csi.storageClass name, reclaim policy, volume type and default flag reach the object."""
    sc = next(o for o in objects() if o["kind"] == "StorageClass")
    assert sc["metadata"]["name"] == "cinder-ssd"
    assert sc["reclaimPolicy"] == "Retain"
    assert sc["parameters"] == {"type": "ssd"}
    assert sc["provisioner"] == "cinder.csi.openstack.org"
    assert sc["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    plain = next(
        o
        for o in objects(
            storage_class={
                "name": "std",
                "reclaim_policy": "Delete",
                "volume_type": None,
                "default": False,
            }
        )
        if o["kind"] == "StorageClass"
    )
    assert "parameters" not in plain
    assert (
        plain["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "false"
    )
    with pytest.raises(ValueError, match="reclaimPolicy"):
        objects(storage_class={"name": "x", "reclaim_policy": "Recycle"})


# --- images -----------------------------------------------------------------------------


@pytest.mark.parametrize("minor", MINORS)
def test_every_image_is_pinned_to_the_table(minor):
    """No :latest, no untagged image, and each one is exactly the pinned tag for the minor."""
    pinned = set(versions.images(f"{minor}.0").values())
    seen = set()
    for obj in objects(minor):
        for c in containers(obj):
            image = c["image"]
            name, _, tag = image.rpartition(":")
            assert name and tag and tag != "latest" and "/" not in tag, image
            assert image in pinned, image
            seen.add(image)
    assert seen == pinned, "every pinned image is used, every used image is pinned"


def test_image_repository_override_applies_everywhere():
    """Air-gapped clouds pull every add-on image from their mirror: one missed image is a
    pod stuck in ImagePullBackOff."""
    mirror = "mirror.example:5000/k8s"
    checked = 0
    for obj in objects(image_repository=mirror + "/"):
        for c in containers(obj):
            assert c["image"].startswith(mirror + "/"), c["image"]
            assert c["image"].count("/") == mirror.count("/") + 1, "flat layout under the mirror"
            checked += 1
    assert checked >= 10
    assert versions.image_list("1.34.0", mirror)[0].startswith(mirror + "/")
    assert "mirror.example:5000/k8s/csi-attacher:v4.10.0" in versions.image_list("1.34.0", mirror)


# --- cloud.conf -------------------------------------------------------------------------


def render(auth, **kw):
    args = dict(
        auth=auth,
        region="RegionOne",
        subnet_id="subnet-1",
        floating_network_id="ext-net-1",
        lb_enabled=True,
    )
    args.update(kw)
    return cloud_conf(**args)


def test_cloud_conf_is_valid_ini_with_the_right_sections():
    """configparser reads it back (strict: no duplicate keys or sections) with [Global],
    [LoadBalancer] and [BlockStorage], and awkward secrets survive the round trip."""
    auth = APP_CRED
    text = render(auth)
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.read_string(text)
    assert {"Global", "LoadBalancer", "BlockStorage"} <= set(parser.sections())
    conf = read_cloud_conf(text)
    g = conf["Global"]
    assert g == {
        "auth-url": auth["auth_url"],
        "region": "RegionOne",
        "application-credential-id": "0123abcd",
        "application-credential-secret": APP_CRED["application_credential_secret"],
    }
    lb = conf["LoadBalancer"]
    assert lb == {
        "enabled": "true",
        "floating-network-id": "ext-net-1",
        "subnet-id": "subnet-1",
        "lb-provider": "amphora",
        "create-monitor": "true",
    }
    assert conf["BlockStorage"]["rescan-on-resize"] == "true"


def test_cloud_conf_values_are_gcfg_safe():
    """The CCM parses with gcfg, where ';' and '#' start a comment: a secret holding them
    must be quoted, or the CCM would authenticate with a truncated secret."""
    secret = next(
        ln for ln in render(APP_CRED).splitlines() if ln.startswith("application-credential-secret")
    )
    assert secret == 'application-credential-secret = "s3cr;et#with\\"quote\\\\and %percent"'
    with pytest.raises(ValueError, match="single line"):
        render({**APP_CRED, "application_credential_secret": "a\n[Global]"})


def test_cloud_conf_without_octavia_disables_load_balancers():
    """Clouds without Octavia: the CCM must refuse LoadBalancer Services, not retry forever."""
    conf = read_cloud_conf(render(APP_CRED, lb_enabled=False, subnet_id="", floating_network_id=""))
    assert conf["LoadBalancer"] == {"enabled": "false"}


@pytest.mark.parametrize(
    "auth,message",
    [
        ({"auth_url": "x"}, "application_credential_id is required"),
        (
            {**APP_CRED, "username": "u", "password": "p"},
            "only auth_url, application_credential_id",
        ),
        ({k: v for k, v in APP_CRED.items() if k != "auth_url"}, "auth_url"),
        ({**APP_CRED, "application_credential_secret": ""}, "application_credential_secret"),
    ],
)
def test_bad_credentials_name_the_problem(auth, message):
    """A half-given credential is a config error that says what is missing."""
    with pytest.raises(ValueError, match=message):
        render(auth)


def test_cloud_conf_is_deterministic_and_secret_is_a_valid_object():
    """Same inputs, same text (no spurious Secret updates); the Secret carries it as
    stringData under the name the CCM and CSI mount."""
    assert render(APP_CRED) == render(APP_CRED)
    secret = cloud_conf_secret(render(APP_CRED), ca_cert="PEM")
    assert secret["metadata"] == {
        "name": "cloud-config",
        "namespace": "kube-system",
        "labels": {ADDON_LABEL: "cloud-config"},
    }
    assert set(secret["stringData"]) == {"cloud.conf", "ca.crt"}
    kubernetes_validate.validate(secret, "1.34.0", strict=True)
    sections = cloud_conf_sections(
        auth=APP_CRED, region=None, subnet_id="s", floating_network_id="f", lb_enabled=True
    )
    assert "region" not in sections["Global"]


# --- gateway pools ----------------------------------------------------------------------


def test_gateway_label_and_taint():
    """The label must be one a kubelet may set on itself (not *.kubernetes.io / *.k8s.io),
    and the taint keeps ordinary pods off internet-facing nodes."""
    labels, taints = gateway_labels_taints()
    assert labels == {"openstack-k8s.io/gateway": "true"}
    assert taints == [{"key": "openstack-k8s.io/gateway", "value": "true", "effect": "NoSchedule"}]
    for key in labels:
        domain = key.split("/")[0]
        for restricted in ("kubernetes.io", "k8s.io"):
            assert domain != restricted and not domain.endswith("." + restricted)
    # A pod spec fragment using them is a valid pod for the API.
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "ingress"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}], **gateway_pod_scheduling()},
    }
    kubernetes_validate.validate(pod, "1.34.0", strict=True)


# --- under the mock engine --------------------------------------------------------------

MOCK_PROGRAM = textwrap.dedent("""
    import asyncio, json, sys
    import pulumi

    registered = []

    class Mocks(pulumi.runtime.Mocks):
        def new_resource(self, args):
            registered.append({"type": args.typ, "name": args.name,
                               "provider": args.provider or "", "inputs": args.inputs})
            return f"{args.name}-id", args.inputs

        def call(self, args):
            return {}

    pulumi.runtime.set_mocks(Mocks(), preview=False)

    import pulumi_kubernetes as k8s
    from addons import addon_objects, cloud_conf, cloud_conf_secret
    from addons.resources import create

    features = json.loads(sys.argv[1])
    kubeconfig = pulumi.Output.secret("apiVersion: v1\\nkind: Config\\n")
    provider = k8s.Provider("c-k8s", kubeconfig=kubeconfig)
    conf = pulumi.Output.secret("app-cred-secret").apply(lambda s: cloud_conf(
        auth={"auth_url": "https://k:5000/v3", "application_credential_id": "id",
              "application_credential_secret": s},
        region=None, subnet_id="sub", floating_network_id="ext", lb_enabled=True))
    objs = addon_objects(kubernetes_version="1.34.1", image_repository=None,
                         storage_class={"name": "cinder", "reclaim_policy": "Delete",
                                        "volume_type": None, "default": True},
                         features=features)
    opts = pulumi.ResourceOptions(provider=provider)
    created = create(objs + [cloud_conf_secret(conf)], prefix="c-addons", opts=opts)
    secret = created["v1/Secret/kube-system/cloud-config"]
    # A Secret whose input is not secret must still be stored as one.
    plain = create([cloud_conf_secret("not marked secret")], prefix="c-plain",
                   opts=opts)["v1/Secret/kube-system/cloud-config"]

    @pulumi.runtime.test
    def wait():
        return pulumi.Output.all(*[r.urn for r in created.values()]).apply(lambda _: None)

    wait()
    flags = {}

    @pulumi.runtime.test
    def check_secret():
        def record(both):
            flags["string_data_secret"], flags["plain_string_data_secret"] = both
        return pulumi.Output.from_input(asyncio.gather(
            secret.string_data.is_secret(), plain.string_data.is_secret())).apply(record)

    check_secret()
    summary = []
    for r in registered:
        spec = r["inputs"].get("spec") or {}
        summary.append({"type": r["type"], "name": r["name"], "provider": r["provider"],
                        "kind": r["inputs"].get("kind"),
                        # workloads: the selector must reach the provider as matchLabels
                        "camel": r["inputs"].get("kind") not in ("Deployment", "DaemonSet")
                        or "matchLabels" in spec["selector"]})
    print(json.dumps({"registered": summary, **flags}))
""")


def run_mock_program(features):
    """Run the program in its own interpreter: set_mocks is process-global, and this test
    must not disturb (or depend on) the mocks other tests install."""
    proc = subprocess.run(
        [sys.executable, "-c", MOCK_PROGRAM, json.dumps(features)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_mock_engine_registers_one_typed_resource_per_object_through_the_provider():
    """Each object becomes one kubernetes:<group>/<version>:<Kind> resource using the
    kubeconfig provider, inputs camelCase as the API wants, the cloud.conf Secret secret;
    and turning a feature off removes exactly its resources."""
    full = run_mock_program(ALL_ON)
    resources = [
        r
        for r in full["registered"]
        if r["type"] != "pulumi:providers:kubernetes" and not r["name"].startswith("c-plain")
    ]
    assert len(resources) == len(objects()) + 1
    for r in resources:
        assert r["type"].startswith("kubernetes:") and r["type"].endswith(":" + r["kind"])
        assert r["provider"].endswith("::c-k8s::c-k8s-id"), r
        assert r["camel"], r
    assert full["string_data_secret"] is True
    assert full["plain_string_data_secret"] is True
    names = {r["name"] for r in resources}
    assert "c-addons-daemonset-openstack-cloud-controller-manager" in names
    assert "c-addons-clusterrole-system-cloud-controller-manager" in names

    no_metrics = run_mock_program({**ALL_ON, "metrics_server": False})
    removed = names - {r["name"] for r in no_metrics["registered"]}
    expected = {
        f"c-addons-{o['kind'].lower()}-{o['metadata']['name'].replace(':', '-')}"
        for o in objects(features={"metrics_server": True})
    }
    assert removed == expected and removed


def test_pod_images_are_the_pod_templates_images():
    """What makes an add-on object wait for the control plane's upgrade and worker upgrades
    wait for it (components/addons.py): the images its pods run, init containers too."""
    from addons import addon_objects, images
    from addons.resources import pod_images

    workload = {
        "kind": "DaemonSet",
        "spec": {
            "template": {
                "spec": {
                    "initContainers": [{"name": "i", "image": "a:1"}],
                    "containers": [{"name": "c", "image": "b:2"}, {"name": "d", "image": "a:1"}],
                }
            }
        },
    }
    assert pod_images(workload) == {"a:1", "b:2"}
    assert pod_images({"kind": "ConfigMap", "data": {"image": "x"}}) == set()
    objects = addon_objects(
        kubernetes_version="1.34.1",
        image_repository=None,
        storage_class={
            "name": "c",
            "reclaim_policy": "Delete",
            "volume_type": None,
            "default": True,
        },
        features={
            "cloud_controller": True,
            "cinder_csi": True,
            "metrics_server": True,
            "network_policy": True,
        },
        cluster_name="t",
    )
    pinned = set(images("1.34.1").values())
    running = {o["metadata"]["name"]: pod_images(o) for o in objects if pod_images(o)}
    assert set(running) == {
        "openstack-cloud-controller-manager",
        "csi-cinder-controllerplugin",
        "csi-cinder-nodeplugin",
        "metrics-server",
        "calico-node",
    }
    # Every image an add-on runs is one of the pins, and every pin is run.
    assert set().union(*running.values()) == pinned
