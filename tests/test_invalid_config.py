"""Bad stack config is refused by `python -m tools.plan` before anything is registered or
written: exit status 2, one line naming the key and saying why, no traceback."""

from __future__ import annotations

import pytest

from planning import CONNECT_FROM_CONFIG, run_plan

POOLS = '[{"name":"general","count":1}]'
# The operator's network: its subnet's range is what the cloud returns (the mock: 10.10.0.0/22).
EXISTING = 'network={"existing":{"networkId":"tenant-net","subnetId":"tenant-subnet"}}'

# (--set arguments, key the message must name, words the reason must contain)
CASES = [
    (("masters.count=2",), "masters.count", "odd"),
    (("masters.count=0",), "masters.count", "odd"),
    (("discovery.count=2",), "discovery.count", "1 or 3"),
    (("network.cidr=10.0.0.0/33",), "network.cidr", "valid IPv4 network"),
    (("network.cidr=8.8.8.0/24",), "network.cidr", "not a private range"),
    (("podCidr=10.10.0.0/16",), "podCidr", "overlaps network.cidr"),
    (("serviceCidr=10.244.0.0/16",), "serviceCidr", "overlaps podCidr"),
    (("podCidr=10.244.0.0/24",), "podCidr", "/22"),
    (("network.mtu=1300",), "network.mtu", "too small for VXLAN"),
    (("kubernetesVersion=v1.33.5",), "kubernetesVersion", "no 'v'"),
    (("kubernetesVersion=1.33",), "kubernetesVersion", "Kubernetes release"),
    (("kubernetesVersion=1.29.1",), "kubernetesVersion", "v1beta4"),
    (("bogusKey=1",), "bogusKey", "not a known config key"),
    (("masters.colour=blue",), "masters.colour", "not a known config key"),
    (('workerPools=[{"name":"a","count":1},{"name":"a","count":2}]',), "workerPools", "used twice"),
    (('workerPools=[{"name":"Big Pool","count":1}]',), "workerPools[0].name", "DNS label"),
    (
        ('workerPools=[{"name":"a","count":-1}]',),
        "workerPools[0].count",
        "greater than or equal to 0",
    ),
    (('workerPools=[{"name":"a","count":"many"}]',), "workerPools[0].count", "valid integer"),
    (
        ('workerPools=[{"name":"a","count":1,"taints":[{"key":"x","effect":"Sometimes"}]}]',),
        "workerPools[0].taints[0].effect",
        "NoSchedule",
    ),
    (
        ('workerPools=[{"name":"a","count":1,"labels":{"node-role.kubernetes.io/x":""}}]',),
        "workerPools[0].labels",
        "reserved",
    ),
    (("sshAllowedCidrs=[]",), "sshAllowedCidrs", "at least 1"),
    (('sshPublicKeys=["not a key"]',), "sshPublicKeys[0]", "OpenSSH public key"),
    (("externalNetwork=",), "externalNetwork", "empty or blank"),
    (("controlPlane.endpoint=f5",), "controlPlane.endpoint", "'vip' or 'octavia'"),
    (("packageMirror=ftp://mirror/",), "packageMirror", "http(s)://"),
    (("etcd.backup.keep=0",), "etcd.backup.keep", "greater than or equal to 1"),
    (("etcd.backup.schedule=every tuesday",), "etcd.backup.schedule", "OnCalendar"),
    (('workerPools=[{"name":"a","count":300}]',), "podCidr", "node subnets"),
    (
        ("network.cidr=10.10.0.0/28", 'workerPools=[{"name":"a","count":30}]'),
        "network.cidr",
        "addresses for",
    ),
    (("upgrade.maxUnavailable=0",), "upgrade.maxUnavailable", "must be at least 1"),
    # booleans are not counts, loopback is not a network, each field has its own hint
    (("masters.count=true",), "masters.count", "valid integer"),
    (("network.cidr=169.254.0.0/16",), "network.cidr", "link-local"),
    (("csi.storageClass.name=Bad_Name",), "csi.storageClass.name", "Kubernetes object name"),
    (('apiAllowedCidrs=["192.0.2.0/24","192.0.2.0/24"]',), "apiAllowedCidrs", "listed twice"),
    (("packageMirror=https://mirror.example/k8s?token=x",), "packageMirror", "query string"),
    (("etcd.backup.schedule=*-02-30",), "etcd.backup.schedule", "never fires"),
    (
        (
            "kubernetesVersion=1.99.0",
            "cloudController.enabled=false",
            "csi.enabled=false",
            "metricsServer.enabled=false",
        ),
        "kubernetesVersion",
        "newer than",
    ),
    (
        ('workerPools=[{"name":"a","count":2,"taints":[{"key":"x","effect":"NoSchedule"}]}]',),
        "workerPools",
        "no worker can run",
    ),
    (("masters.volume_size=20",), "masters.volume_size", "did you mean volumeSize"),
    # Checks on what the cloud returns are refused the same way (issue 23, class 1).
    ((EXISTING, "podCidr=10.8.0.0/14"), "podCidr", "overlaps the existing subnet tenant-subnet"),
    ((EXISTING, "serviceCidr=10.10.0.0/16"), "serviceCidr", "overlaps the existing subnet"),
    # One rule for control characters, one URL parser, the program's label namespace.
    (
        ('apiServer.oidc={"issuerUrl":"https://id.example.com","clientId":"k8s\\nadmin"}',),
        "apiServer.oidc.clientId",
        "a newline (U+000A)",
    ),
    (
        (
            'apiServer.oidc={"issuerUrl":"https://id.example.com","clientId":"k","groupsClaim":"g\\tx"}',
        ),
        "apiServer.oidc.groupsClaim",
        "a tab (U+0009)",
    ),
    (("imageRepository=registry.example.com/k8s/",), "imageRepository", "trailing slash"),
    (("imageRepository=registry.example.com//k8s",), "imageRepository", "empty path segment"),
    (("packageMirror=https://mirror.example.com:70000/k8s",), "packageMirror", "not a TCP port"),
    (
        (
            'workerPools=[{"name":"a","count":1,"labels":{"openstack-k8s.io/pool":"b"}},{"name":"b","count":1}]',
        ),
        "workerPools[0].labels",
        "openstack-k8s.io namespace",
    ),
]


