"""Stack config into Settings: the rules each key follows, tested in-process through
settings.load (what the program and the offline plan both call), plus the real CLI's path."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

import settings
from planning import ROOT

BASE = {
    "clusterName": "t",
    "externalNetwork": "public",
    "image": "debian-12",
    "sshAllowedCidrs": ["0.0.0.0/0"],
}
ADDONS_OFF = {
    "cloudController": {"enabled": False},
    "csi": {"enabled": False},
    "metricsServer": {"enabled": False},
    "networkPolicy": {"enabled": False},
}


def _ssh_key(kind: str, *fields: bytes) -> str:
    blob = b"".join(len(f).to_bytes(4, "big") + f for f in (kind.encode(), *fields))
    return f"{kind} {base64.b64encode(blob).decode()} me@laptop"


ED25519 = _ssh_key("ssh-ed25519", bytes(range(32)))


def load(**extra):
    return settings.load({**BASE, **extra})


def refused(key: str, why: str, **extra):
    """The config is refused with one line that names `key` and says `why`."""
    with pytest.raises(settings.ConfigError, match=why) as e:
        load(**extra)
    assert e.value.key == key, str(e.value)
    assert "\n" not in str(e.value)
    return str(e.value)


# (case id, extra config, key named, words of the reason)
REFUSED = [
    # booleans are not numbers, numbers are not booleans
    ("count-true", {"masters": {"count": True}}, "masters.count", "valid integer"),
    (
        "pool-count-true",
        {"workerPools": [{"name": "a", "count": True}]},
        "workerPools[0].count",
        "valid integer",
    ),
    ("discovery-count-true", {"discovery": {"count": True}}, "discovery.count", "valid integer"),
    ("keep-true", {"etcd": {"backup": {"keep": True}}}, "etcd.backup.keep", "valid integer"),
    (
        "flag-1",
        {"workerPools": [{"name": "a", "count": 1, "floatingIp": 1}]},
        "workerPools[0].floatingIp",
        "valid boolean",
    ),
    ("flag-string", {"csi": {"enabled": "false"}}, "csi.enabled", "valid boolean"),
    # blank is not a name
    ("image-empty", {"image": ""}, "image", "empty or blank"),
    ("flavor-blank", {"masters": {"flavor": "   "}}, "masters.flavor", "empty or blank"),
    ("network-blank", {"externalNetwork": " "}, "externalNetwork", "empty or blank"),
    (
        "pool-flavor-spaces",
        {"workerPools": [{"name": "a", "count": 1, "flavor": " m1.small"}]},
        "workerPools[0].flavor",
        "spaces",
    ),
    # loopback, link-local, 0.0.0.0/x and multicast are not networks
    ("net-loopback", {"network": {"cidr": "127.0.0.0/24"}}, "network.cidr", "loopback"),
    ("net-link-local", {"network": {"cidr": "169.254.0.0/16"}}, "network.cidr", "link-local"),
    ("net-zero", {"network": {"cidr": "0.0.0.0/8"}}, "network.cidr", "this network"),
    ("pod-zero-wide", {"podCidr": "0.0.0.0/1"}, "podCidr", "overlaps"),
    ("pod-link-local", {"podCidr": "169.254.0.0/16"}, "podCidr", "link-local"),
    ("pod-multicast", {"podCidr": "224.0.0.0/16"}, "podCidr", "multicast"),
    ("svc-loopback", {"serviceCidr": "127.0.0.0/16"}, "serviceCidr", "loopback"),
    (
        "resolver-zero",
        {"network": {"dnsNameservers": ["0.0.0.0"]}},
        "network.dnsNameservers[0]",
        "DNS resolver",
    ),
    (
        "resolver-loopback",
        {"network": {"dnsNameservers": ["10.0.0.2", "127.0.0.53"]}},
        "network.dnsNameservers[1]",
        "DNS resolver",
    ),
    # label keys the API server (or the kubelet) refuses
    (
        "label-bad-prefix",
        {"workerPools": [{"name": "a", "count": 1, "labels": {"-bad.-/x": "v"}}]},
        "workerPools[0].labels",
        "DNS subdomain",
    ),
    (
        "label-two-slashes",
        {"workerPools": [{"name": "a", "count": 1, "labels": {"a/b/c": "v"}}]},
        "workerPools[0].labels",
        "more than one '/'",
    ),
    (
        "label-long-name",
        {"workerPools": [{"name": "a", "count": 1, "labels": {"x" * 64: "v"}}]},
        "workerPools[0].labels",
        "1 to 63",
    ),
    (
        "label-role",
        {"workerPools": [{"name": "a", "count": 1, "labels": {"node-role.kubernetes.io/x": ""}}]},
        "workerPools[0].labels",
        "reserved",
    ),
    (
        "label-k8s-io",
        {"workerPools": [{"name": "a", "count": 1, "labels": {"k8s.io/x": ""}}]},
        "workerPools[0].labels",
        "reserved",
    ),
    (
        "label-value",
        {"workerPools": [{"name": "a", "count": 1, "labels": {"team": "-x"}}]},
        "workerPools[0].labels",
        "value",
    ),
    (
        "taint-twice",
        {
            "workerPools": [
                {
                    "name": "a",
                    "count": 1,
                    "taints": [
                        {"key": "gpu", "effect": "NoSchedule"},
                        {"key": "gpu", "value": "x", "effect": "NoSchedule"},
                    ],
                },
                {"name": "b", "count": 1},
            ]
        },
        "workerPools[0].taints",
        "twice",
    ),
    (
        "taint-gateway-twice",
        {
            "workerPools": [
                {
                    "name": "edge",
                    "count": 1,
                    "gateway": True,
                    "taints": [
                        {"key": "openstack-k8s.io/gateway", "value": "true", "effect": "NoSchedule"}
                    ],
                },
                {"name": "b", "count": 1},
            ]
        },
        "workerPools[0].taints[0].key",
        "openstack-k8s.io namespace",
    ),
    (
        "taint-bad-key",
        {
            "workerPools": [
                {"name": "a", "count": 1, "taints": [{"key": "-x", "effect": "NoSchedule"}]}
            ]
        },
        "workerPools[0].taints[0].key",
        "taint key",
    ),
    # ssh keys that are not keys
    ("ssh-short", {"sshPublicKeys": ["ssh-ed25519 AAAA"]}, "sshPublicKeys[0]", "cut short"),
    (
        "ssh-wrong-type",
        {
            "sshPublicKeys": [
                _ssh_key("ssh-rsa", b"\x01\x00\x01", b"\x00" * 64).replace(
                    "ssh-rsa", "ssh-ed25519", 1
                )
            ]
        },
        "sshPublicKeys[0]",
        "cut short",
    ),
    (
        "ssh-not-base64",
        {"sshPublicKeys": ["ssh-ed25519 !!!!"]},
        "sshPublicKeys[0]",
        "OpenSSH public key",
    ),
    ("ssh-twice", {"sshPublicKeys": [ED25519, ED25519]}, "sshPublicKeys", "twice"),
    # schedules that never fire
    (
        "schedule-feb-30",
        {"etcd": {"backup": {"schedule": "*-02-30"}}},
        "etcd.backup.schedule",
        "never fires",
    ),
    (
        "schedule-past",
        {"etcd": {"backup": {"schedule": "2020-01-01 00:00"}}},
        "etcd.backup.schedule",
        "never fires",
    ),
    # a mirror nodes cannot append paths to, or that a shell would interpret
    (
        "mirror-query",
        {"packageMirror": "https://mirror.example/k8s?token=1"},
        "packageMirror",
        "query string",
    ),
    (
        "mirror-fragment",
        {"packageMirror": "https://mirror.example/k8s#x"},
        "packageMirror",
        "fragment",
    ),
    (
        "mirror-shell",
        {"packageMirror": "https://mirror.example/$(reboot)"},
        "packageMirror",
        "shell",
    ),
    ("mirror-semicolon", {"packageMirror": "https://mirror.example/a;b"}, "packageMirror", "shell"),
    # a release this program has no packages for, add-ons or not
    (
        "version-future",
        {"kubernetesVersion": "1.99.0", **ADDONS_OFF},
        "kubernetesVersion",
        "newer than",
    ),
    # network policy alone is an add-on too: Calico is pinned per minor like the others
    (
        "version-unpinned-network-policy",
        {"kubernetesVersion": "1.31.4", **ADDONS_OFF, "networkPolicy": {"enabled": True}},
        "kubernetesVersion",
        "has no pinned add-on versions",
    ),
    # a secret for a mode that does not use it
    (
        "secret-unused",
        {"openstack": {"applicationCredentialSecret": "s3cret"}},
        "openstack.applicationCredentialSecret",
        "only used with",
    ),
    (
        "id-unused",
        {"openstack": {"applicationCredentialId": "abc"}},
        "openstack.applicationCredentialId",
        "only used with",
    ),
    # the hint is the field's own
    (
        "storage-class-name",
        {"csi": {"storageClass": {"name": "Bad_Name"}}},
        "csi.storageClass.name",
        "Kubernetes object name",
    ),
    (
        "pool-name",
        {"workerPools": [{"name": "Big Pool", "count": 1}]},
        "workerPools[0].name",
        "DNS label",
    ),
    (
        "taint-key-hint",
        {
            "workerPools": [
                {"name": "a", "count": 1, "taints": [{"key": "a b", "effect": "NoSchedule"}]}
            ]
        },
        "workerPools[0].taints[0].key",
        "taint key",
    ),
    (
        "container",
        {"etcd": {"backup": {"container": "a/b"}}},
        "etcd.backup.container",
        "Swift container",
    ),
    # a CIDR listed twice would register one security group rule twice
    (
        "node-port-twice",
        {"nodePortAllowedCidrs": ["10.1.0.0/16", "192.0.2.0/24", "10.1.0.0/16"]},
        "nodePortAllowedCidrs",
        "10.1.0.0/16 is listed twice",
    ),
    (
        "api-twice",
        {"apiAllowedCidrs": ["192.0.2.0/24", "192.0.2.0/24"]},
        "apiAllowedCidrs",
        "listed twice",
    ),
    (
        "ssh-cidr-twice",
        {"sshAllowedCidrs": ["0.0.0.0/0", "0.0.0.0/0"]},
        "sshAllowedCidrs",
        "listed twice",
    ),
    # capacity: every port of the subnet counted, flannel's first /24 never leased
    (
        "subnet-vip-full",
        {
            "network": {"cidr": "10.10.0.0/27"},
            "controlPlane": {"endpoint": "vip"},
            "workerPools": [{"name": "a", "count": 25}],
        },
        "network.cidr",
        "1 VIP",
    ),
    (
        "subnet-octavia-full",
        {
            "network": {"cidr": "10.10.0.0/28"},
            "controlPlane": {"endpoint": "octavia"},
            "workerPools": [{"name": "a", "count": 6}],
        },
        "network.cidr",
        "load balancer",
    ),
    (
        "pod-22-four-nodes",
        {"podCidr": "10.244.0.0/22", "workerPools": [{"name": "a", "count": 3}]},
        "podCidr",
        "3 node subnets",
    ),
    # nowhere to run the add-ons' Deployments
    ("no-workers", {"workerPools": []}, "workerPools", "no worker can run"),
    (
        "empty-pools",
        {"workerPools": [{"name": "a", "count": 0}]},
        "workerPools",
        "no worker can run",
    ),
    (
        "tainted-pools",
        {
            "workerPools": [
                {"name": "a", "count": 2, "taints": [{"key": "x", "effect": "NoExecute"}]},
                {"name": "edge", "count": 2, "gateway": True},
            ]
        },
        "workerPools",
        "no worker can run",
    ),
    # keys and values the stack file got wrong
    ("flat-key", {"masters.count": 3}, "masters.count", "nest it"),
    (
        "snake-nested",
        {"masters": {"volume_size": 20}},
        "masters.volume_size",
        "did you mean volumeSize",
    ),
    ("snake-top", {"pod_cidr": "10.200.0.0/16"}, "pod_cidr", "did you mean podCidr"),
    ("yaml-empty-top", {"image": "null"}, "image", "has no value"),
    ("yaml-empty-nested", {"masters": {"flavor": None}}, "masters.flavor", "has no value"),
    # node groups: volumes, zones, placement
    (
        "volume-type-no-volume",
        {"masters": {"volumeType": "ssd"}},
        "masters.volumeType",
        "without volumeSize",
    ),
    (
        "volume-type-blank",
        {"workerPools": [{"name": "a", "count": 1, "volumeSize": 20, "volumeType": " "}]},
        "workerPools[0].volumeType",
        "blank",
    ),
    (
        "zone-twice",
        {"masters": {"count": 3, "availabilityZones": ["az1", "az1"]}},
        "masters.availabilityZones",
        "listed twice",
    ),
    (
        "zone-blank",
        {"discovery": {"availabilityZones": [""]}},
        "discovery.availabilityZones[0]",
        "blank",
    ),
    (
        "pool-zone-blank",
        {"workerPools": [{"name": "a", "count": 1, "availabilityZone": ""}]},
        "workerPools[0].availabilityZone",
        "blank",
    ),
    (
        "group-policy",
        {"masters": {"serverGroupPolicy": "affinity"}},
        "masters.serverGroupPolicy",
        "anti-affinity",
    ),
    # rollouts
    (
        "max-unavailable-bool",
        {"upgrade": {"maxUnavailable": True}},
        "upgrade.maxUnavailable",
        "count or a percentage",
    ),
    (
        "max-unavailable-zero",
        {"upgrade": {"maxUnavailable": 0}},
        "upgrade.maxUnavailable",
        "at least 1",
    ),
    (
        "max-unavailable-150",
        {"upgrade": {"maxUnavailable": "150%"}},
        "upgrade.maxUnavailable",
        "1% to 100%",
    ),
    (
        "max-unavailable-word",
        {"upgrade": {"maxUnavailable": "half"}},
        "upgrade.maxUnavailable",
        "1% to 100%",
    ),
]


@pytest.mark.parametrize("extra,key,why", [c[1:] for c in REFUSED], ids=[c[0] for c in REFUSED])
def test_refused(extra, key, why):
    """Each of a new user's bad inputs is refused with the key named and the key's own rule."""
    refused(key, why, **extra)


ACCEPTED = [
    (
        "legal-labels",
        {
            "workerPools": [
                {
                    "name": "a",
                    "count": 1,
                    "labels": {
                        "myk8s.io/team": "web",
                        "topology.kubernetes.io/zone": "az1",
                        "example.com/role": "",
                        "node.kubernetes.io/exclude-from-external-load-balancers": "true",
                        "kubernetes.io/arch": "amd64",
                        "beta.kubernetes.io/os": "linux",
                    },
                }
            ]
        },
    ),
    (
        "same-taint-other-effect",
        {
            "workerPools": [
                {
                    "name": "a",
                    "count": 1,
                    "taints": [
                        {"key": "gpu", "effect": "NoSchedule"},
                        {"key": "gpu", "effect": "NoExecute"},
                    ],
                },
                {"name": "b", "count": 1},
            ]
        },
    ),
    (
        "ssh-keys",
        {
            "sshPublicKeys": [
                ED25519,
                _ssh_key("ssh-rsa", b"\x01\x00\x01", b"\x00" + bytes(range(1, 129))),
                _ssh_key("ecdsa-sha2-nistp256", b"nistp256", b"\x04" + bytes(64)),
            ]
        },
    ),
    ("schedules", {"etcd": {"backup": {"schedule": "Mon *-02-29 03:00"}}}),
    ("mirror", {"packageMirror": "https://mirror.example:8443/k8s/pkgs"}),
    ("mirror-file", {"packageMirror": "file:///srv/mirror"}),
    (
        "slash-28-fits",
        {
            "network": {"cidr": "10.10.0.0/28"},
            "masters": {"count": 3},
            "discovery": {"count": 3},
            "workerPools": [{"name": "a", "count": 3}],
        },
    ),
    (
        "slash-27-vip",
        {
            "network": {"cidr": "10.10.0.0/27"},
            "controlPlane": {"endpoint": "vip"},
            "workerPools": [{"name": "a", "count": 14}],
        },
    ),
    (
        "pod-22-three-nodes",
        {"podCidr": "10.244.0.0/22", "workerPools": [{"name": "a", "count": 2}]},
    ),
    ("no-workers-no-addons", {"workerPools": [], **ADDONS_OFF}),
    (
        "prefer-no-schedule",
        {
            "workerPools": [
                {"name": "a", "count": 1, "taints": [{"key": "x", "effect": "PreferNoSchedule"}]}
            ]
        },
    ),
    ("resolver", {"network": {"dnsNameservers": ["10.10.0.2", "192.0.2.53"]}}),
    (
        "given-credential",
        {
            "openstack": {
                "applicationCredential": "given",
                "applicationCredentialId": "abc",
                "applicationCredentialSecret": "s3cret",
            }
        },
    ),
    (
        "node-groups",
        {
            "masters": {
                "count": 3,
                "volumeSize": 40,
                "volumeType": "ssd",
                "availabilityZones": ["a", "b", "c"],
                "serverGroupPolicy": "anti-affinity",
            },
            "workerPools": [
                {
                    "name": "a",
                    "count": 1,
                    "availabilityZone": "b",
                    "serverGroupPolicy": "soft-anti-affinity",
                }
            ],
        },
    ),
    ("max-unavailable-percent", {"upgrade": {"maxUnavailable": "100%"}}),
]


@pytest.mark.parametrize("extra", [c[1] for c in ACCEPTED], ids=[c[0] for c in ACCEPTED])
def test_accepted(extra):
    """What is legal stays legal: the refusals above are about the values, not the shape."""
    load(**extra)


def test_kubelet_labels_pass_through():
    """Labels the kubelet may set itself reach the settings unchanged."""
    s = load(
        workerPools=[{"name": "a", "count": 1, "labels": {"topology.kubernetes.io/zone": "az1"}}]
    )
    assert s.worker_pools[0].labels == {"topology.kubernetes.io/zone": "az1"}


def test_hint_is_the_fields_own():
    """csi.storageClass.name and workerPools[i].name share their last part with other keys
    (name): each error must explain its own field, not the cluster name's rule."""
    msg = refused(
        "csi.storageClass.name", "object name", csi={"storageClass": {"name": "Bad_Name"}}
    )
    assert "20 characters" not in msg and '"Bad_Name"' in msg
    assert "20 characters" in refused("clusterName", "DNS label", clusterName="Bad_Name")


