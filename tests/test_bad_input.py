"""Bad input, round three (issue 23): each class is refused by one rule, in one place, with
one line naming the key. The control-character rule is checked over every string value a
full config holds; every length limit at the limit and one past it."""

from __future__ import annotations

import os
import re

import pytest

import settings
from rules import urls

BASE = {
    "clusterName": "t",
    "externalNetwork": "public",
    "image": "debian-12",
    "sshAllowedCidrs": ["192.0.2.0/24"],
}
POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"
KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl me@laptop"


def refused(key: str, why: str, raw: dict) -> str:
    """`raw` is refused with one line that names `key` and says `why`."""
    with pytest.raises(settings.ConfigError) as e:
        settings.load(raw)
    assert e.value.key == key, str(e.value)
    assert why in str(e.value), str(e.value)
    assert "\n" not in str(e.value) and "\t" not in str(e.value)
    return str(e.value)


def full_config(policy: str) -> dict:
    """A valid config that sets a string in as many places as a stack can: every string
    leaf of it is a place a control character must be refused."""
    return {
        **BASE,
        "kubernetesVersion": "1.33.5",
        "network": {"existing": {"networkId": "tenant-net", "subnetId": "tenant-subnet"}},
        "discovery": {
            "flavor": "m1.small",
            "volumeSize": 20,
            "volumeType": "ssd",
            "availabilityZones": ["az1"],
            "floatingIp": False,
            "metadata": {"backup-policy": "daily"},
        },
        "access": {"bastion": {"host": "bastion.example.com", "user": "ops"}},
        "apiServer": {
            "encryption": {"provider": "aescbc"},
            "audit": {"policy": policy},
            "oidc": {
                "issuerUrl": "https://id.example.com/realms/k8s",
                "clientId": "kubernetes",
                "usernameClaim": "email",
                "groupsClaim": "groups",
                "caFile": "/etc/ssl/oidc-ca.pem",
            },
        },
        "masters": {
            "flavor": "m1.large",
            "volumeSize": 40,
            "volumeType": "ssd",
            "availabilityZones": ["az1", "az2", "az3"],
            "count": 3,
            "serverGroupPolicy": "anti-affinity",
            "metadata": {"team": "platform"},
        },
        "workerPools": [
            {
                "name": "edge",
                "count": 2,
                "flavor": "m1.medium",
                "volumeSize": 40,
                "volumeType": "ssd",
                "availabilityZone": "az2",
                "serverGroupPolicy": "soft-anti-affinity",
                "labels": {"example.com/team": "web"},
                "taints": [{"key": "example.com/edge", "value": "yes", "effect": "NoSchedule"}],
                "metadata": {"team": "web"},
            },
            {"name": "general", "count": 2},
        ],
        "apiAllowedCidrs": ["192.0.2.0/24"],
        "sshPublicKeys": [KEY],
        "packageMirror": "https://mirror.example.com/k8s",
        "imageRepository": "registry.example.com:5000/kubernetes",
        "controlPlane": {"endpoint": "octavia", "dnsName": "api.example.com"},
        "etcd": {
            "backup": {
                "schedule": "daily",
                "container": "etcd-backups",
                "applicationCredential": "given",
                "applicationCredentialId": "backup-ac-id",
                "applicationCredentialSecret": "b4ckup",
            }
        },
        "upgrade": {"maxUnavailable": "50%"},
        "csi": {"storageClass": {"name": "cinder-ssd", "volumeType": "ssd"}},
        "cloudController": {"lbProvider": "ovn"},
        "openstack": {
            "applicationCredential": "given",
            "applicationCredentialId": "ac-id",
            "applicationCredentialSecret": "s3cret",
        },
    }