@pytest.mark.parametrize("sets,key,why", CASES, ids=[c[1] + ":" + c[0][0][:30] for c in CASES])
def test_invalid_config_is_refused(tmp_path, sets, key, why):
    """One line, the key named as the user types it, the reason, exit 2, nothing written."""
    out = tmp_path / "plan"
    result = run_plan(out, "dev", sets)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: openstack-k8s:{key}: "), lines[0]
    assert why in lines[0], lines[0]
    assert "Traceback" not in result.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_table_is_large_enough():
    """The table covers many distinct invalid configurations, each with its own override."""
    assert len(CASES) >= 15
    assert len({c[0] for c in CASES}) == len(CASES)


def test_a_valid_override_is_accepted(tmp_path):
    """The same path syntax that is refused above works with good values (so the refusals are
    about the values, not the syntax)."""
    result = run_plan(tmp_path / "plan", "dev", ("masters.count=3", "workerPools[0].count=1"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "plan" / "user-data" / "dev-master-2.yaml").exists()


def test_a_slash_28_that_fits_plans(tmp_path):
    """The README promises /28 or larger: a /28 with room for every port is planned."""
    result = run_plan(tmp_path / "plan", "dev", ("network.cidr=10.10.0.0/28",))
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_check_on_what_the_cloud_returns_stops_the_program_before_any_resource(monkeypatch):
    """Under the engine (here the mock one), the existing subnet is read by an invoke before
    the first resource: an overlap is the program's RunError, one line naming the key, with
    nothing registered before it (a `pulumi up` creates nothing)."""
    import pulumi

    from tools import mockengine
    from tools import plan as P

    monitors = []

    class Kept(mockengine.Recorder):
        def __init__(self, mocks_):
            super().__init__(mocks_)
            monitors.append(self)

    monkeypatch.setattr(mockengine, "Recorder", Kept)
    existing = {"existing": {"networkId": "tenant-net", "subnetId": "tenant-subnet"}}
    access = list(CONNECT_FROM_CONFIG.items())  # the dev stack says where its user connects from
    raw, _ = P.load_stack("dev", [*access, ("network", existing), ("podCidr", "10.8.0.0/14")])
    with pytest.raises(pulumi.RunError) as refused:
        mockengine.evaluate(P.engine_config(raw), stack="dev", subnet="10.10.0.0/22")
    assert str(refused.value) == (
        "openstack-k8s:podCidr: 10.8.0.0/14 overlaps the existing subnet tenant-subnet "
        "(10.10.0.0/22); choose another podCidr"
    )
    assert len(monitors) == 1 and monitors[0].registrations == []
    # The same stack with a podCidr apart plans: the monitor records what a good run registers.
    raw, _ = P.load_stack("dev", [*access, ("network", existing)])
    mockengine.evaluate(P.engine_config(raw), stack="dev", subnet="10.10.0.0/22")
    assert len(monitors) == 2 and len(monitors[1].registrations) > 100


@pytest.mark.parametrize(
    "text, says",
    [
        (
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: [\n- level: : x\n",
            "is not YAML at line 4",
        ),
        ("", "is empty"),
        ("apiVersion: v1\nkind: Pod\n", "is not an audit.k8s.io/v1 Policy"),
    ],
)
def test_a_bad_audit_policy_file_is_refused_by_the_plan(tmp_path, text, says):
    """A file named by config: one line naming the key, the file and (for YAML) the line."""
    policy = tmp_path / "policy.yaml"
    policy.write_text(text)
    out = tmp_path / "plan"
    result = run_plan(out, "dev", (f'apiServer.audit={{"policy":"{policy}"}}',))
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines() == [
        f"error: openstack-k8s:apiServer.audit.policy: {policy} {says}"
        + result.stderr.strip().split(says, 1)[1]
    ]
    assert says in result.stderr and not out.exists()