def test_subnet_message_counts_every_port():
    """The refusal says what the ports are for, and what would fit."""
    msg = refused(
        "network.cidr",
        "addresses for",
        network={"cidr": "10.10.0.0/27"},
        controlPlane={"endpoint": "vip"},
        workerPools=[{"name": "a", "count": 25}],
    )
    assert "26 addresses for 28 ports (1 discovery, 1 master, 25 worker, 1 VIP" in msg
    assert "/26 or wider" in msg


def test_cluster_name_is_required_and_says_what_to_write():
    """The cluster name no longer follows the stack name (a rename would rebuild everything,
    and a stack named My_Stack was refused for a key never set): the error says the line."""
    raw = {k: v for k, v in BASE.items() if k != "clusterName"}
    assert settings.names.suggest_dns_label("My_Stack") == "my-stack"
    assert settings.names.suggest_dns_label("2024 Prod!") == "prod"
    with pytest.raises(
        settings.ConfigError,
        match=r"add `openstack-k8s:clusterName: my-stack` to Pulumi\.My_Stack\.yaml",
    ):
        settings.load(raw, "My_Stack")
    with pytest.raises(settings.ConfigError, match="clusterName: is required"):
        settings.load(raw, "dev")


def test_stack_files_are_valid():
    """Pulumi.dev.yaml and Pulumi.prod.yaml validate, each naming its cluster after itself;
    dev once its user has said where they connect from (it ships without: see the next test)."""
    import yaml

    from planning import CONNECT_FROM_CONFIG

    for stack, access in (("dev", CONNECT_FROM_CONFIG), ("prod", {})):
        config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        raw = {k.split(":", 1)[1]: v for k, v in config.items() if k.startswith("openstack-k8s:")}
        assert raw["clusterName"] == stack
        assert settings.load({**raw, **access}, stack).name == stack