def _string_leaves(value, key: str = "", path: tuple = ()):
    """(config key as the error names it, path of dict keys and list indexes, the string)."""
    if isinstance(value, str):
        yield key, path, value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _string_leaves(v, f"{key}.{k}" if key else k, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _string_leaves(v, f"{key}[{i}]", (*path, i))


def _put(raw: dict, path: tuple, value) -> dict:
    """A copy of `raw` with the leaf at `path` set to `value`."""
    import copy

    raw = copy.deepcopy(raw)
    node = raw
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return raw


def _string_fields(model=None, prefix: str = "") -> set[str]:
    """Dotted keys (no indexes) of every field of the settings model that takes a string."""
    model = model or settings.Settings
    out = set()
    for alias, f in settings._fields(model).items():
        key = f"{prefix}{alias}"
        sub = settings._nested_model(f.annotation)
        if sub is not None:
            out |= _string_fields(sub, key + ".")
        elif _takes_str(f.annotation):
            out.add(key)
    return out


def _takes_str(annotation) -> bool:
    todo = [annotation]
    while todo:
        a = todo.pop()
        if a is str:
            return True
        todo.extend(getattr(a, "__args__", ()))
    return False


@pytest.fixture
def policy(tmp_path):
    path = tmp_path / "audit-policy.yaml"
    path.write_text(POLICY)
    return str(path)


def test_the_full_config_is_valid_and_covers_every_string_field(policy):
    """The config the control-character rule is tried on sets every string field but the
    ones it cannot hold together (the model's own list, so a new field is not forgotten)."""
    raw = full_config(policy)
    settings.load(raw)
    leaves = {re.sub(r"\[\d+\]", "", k) for k, _, _ in _string_leaves(raw)}
    # A map's keys and values are its field's strings (labels).
    given = {".".join(k.split(".")[:n]) for k in leaves for n in range(1, k.count(".") + 2)}
    # The bastion's key may span lines (below); the existing network excludes network.cidr.
    assert _string_fields() - given == {"access.bastion.privateKey"}, _string_fields() - given


def test_a_control_character_in_any_string_value_is_refused_naming_its_key(policy):
    """Class 3: one rule for every string the config holds, since each reaches a flag, a
    file, a unit or a script on the nodes (the OIDC client id became a kube-apiserver flag)."""
    raw = full_config(policy)
    leaves = list(_string_leaves(raw))
    assert len(leaves) >= 35, len(leaves)
    for key, path, value in leaves:
        where = len(value) // 2
        for bad in ("\n", "\t", "\r", "\x1b", "\x7f", "\u2028"):
            spoilt = _put(raw, path, value[:where] + bad + value[where:])
            refused(key, f"(U+{ord(bad):04X}) at position {where + 1}", spoilt)


@pytest.mark.parametrize(
    "labels, says",
    [({"a\nb": "x"}, "the key 'a\\nb' contains a newline"), ({"team": "w\teb"}, "a tab")],
)
def test_a_control_character_in_a_map_key_or_value_is_refused(labels, says):
    key = "workerPools[0].labels" + ("" if "\n" in next(iter(labels)) else ".team")
    refused(key, says, {**BASE, "workerPools": [{"name": "a", "count": 1, "labels": labels}]})


def test_the_bastion_private_key_may_span_lines():
    """The one multi-line value: a PEM key the SSH client reads, never sent to a node."""
    pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEA\n-----END OPENSSH PRIVATE KEY-----\n"
    raw = {
        **BASE,
        "discovery": {"floatingIp": False},
        "access": {"bastion": {"host": "b.example.com", "user": "ops", "privateKey": pem}},
    }
    assert settings.load(raw).access.bastion.private_key == pem
    assert settings._marked_paths("multiline") == ["access.bastion.privateKey"]


# --- class 2: a file named by config ---------------------------------------------------------


POLICY_FILES = {
    "not-yaml": "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [\n- level: : x\n",
    "tabs": "apiVersion: audit.k8s.io/v1\n\tkind: Policy\n",
    "not-policy": "apiVersion: v1\nkind: Pod\n",
    "a-list": "- apiVersion: audit.k8s.io/v1\n",
    "empty": "",
    "comments-only": "# nothing here\n\n",
    "two-documents": POLICY + "---\n" + POLICY,
    "binary": b"\xff\xfe\x00k",
}


def _policy_file(tmp_path, kind: str) -> str:
    path = tmp_path / "policy.yaml"
    content = POLICY_FILES.get(kind)
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    elif kind == "directory":
        path.mkdir()
    elif kind == "unreadable":
        path.write_text(POLICY)
        path.chmod(0)
        if os.geteuid() == 0:
            # root reads any file: a path through a file is one root cannot read either.
            return str(path / "policy.yaml")
    return str(path)


@pytest.mark.parametrize(
    "kind, says",
    [
        ("not-yaml", "is not YAML at line 4, column"),
        ("tabs", "is not YAML at line 2, column 1"),
        ("not-policy", "is not an audit.k8s.io/v1 Policy"),
        ("a-list", "is not an audit.k8s.io/v1 Policy"),
        ("empty", "is empty"),
        ("comments-only", "is empty"),
        ("two-documents", "is not YAML at line 5"),
        ("binary", "is not UTF-8 text"),
        ("directory", "is a directory, not a file"),
        ("unreadable", "cannot read"),
        ("missing", "no such file"),
    ],
)
def test_a_bad_audit_policy_file_is_one_line_naming_key_file_and_line(tmp_path, kind, says):
    """Class 2: whatever is wrong with the file, one line naming the key and the file."""
    path = _policy_file(tmp_path, kind)
    raw = {**BASE, "apiServer": {"audit": {"policy": path}}}
    msg = refused("apiServer.audit.policy", says, raw)
    assert path in msg, msg


def test_a_good_policy_file_is_read_once_with_the_config(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    s = settings.load({**BASE, "apiServer": {"audit": {"policy": str(path)}}})
    path.write_text("changed after the config was read")
    assert s.api_server.audit.policy_text == POLICY
    assert settings.load(BASE).api_server.audit.policy_text is None


# --- class 4: URL and repository shapes ------------------------------------------------------

URLS = [
    ("imageRepository", "registry.example.com//kubernetes", "empty path segment"),
    ("imageRepository", "registry.example.com/kubernetes/", "ends with '/'"),
    ("imageRepository", "registry.example.com/", "ends with '/'"),
    ("imageRepository", "registry.example.com:0/k8s", "not a TCP port"),
    ("imageRepository", "registry.example.com:65536/k8s", "not a TCP port"),
    ("imageRepository", "registry.example.com:/k8s", "not a TCP port"),
    ("imageRepository", "registry..example.com/k8s", "DNS labels"),
    ("imageRepository", "-registry.example.com/k8s", "DNS labels"),
    ("imageRepository", "registry.example.com/Kubernetes", "lowercase"),
    ("imageRepository", "registry.example.com/k8s-", "lowercase"),
    ("imageRepository", "https://registry.example.com/k8s", "not a TCP port"),
    ("packageMirror", "https://mirror.example.com:70000/k8s", "not a TCP port"),
    ("packageMirror", "https://mirror.example.com:0/k8s", "not a TCP port"),
    ("packageMirror", "https://mirror.example.com//k8s", "empty path segment"),
    ("packageMirror", "https://mirror..example.com/k8s", "DNS labels"),
    ("packageMirror", "https://:8080/k8s", "has no host"),
    ("packageMirror", "file://host/srv/mirror", "names no host"),
    ("packageMirror", "https://mirror.example.com/k8s/", "ends with '/'"),
    ("apiServer.oidc.issuerUrl", "https://id.example.com:99999", "not a TCP port"),
    ("apiServer.oidc.issuerUrl", "https://id.example.com//realms", "empty path segment"),
    ("apiServer.oidc.issuerUrl", "http://id.example.com", "https://"),
    ("apiServer.oidc.issuerUrl", "https://id.example.com/?x=1", "query string"),
]
URLS_OK = [
    ("imageRepository", "registry.example.com"),
    ("imageRepository", "registry.example.com:65535/a/b__c/d-e.f"),
    ("imageRepository", "10.0.0.5:5000/mirror"),
    ("packageMirror", "https://mirror.example.com:1/k8s"),
    ("packageMirror", "file:///srv/mirror"),
    ("apiServer.oidc.issuerUrl", "https://id.example.com/realms/k8s/"),  # Auth0-style slash
    ("apiServer.oidc.issuerUrl", "https://id.example.com:8443"),
]


def _url_config(key: str, value: str) -> dict:
    if key == "apiServer.oidc.issuerUrl":
        return {**BASE, "apiServer": {"oidc": {"issuerUrl": value, "clientId": "k8s"}}}
    return {**BASE, key: value}


@pytest.mark.parametrize("key, value, says", URLS)
def test_a_url_the_nodes_would_fail_on_is_refused(key, value, says):
    """Class 4: every URL-ish key goes through rules.urls.parse."""
    refused(key, says, _url_config(key, value))


@pytest.mark.parametrize("key, value", URLS_OK)
def test_a_url_the_nodes_take_is_accepted(key, value):
    settings.load(_url_config(key, value))


def test_every_url_rule_is_the_one_parser(monkeypatch):
    """The three keys' rules all go through urls.parse (a parser that refuses everything
    makes each of them refuse)."""

    def nothing(*args, **kwargs):
        raise ValueError("refused by the parser")

    monkeypatch.setattr(urls, "parse", nothing)
    for key, value in URLS_OK:
        refused(key, "refused by the parser", _url_config(key, value))


# --- class 5: labels the program owns --------------------------------------------------------


@pytest.mark.parametrize(
    "pool, key",
    [
        ({"labels": {"openstack-k8s.io/pool": "other"}}, "workerPools[0].labels"),
        ({"labels": {"openstack-k8s.io/gateway": "true"}}, "workerPools[0].labels"),
        ({"labels": {"team.openstack-k8s.io/x": "y"}}, "workerPools[0].labels"),
        (
            {"taints": [{"key": "openstack-k8s.io/gateway", "effect": "NoSchedule"}]},
            "workerPools[0].taints[0].key",
        ),
    ],
)
def test_the_programs_own_label_namespace_is_refused(pool, key):
    raw = {**BASE, "workerPools": [{"name": "a", "count": 1, **pool}, {"name": "b", "count": 1}]}
    refused(key, "openstack-k8s.io namespace", raw)


def test_a_look_alike_namespace_is_the_users():
    raw = {
        **BASE,
        "workerPools": [{"name": "a", "count": 1, "labels": {"my-openstack-k8s.io/x": "y"}}],
    }
    assert settings.load(raw).worker_pools[0].labels == {"my-openstack-k8s.io/x": "y"}


# --- class 6: every length limit at the limit and one past it --------------------------------


def _dns_name(length: int) -> str:
    """A DNS name of `length` characters: 63-character labels and a tld."""
    labels, left = [], length - 4  # ".com"
    while left > 0:
        take = min(63, left)
        if take < left and left - take < 2:
            take -= 2
        labels.append("a" * take)
        left -= take + 1
    name = ".".join(labels)
    name = name[: length - 4] + ".com"
    assert len(name) == length
    return name


# (key, config from a value, the limit, a value of n characters, words of the refusal)
LIMITS = [
    ("clusterName", lambda v: {"clusterName": v}, 20, lambda n: "a" * n, "at most 20"),
    (
        "workerPools[0].name",
        lambda v: {"workerPools": [{"name": v, "count": 1}]},
        20,
        lambda n: "p" * n,
        "at most 20",
    ),
    (
        "etcd.backup.container",
        lambda v: {"etcd": {"backup": {"container": v}}},
        256,
        lambda n: "c" * n,
        "at most 256",
    ),
    (
        "workerPools[0].labels",
        lambda v: {"workerPools": [{"name": "a", "count": 1, "labels": {v: "x"}}]},
        63,
        lambda n: "k" * n,
        "1 to 63",
    ),
    (
        "workerPools[0].labels",
        lambda v: {"workerPools": [{"name": "a", "count": 1, "labels": {"k": v}}]},
        63,
        lambda n: "v" * n,
        "1 to 63",
    ),
    (
        "workerPools[0].labels",
        lambda v: {"workerPools": [{"name": "a", "count": 1, "labels": {f"{v}/k": "x"}}]},
        253,
        lambda n: _dns_name(n),
        "at most 253",
    ),
    (
        "workerPools[0].taints[0].key",
        lambda v: {
            "workerPools": [
                {"name": "a", "count": 1, "taints": [{"key": v, "effect": "NoSchedule"}]},
                {"name": "b", "count": 1},
            ]
        },
        63,
        lambda n: "t" * n,
        "1 to 63",
    ),
    (
        "controlPlane.dnsName",
        lambda v: {"controlPlane": {"dnsName": v}},
        253,
        lambda n: _dns_name(n),
        "fully qualified DNS name",
    ),
    (
        "csi.storageClass.name",
        lambda v: {"csi": {"storageClass": {"name": v}}},
        253,
        lambda n: _dns_name(n),
        "Kubernetes object name",
    ),
    (
        "access.bastion.host",
        lambda v: {
            "discovery": {"floatingIp": False},
            "access": {"bastion": {"host": v, "user": "ops"}},
        },
        253,
        lambda n: _dns_name(n),
        "host name",
    ),
    (
        "access.bastion.user",
        lambda v: {
            "discovery": {"floatingIp": False},
            "access": {"bastion": {"host": "b.example.com", "user": v}},
        },
        32,
        lambda n: "u" * n,
        "user name",
    ),
    (
        "imageRepository",
        lambda v: {"imageRepository": v},
        253,
        lambda n: _dns_name(n),
        "at most 253",
    ),
]


@pytest.mark.parametrize(
    "key, config, limit, value, says", LIMITS, ids=[f"{c[0]}-{c[2]}" for c in LIMITS]
)
def test_a_length_limit_takes_the_limit_and_refuses_one_past_it(key, config, limit, value, says):
    """Class 6: the limit a message states is the limit the rule applies."""
    at = value(limit)
    assert len(at) == limit
    settings.load({**BASE, **config(at)})
    past = value(limit + 1)
    assert len(past) == limit + 1
    msg = refused(key, says, {**BASE, **config(past)})
    stated = [int(n) for n in re.findall(r"\b(?:at most|1 to) (\d+)", msg)]
    assert not stated or limit in stated, msg
