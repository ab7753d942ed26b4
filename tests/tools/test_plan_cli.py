"""tools/plan as a user and a CI job meet it: every error path ends, in one line that names
what is wrong (the key, the file and line, the missing environment), and the paths Pulumi
itself accepts are accepted."""

from __future__ import annotations

import base64
import ipaddress
import re
import subprocess
import sys
import textwrap

import pytest
import yaml

from planning import CONNECT_FROM, CONNECT_FROM_CONFIG, ROOT, Plan, run_plan
from tools import mockengine, plan as P

# `--set` arguments for tools.plan.main: the dev stack plans once it says where it is reached from.
DEV_SETS = tuple(arg for s in CONNECT_FROM for arg in ("--set", s))
PORT = "openstack:networking/port:Port"
FLOATING_IP = "openstack:networking/floatingIp:FloatingIp"


def run_python(code: str, *args: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter at the repo root. The timeout only guards the suite
    against a hang (the defects these tests pin were endless loops); it measures nothing."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def test_a_self_caused_error_is_reported_not_looped_on(tmp_path):
    """The SDK re-raises an RPC's exception `from` itself; walking `__cause__` to the root
    must stop at a cycle (a self-cause, and a cause two steps round) and report the error."""
    out = run_python(
        """
        import sys
        from tools import plan
        a, b = RuntimeError("first"), ValueError("second")
        self_caused = RuntimeError("boom")
        self_caused.__cause__ = self_caused
        a.__cause__, b.__cause__ = b, a
        errors = iter([self_caused, a])
        def fail(*_):
            raise next(errors)
        plan.build = fail
        print(plan.main(["--out", sys.argv[1]]), plan.main(["--out", sys.argv[1]]))
    """,
        str(tmp_path / "out"),
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["1", "1"]
    first, second = out.stderr.strip().splitlines()
    assert first.endswith("RuntimeError: boom")
    assert second.endswith("ValueError: second")
    assert not (tmp_path / "out").exists()


def test_a_failing_mock_ends_the_plan_with_one_line(tmp_path):
    """End to end through the SDK: a resource the (mock) cloud refuses with a RuntimeError
    (what the mock raised when out of addresses) makes the plan exit 1 with the cloud's
    error; the SDK re-raises it from itself, and the plan used to spin on that forever."""
    out = run_python(
        """
        import sys
        from tools import mockengine, plan
        answer = mockengine.CloudMocks.register
        def refuse(self, reg):
            if reg.type == "openstack:compute/instance:Instance":
                raise RuntimeError("Quota exceeded for instances")
            return answer(self, reg)
        mockengine.CloudMocks.register = refuse
        sys.exit(plan.main(["--stack", "dev", "--out", sys.argv[1], *sys.argv[2:]]))
    """,
        str(tmp_path / "out"),
        *DEV_SETS,
    )
    assert out.returncode == 1, out.stderr[-3000:]
    line = one_line(out.stderr)
    assert line.startswith("error: the program failed while planning stack dev")
    assert line.endswith("RuntimeError: Quota exceeded for instances")
    assert not (tmp_path / "out").exists()


def test_a_small_subnet_that_fits_plans(tmp_path):
    """A /27 holds 14 workers, a master, the discovery node and the VIP in Neutron's terms
    (it hands out every address but network, gateway, DHCP port and broadcast): the plan
    that used to run out of mock addresses and hang now plans, every port inside the subnet."""
    sets = ("network.cidr=10.10.0.0/27", "workerPools[0].count=14", "controlPlane.endpoint=vip")
    result = run_plan(tmp_path / "plan", "dev", sets)
    assert result.returncode == 0, result.stderr[-3000:]
    plan = Plan.load(tmp_path / "plan", sets)
    assert len([n for n in plan.instances if "-worker-" in n]) == 14
    assert len(plan.of_type(PORT)) == 17  # 16 nodes and the VIP
    subnet = ipaddress.IPv4Network("10.10.0.0/27")
    outputs = plan.data["outputs"]
    private = outputs["masterAddresses"] + [
        a for pool in outputs["workerAddresses"].values() for a in pool
    ]
    assert len(private) == 15 and all(ipaddress.ip_address(a) in subnet for a in private)


def _port(mocks: mockengine.CloudMocks, typ: str, name: str) -> dict:
    from pulumi.runtime.mocks import MockResourceArgs

    _, out = mocks.new_resource(MockResourceArgs(typ=typ, name=name, inputs={}, custom=True))
    return out


def test_mock_fixed_ips_are_neutrons_pool_and_running_out_says_so():
    """A /28 gives 12 ports (Neutron keeps network, gateway, DHCP port and broadcast);
    the 13th is refused with an error naming the subnet and the port, not a division by
    zero or a bare 'full'."""
    mocks = mockengine.CloudMocks("10.10.0.0/28", "dev")
    got = [_port(mocks, PORT, f"p{i}")["allFixedIps"][0] for i in range(12)]
    assert len(set(got)) == 12
    net = ipaddress.IPv4Network("10.10.0.0/28")
    reserved = {str(net[0]), str(net[1]), str(net[2]), str(net[-1])}
    assert set(got) == {str(a) for a in net} - reserved
    assert _port(mocks, PORT, "p3")["allFixedIps"] == [got[3]]  # stable per name
    with pytest.raises(mockengine.AddressesExhausted, match=r"10\.10\.0\.0/28 for p12: all 12"):
        _port(mocks, PORT, "p12")


def test_mock_floating_ips_last_past_256_nodes():
    """A pool with floatingIp on 600 nodes must plan: past TEST-NET-3's 252 addresses the
    mock keeps answering, with distinct addresses."""
    mocks = mockengine.CloudMocks("10.10.0.0/16", "dev")
    got = [_port(mocks, FLOATING_IP, f"n{i}-fip")["address"] for i in range(600)]
    assert len(set(got)) == 600
    assert sum(a.startswith("203.0.113.") for a in got) == 252


def test_an_index_past_the_end_of_a_list_is_refused_in_one_line(tmp_path):
    """`workerPools[10000000]` padded the list up to it (14 GB); the index may reach the
    end of the list (which adds an entry), no further."""
    result = run_plan(tmp_path / "out", "dev", ("workerPools[3].count=1",))
    assert result.returncode == 2
    line = one_line(result.stderr)
    assert "--set workerPools[3].count" in line and "past the end of a list of 1" in line
    assert not (tmp_path / "out").exists()
    raw = {"workerPools": [{"name": "a"}]}
    with pytest.raises(P.UsageError, match=r"workerPools\[10000000\]\.count: index 10000000"):
        P.set_path(raw, "workerPools[10000000].count", 1)
    assert raw == {"workerPools": [{"name": "a"}]}
    P.set_path(raw, "workerPools[1].name", "b")
    assert raw == {"workerPools": [{"name": "a"}, {"name": "b"}]}


@pytest.mark.parametrize(
    "key, parts",
    [
        (
            'workerPools[0].labels["example.com/role"]',
            ["workerPools", 0, "labels", "example.com/role"],
        ),
        ('a["dotted.key"].b', ["a", "dotted.key", "b"]),
        ('a["say \\"hi\\""]', ["a", 'say "hi"']),
        ("masters.count", ["masters", "count"]),
    ],
)
def test_pulumi_path_syntax_is_parsed(key, parts):
    """The keys `pulumi config set --path` takes, quoted names included."""
    assert P.parse_path(key) == parts


@pytest.mark.parametrize("key", ["a..b", "[0].a", "a[x]", 'a["b"', "a.", ".a", 'a["b"]c'])
def test_malformed_paths_are_refused(key):
    with pytest.raises(P.UsageError, match=re.escape(f"--set {key}:")):
        P.parse_path(key)


def test_a_quoted_label_key_reaches_the_join(tmp_path):
    """`workerPools[0].labels["example.com/role"]=web`, as Pulumi's docs write it, plans,
    and the label is in the kubelet's join configuration."""
    sets = ('workerPools[0].labels["example.com/role"]=web',)
    result = run_plan(tmp_path / "plan", "dev", sets)
    assert result.returncode == 0, result.stderr[-3000:]
    join = "dev-worker-general-0-join"
    stdin = Plan.load(tmp_path / "plan", sets).raw([join])[join]["stdin"]
    b64 = re.search(r"^export KUBEADM_JOIN_CONFIG_B64=(\S+)$", stdin, re.M).group(1).strip("'")
    assert "example.com/role=web" in base64.b64decode(b64).decode()


BAD_STACK_FILES = {
    "invalid YAML": (
        "config:\n  openstack-k8s:image: ubuntu\n  openstack-k8s:masters: {count: 3\n",
        r"Pulumi\.bad\.yaml:4: not valid YAML: ",
    ),
    "a list": ("- config\n- masters\n", r"Pulumi\.bad\.yaml:1: a stack file is a mapping"),
    "config is a list": (
        "config:\n  - openstack-k8s:image\n",
        r"Pulumi\.bad\.yaml:2: config: must be a mapping of keys to values, not a list",
    ),
    "a number as a key": (
        "config:\n  openstack-k8s:image: ubuntu\n  openstack-k8s:workerPools:\n"
        "    - name: a\n      labels:\n        1: web\n",
        r"Pulumi\.bad\.yaml:6: key '1' is not a string",
    ),
    "two documents": ("config: {}\n---\nconfig: {}\n", r"Pulumi\.bad\.yaml:2: not valid YAML: "),
}


@pytest.mark.parametrize("case", sorted(BAD_STACK_FILES))
def test_a_broken_stack_file_is_one_line_naming_file_and_line(case, tmp_path, monkeypatch, capsys):
    """Not YAML, not a mapping, or a key that is not a string: exit 2, one line with the
    file and line, where an AttributeError or a parser fragment came out."""
    text, expected = BAD_STACK_FILES[case]
    (tmp_path / "Pulumi.bad.yaml").write_text(text)
    monkeypatch.setattr(P, "ROOT", tmp_path)
    assert P.main(["--stack", "bad", "--out", str(tmp_path / "out")]) == 2
    line = one_line(capsys.readouterr().err)
    assert re.match(r"error: " + expected, line), line
    assert not (tmp_path / "out").exists()


def test_a_well_formed_stack_file_reads_as_before(tmp_path):
    """The checks change nothing for a good file: the real dev stack reads as YAML does."""
    path = ROOT / "Pulumi.dev.yaml"
    assert P.read_stack_file(path) == yaml.safe_load(path.read_text())
    (tmp_path / "Pulumi.empty.yaml").write_text("config:\n")
    assert P.read_stack_file(tmp_path / "Pulumi.empty.yaml") == {"config": None}


def test_without_cryptography_the_plan_names_the_environment_it_needs(tmp_path):
    """The deploy venv (requirements.txt, what tools/up.sh builds) has no `cryptography`;
    the plan then says which requirements file to install, in one line, instead of a
    ModuleNotFoundError from deep in the mock engine."""
    out = run_python(
        """
        import sys
        sys.modules["cryptography"] = None  # what an environment without it imports
        from tools import plan
        sys.exit(plan.main(["--stack", "dev", "--out", sys.argv[1], *sys.argv[2:]]))
    """,
        str(tmp_path / "out"),
        *DEV_SETS,
    )
    assert out.returncode == 2, out.stderr[-3000:]
    line = one_line(out.stderr)
    assert "pip install -r requirements-dev.txt" in line and "cryptography" in line
    assert not (tmp_path / "out").exists()


@pytest.fixture
def stack_file():
    """A throwaway Pulumi.<stack>.yaml next to the real ones: the dev stack, the addresses
    it is reached from (CONNECT_FROM), plus `extra`."""
    made = []

    def make(name: str, extra: str) -> str:
        path = ROOT / f"Pulumi.{name}.yaml"
        # Under config:, two spaces in, whatever the caller's indentation.
        access = yaml.safe_dump({f"openstack-k8s:{k}": v for k, v in CONNECT_FROM_CONFIG.items()})
        path.write_text(
            (ROOT / "Pulumi.dev.yaml").read_text()
            + textwrap.indent(access + textwrap.dedent(extra), "  ")
        )
        made.append(path)
        return name

    yield make
    for path in made:
        path.unlink()


def test_a_near_miss_namespace_in_the_stack_file_is_refused(tmp_path, stack_file):
    """The offline plan reads the stack file itself: a typo of the project's namespace must be
    named there too, not dropped with the providers' keys."""
    stack = stack_file("zz-typo", "openstack-k8:masters:\n  count: 3\n")
    result = run_plan(tmp_path / "plan", stack)
    assert result.returncode == 2
    assert one_line(result.stderr).startswith(
        "error: openstack-k8:masters: namespace 'openstack-k8' is not this project's"
    )


def test_a_plain_text_secret_in_the_stack_file_is_refused_offline(tmp_path, stack_file):
    given = """\
      openstack-k8s:openstack:
        applicationCredential: given
        applicationCredentialId: abc
        applicationCredentialSecret: {secret}
    """
    plain = stack_file("zz-plain", given.format(secret="plain-text"))
    result = run_plan(tmp_path / "plain", plain)
    assert result.returncode == 2
    assert "openstack.applicationCredentialSecret: is a secret in plain text" in one_line(
        result.stderr
    )
    secure = stack_file("zz-secure", given.format(secret="\n          secure: AAABAGZha2U="))
    result = run_plan(tmp_path / "secure", secure)
    assert result.returncode == 0, result.stderr[-2000:]


def test_a_previous_plan_that_is_none_or_another_stacks_is_refused_in_one_line(tmp_path):
    """--previous names what it cannot use, exits 2, and writes nothing."""
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "plan.json").write_text('{"stack": "prod", "resources": []}')
    for previous, want in (
        (tmp_path / "nothing", "--previous: " + str(tmp_path / "nothing" / "plan.json")),
        (tmp_path / "other", f"--previous {tmp_path / 'other'} is a plan of stack prod"),
    ):
        out = run_python(
            "import sys; from tools import plan; "
            "sys.exit(plan.main(['--stack', 'dev', '--previous', sys.argv[1], '--out', sys.argv[2]]))",
            str(previous),
            str(tmp_path / "out"),
        )
        assert out.returncode == 2, out.stderr
        assert one_line(out.stderr).startswith("error: " + want), out.stderr
        assert not (tmp_path / "out").exists()