def test_near_miss_namespace_is_refused():
    """openstack-k8:masters is a typo of the project's namespace, not another provider's."""
    bag = {"openstack-k8s:image": "x", "openstack-k8:masters": '{"count": 3}'}
    with pytest.raises(
        settings.ConfigError, match=r"^openstack-k8:masters: .*did you mean openstack-k8s:masters"
    ):
        settings.raw_from_pulumi(bag)
    for other in ("openstack:region", "pulumi:tags", "kubernetes:context", "openstack-k8s:image"):
        settings.raw_from_pulumi({other: "x"})
    for typo in ("OpenStack-K8s:image", "openstack_k8s:image", "openstackk8s:image"):
        with pytest.raises(settings.ConfigError, match="did you mean openstack-k8s:image"):
            settings.check_namespace(typo)


def test_plain_text_secret_is_refused_where_the_engine_says_what_is_secret():
    """A secret written in plain text into the stack file is refused (the fix is one command);
    the same value given with --secret is taken. Without the engine's list (mock engine), no check."""
    raw = {
        **BASE,
        "openstack": {
            "applicationCredential": "given",
            "applicationCredentialId": "abc",
            "applicationCredentialSecret": "s3cret",
        },
    }
    with pytest.raises(
        settings.ConfigError,
        match=r"openstack\.applicationCredentialSecret: is a secret in plain text.*--secret",
    ):
        settings.load(raw, "dev", secret_keys=set())
    assert (
        settings.load(
            raw, "dev", secret_keys={"openstack-k8s:openstack"}
        ).openstack.application_credential_secret
        == "s3cret"
    )
    assert settings.load(raw, "dev").openstack.application_credential_id == "abc"


PROGRAM = """
import pulumi.runtime.settings as runtime
import settings
runtime._set_stack("staging")  # what the language host does from its --stack argument
s = settings.from_pulumi()
print(s.name, s.masters.count, [p.name for p in s.worker_pools], s.external_network)
"""


def _run_cli_env(config: dict, secret_keys: list | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["PULUMI_CONFIG"] = json.dumps(config)
    if secret_keys is not None:
        env["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
    return subprocess.run(
        [sys.executable, "-c", PROGRAM], cwd=ROOT, env=env, capture_output=True, text=True
    )


CLI_CONFIG = {
    "openstack-k8s:clusterName": "staging",
    "openstack-k8s:externalNetwork": "public",
    "openstack-k8s:image": "debian-12",
    "openstack-k8s:masters": json.dumps({"count": 3}),
    "openstack-k8s:workerPools": json.dumps([{"name": "edge", "count": 1}]),
    "openstack-k8s:sshAllowedCidrs": json.dumps(["192.0.2.0/24"]),
    "openstack:region": "RegionOne",  # another namespace: ignored, not refused
}


def test_config_from_the_cli_environment():
    """`pulumi up` passes config as JSON in PULUMI_CONFIG (structured values as JSON text),
    not through the runtime's config bag the mock engine fills: the settings come from there."""
    out = _run_cli_env(CLI_CONFIG, [])
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[0] == "staging 3 ['edge'] public"


def test_missing_config_names_the_key():
    out = _run_cli_env({"openstack-k8s:clusterName": "staging", "openstack-k8s:image": "debian-12"})
    assert out.returncode != 0
    assert "openstack-k8s:externalNetwork: is required" in out.stderr


def test_plain_text_secret_through_the_cli():
    """The CLI lists secret keys in PULUMI_CONFIG_SECRET_KEYS: a plain-text secret is refused."""
    config = {
        **CLI_CONFIG,
        "openstack-k8s:openstack": json.dumps(
            {
                "applicationCredential": "given",
                "applicationCredentialId": "abc",
                "applicationCredentialSecret": "s3cret",
            }
        ),
    }
    out = _run_cli_env(config, [])
    assert out.returncode != 0
    assert (
        "openstack-k8s:openstack.applicationCredentialSecret: is a secret in plain text"
        in out.stderr
    )
    assert _run_cli_env(config, ["openstack-k8s:openstack"]).returncode == 0


def test_zones_round_robin_and_rollout_lanes():
    """Members spread over the zones in order (3 masters over 3 zones survive one's loss);
    a percentage of a pool is rounded up, at least one; the default is 20%."""
    s = load(
        masters={"count": 5, "availabilityZones": ["a", "b", "c"]},
        discovery={"count": 3, "availabilityZones": ["x"]},
        workerPools=[{"name": "p", "count": 2, "availabilityZone": "b"}],
    )
    assert [s.masters.zone(i) for i in range(5)] == ["a", "b", "c", "a", "b"]
    assert [s.discovery.zone(i) for i in range(3)] == ["x", "x", "x"]
    assert s.worker_pools[0].zone(7) == "b"
    assert load().masters.zone(0) is None
    assert load().upgrade.max_unavailable == "20%"
    lanes = {n: load().upgrade.lanes(n) for n in (1, 4, 5, 6, 10, 300)}
    assert lanes == {1: 1, 4: 1, 5: 1, 6: 2, 10: 2, 300: 60}
    # Three lanes of 100 would be longer than MAX_LANE_LENGTH: six lanes of 50.
    assert load(upgrade={"maxUnavailable": 3}).upgrade.lanes(300) == 6
    assert load(upgrade={"maxUnavailable": 3}).upgrade.lanes(150) == 3
