"""The discovery node's bootstrap, run for real: Debian's etcd, configured from the files
`discovery_cloud_config` renders, and the flannel seed script against it.

Nothing is faked. etcd is started from the rendered unit's ExecStart with the rendered
environment file; only paths (PKI, data dir) are relocated into a tmp dir. Member addresses are
loopback addresses other than 127.0.0.1 (127.0.0.2-4), so the node's "listen on the private
address and on 127.0.0.1" is exercised as rendered, on free ports.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import ipaddress
import json
import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from fakes import Clock
from validators import shellcheck, verdict
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cloud_init import SCRIPTS, discovery, script
from cloud_init.discovery import DiscoveryMember, DiscoverySpec, discovery_cloud_config

ETCD = "/usr/bin/etcd"
ETCDCTL = "/usr/bin/etcdctl"
SEED = SCRIPTS / "discovery-seed-flannel.sh"
POD_CIDR = "10.244.0.0/16"
EXPECTED = {
    "Network": POD_CIDR,
    "SubnetLen": 24,
    "Backend": {"Type": "vxlan", "VNI": 1, "Port": 8472},
}


# A missing tool fails the tests that need it (tools/test.sh installs them); never a skip.
def require(*paths: str, package: str):
    missing = [p for p in paths if not os.access(p, os.X_OK)]
    assert not missing, (
        f"{', '.join(missing)} missing: install Debian's {package} (tools/test.sh does)"
    )


@pytest.fixture
def etcd_installed():
    require(ETCD, ETCDCTL, package="etcd-server and etcd-client")


needs_etcd = pytest.mark.usefixtures("etcd_installed")


# --- PKI -------------------------------------------------------------------------------------


class CA:
    """A throwaway CA signing member certificates shaped like the program's."""

    def __init__(self, cn: str):
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(self.key, hashes.SHA256())
        )
        self.pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, name: str, address: str) -> tuple[str, str]:
        """Member cert: ECDSA P-256, server+client auth, SANs address, 127.0.0.1, localhost, name."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.IPAddress(ipaddress.ip_address(address)),
                        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                        x509.DNSName("localhost"),
                        x509.DNSName(name),
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return (
            cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
        )


@pytest.fixture(scope="session")
def ca() -> CA:
    return CA("discovery-etcd-ca")


# --- rendering -------------------------------------------------------------------------------


def free_port(*addresses: str) -> int:
    """A port free on every one of `addresses` right now."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind((addresses[0], 0))
            port = s.getsockname()[1]
        try:
            for a in addresses:
                with socket.socket() as s:
                    s.bind((a, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no common free port")


def make_specs(ca: CA, count: int, **fields) -> list[DiscoverySpec]:
    members = tuple(
        DiscoveryMember(f"test-discovery-{i}", f"127.0.0.{2 + i}") for i in range(count)
    )
    peer_port = free_port(*(m.address for m in members))
    specs = []
    for m in members:
        cert, key = ca.issue(m.name, m.address)
        specs.append(
            DiscoverySpec(
                name=m.name,
                address=m.address,
                members=members,
                ca_cert_pem=ca.pem,
                cert_pem=cert,
                key_pem=key,
                pod_cidr=POD_CIDR,
                peer_port=peer_port,
                client_port=free_port(m.address, "127.0.0.1"),
                **fields,
            )
        )
    return specs


def write_files(cfg: dict) -> dict[str, dict]:
    return {f["path"]: f for f in cfg["write_files"]}


def unit_service(cfg: dict) -> dict[str, str]:
    """[Service] of the rendered unit, parsed as systemd would (here: no repeated keys)."""
    section, service = None, {}
    for line in write_files(cfg)[discovery.UNIT_PATH]["content"].splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        elif "=" in line and section == "Service":
            k, v = line.split("=", 1)
            service[k] = v
    return service


def parse_env_file(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")
    )


class Member:
    """One etcd member started the way the node's etcd.service starts it, paths relocated."""

    def __init__(self, spec: DiscoverySpec, root: Path):
        self.spec, self.root = spec, root
        self.cfg = discovery_cloud_config(spec)
        self.pki = root / "pki"
        self.pki.mkdir(parents=True, exist_ok=True)
        for path, f in write_files(self.cfg).items():
            if path.startswith(discovery.PKI_DIR + "/"):
                (self.pki / Path(path).name).write_text(f["content"])
        self.proc: subprocess.Popen | None = None

    def relocate(self, value: str) -> str:
        return value.replace(discovery.PKI_DIR, str(self.pki)).replace(
            discovery.DATA_DIR, str(self.root / "data")
        )

    def environment(self) -> dict[str, str]:
        service = unit_service(self.cfg)
        env_text = write_files(self.cfg)[service["EnvironmentFile"]]["content"]
        return {k: self.relocate(v) for k, v in parse_env_file(env_text).items()}

    def start(self) -> None:
        argv = shlex.split(unit_service(self.cfg)["ExecStart"])
        assert argv[0] == ETCD
        self.log = open(self.root / "etcd.log", "ab")
        self.proc = subprocess.Popen(
            argv,
            env={"PATH": "/usr/bin:/bin", **self.environment()},
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def etcdctl(
        self,
        *args: str,
        cert: tuple[Path, Path] | None | bool = True,
        check: bool = True,
        endpoint: str | None = None,
        timeout: float = 20,
    ) -> subprocess.CompletedProcess:
        """etcdctl v3 against this member, with its own cert (default), another one, or none."""
        flags = [
            f"--endpoints={endpoint or f'https://127.0.0.1:{self.spec.client_port}'}",
            f"--cacert={self.pki / 'ca.crt'}",
            # Refused clients retry until a timeout: keep those short.
            f"--dial-timeout={'2s' if cert else '1s'}",
            f"--command-timeout={'5s' if cert else '1s'}",
        ]
        if cert is True:
            cert = (self.pki / "server.crt", self.pki / "server.key")
        if cert:
            flags += [f"--cert={cert[0]}", f"--key={cert[1]}"]
        return subprocess.run(
            [ETCDCTL, *flags, *args],
            env={"PATH": "/usr/bin:/bin", "ETCDCTL_API": "3"},
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def wait_healthy(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc and self.proc.poll() is None, (self.root / "etcd.log").read_text()[
                -3000:
            ]
            if self.etcdctl("endpoint", "health", check=False).returncode == 0:
                return
            time.sleep(0.2)
        raise AssertionError("etcd not healthy:\n" + (self.root / "etcd.log").read_text()[-3000:])

    def seed_command(self, **overrides: str) -> tuple[list[str], dict[str, str]]:
        """The rendered runcmd entry for the seed script, relocated to the repo's script."""
        entries = [e for e in self.cfg["runcmd"] if discovery.SEED_SCRIPT_PATH in e]
        assert len(entries) == 1
        argv = shlex.split(entries[0])
        assert argv[-3:] == ["||", "exit", "1"], argv
        argv = argv[:-3]
        assert argv[0] == "env" and argv[-1] == discovery.SEED_SCRIPT_PATH
        env = {k: self.relocate(v) for k, v in (a.split("=", 1) for a in argv[1:-1])}
        env.update(overrides)
        return [str(SEED)], {"PATH": os.environ["PATH"], **env}

    def seed(self, timeout: float = 60, **overrides: str) -> subprocess.CompletedProcess:
        argv, env = self.seed_command(**overrides)
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)

    def get_config(self) -> dict:
        """etcdctl's JSON answer for flannel's key: header revision, mod_revision, value."""
        return json.loads(self.etcdctl("get", discovery.FLANNEL_CONFIG_KEY, "-w", "json").stdout)


@pytest.fixture
def members(tmp_path):
    """Factory of Members; every etcd it started is stopped, whatever the test did."""
    started: list[Member] = []

    def make(spec: DiscoverySpec) -> Member:
        m = Member(spec, tmp_path / spec.name)
        started.append(m)
        return m

    try:
        yield make
    finally:
        for m in started:
            m.stop()


def value_of(get_json: dict) -> dict:
    (kv,) = get_json["kvs"]
    return json.loads(base64.b64decode(kv["value"]))


# --- static checks ---------------------------------------------------------------------------


def user_data(part: dict) -> str:
    cfg = {
        "users": [
            {
                "name": "ops",
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "ssh_authorized_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB test"],
            }
        ],
        "package_update": True,
        **part,
    }
    return "#cloud-config\n" + yaml.safe_dump(cfg, sort_keys=False)


def validate(text: str) -> str:
    return verdict(text)


@pytest.mark.skipif(
    not os.path.exists("/usr/bin/cloud-init"), reason="Debian's cloud-init not installed"
)
@pytest.mark.parametrize("count", [1, 3])
def test_user_data_passes_cloud_init_strict_schema(ca, count):
    """Debian 12's cloud-init (22.4) must accept the discovery user-data as it will be delivered."""
    require("/usr/bin/cloud-init", package="cloud-init")
    for spec in make_specs(ca, count):
        r = validate(user_data(discovery_cloud_config(spec)))
        assert r == "valid", r


def test_strict_schema_check_can_fail(ca):
    """The validator above really rejects a bad cloud-config (else the test proves nothing)."""
    require("/usr/bin/cloud-init", package="cloud-init")
    part = discovery_cloud_config(make_specs(ca, 1)[0])
    part["write_files"][0]["mode"] = "0644"  # not a write_files key
    r = validate(user_data(part))
    assert r != "valid" and "mode" in r


def test_seed_script_passes_shellcheck():
    """Scripts shipped to nodes must pass shellcheck with no warning at all."""
    r = subprocess.run([shellcheck(), "-x", str(SEED)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_rendered_part_is_deterministic_and_ordered_for_first_boot(ca):
    """Key only after the packages exist, etcd never started blocking, the seed script last."""
    spec = make_specs(ca, 3)[1]
    cfg = discovery_cloud_config(spec)
    assert cfg == discovery_cloud_config(spec)
    assert set(cfg) == {"packages", "write_files", "runcmd"}
    assert cfg["packages"] == ["etcd-server", "etcd-client"]
    files = write_files(cfg)
    deferred = [p for p, f in files.items() if f.get("defer")]
    assert deferred == [discovery.KEY_PATH]
    assert files[discovery.KEY_PATH]["owner"] == "etcd:etcd"
    assert files[discovery.KEY_PATH]["permissions"] == "0600"
    # The script as shipped: lib/common.sh inlined.
    assert files[discovery.SEED_SCRIPT_PATH]["content"] == script(discovery.SEED_SCRIPT)
    service = unit_service(cfg)
    assert service["Restart"] == "on-failure" and service["User"] == "etcd"
    assert f"ConditionPathExists={discovery.KEY_PATH}" in files[discovery.UNIT_PATH]["content"]
    assert "--no-block" in cfg["runcmd"][1] and discovery.SEED_SCRIPT_PATH in cfg["runcmd"][-1]
    assert all(c.endswith(" || exit 1") for c in cfg["runcmd"])
    env = parse_env_file(files[discovery.ENV_PATH]["content"])
    assert env["ETCD_INITIAL_CLUSTER"] == ",".join(
        f"test-discovery-{i}=https://127.0.0.{2 + i}:{spec.peer_port}" for i in range(3)
    )
    assert env["ETCD_LISTEN_CLIENT_URLS"] == (
        f"https://127.0.0.3:{spec.client_port},https://127.0.0.1:{spec.client_port}"
    )


@pytest.mark.parametrize(
    "change, field",
    [
        (dict(members=()), "members"),
        (dict(name="nope"), "name"),
        (dict(pod_cidr="10.244.0.0/25"), "subnet_len"),
    ],
)
def test_bad_spec_is_refused_naming_the_field(ca, change, field):
    """A spec that would boot a broken member fails at render time, saying what is wrong."""
    spec = dataclasses.replace(make_specs(ca, 1)[0], **change)
    with pytest.raises(ValueError, match=field):
        discovery_cloud_config(spec)


# --- against a real etcd ---------------------------------------------------------------------


@needs_etcd
@pytest.mark.etcd
def test_seed_writes_config_once_and_rerun_is_a_no_op(ca, members):
    """Seeded config reads back as flannel expects; a second run writes nothing at all."""
    m = members(make_specs(ca, 1)[0])
    m.start()
    m.wait_healthy()
    r = m.seed()
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout
    first = m.get_config()
    assert value_of(first) == EXPECTED
    assert m.etcdctl(
        "get", "--print-value-only", discovery.FLANNEL_CONFIG_KEY
    ).stdout.strip() == json.dumps(EXPECTED)
    r = m.seed()
    assert r.returncode == 0, r.stderr
    assert "nothing written" in r.stdout
    second = m.get_config()
    assert second["kvs"][0]["mod_revision"] == first["kvs"][0]["mod_revision"]
    assert second["header"]["revision"] == first["header"]["revision"]


@needs_etcd
@pytest.mark.etcd
def test_data_survives_a_restart(ca, members):
    """A reboot restarts etcd on its data dir: the cluster and the config are kept."""
    m = members(make_specs(ca, 1)[0])
    m.start()
    m.wait_healthy()
    assert m.seed().returncode == 0
    m.stop()
    m.start()
    m.wait_healthy()
    assert value_of(m.get_config()) == EXPECTED


@needs_etcd
@pytest.mark.etcd
def test_clients_without_a_cert_of_the_ca_are_refused(ca, members, tmp_path):
    """The client port requires a certificate signed by the discovery CA (client-cert auth)."""
    m = members(make_specs(ca, 1)[0])
    m.start()
    m.wait_healthy()
    checked = 0
    for endpoint in (
        f"https://127.0.0.1:{m.spec.client_port}",
        f"https://{m.spec.address}:{m.spec.client_port}",
    ):
        assert (
            m.etcdctl("put", "/probe", "x", endpoint=endpoint).returncode == 0
        )  # control: with cert
        r = m.etcdctl("put", "/probe", "y", cert=None, check=False, endpoint=endpoint)
        assert r.returncode != 0, r.stdout
        checked += 1
    # A certificate from another CA is no better than none.
    stranger_cert, stranger_key = CA("stranger").issue("intruder", "127.0.0.1")
    (tmp_path / "s.crt").write_text(stranger_cert)
    (tmp_path / "s.key").write_text(stranger_key)
    r = m.etcdctl("put", "/probe", "z", cert=(tmp_path / "s.crt", tmp_path / "s.key"), check=False)
    assert r.returncode != 0, r.stdout
    assert m.etcdctl("get", "--print-value-only", "/probe").stdout.strip() == "x"
    # And it is the TLS handshake that refused them, not something else.
    log = (m.root / "etcd.log").read_text()
    assert log.count("client didn't provide a certificate") >= 2, log[-2000:]
    assert "certificate signed by unknown authority" in log, log[-2000:]
    assert checked == 2


@needs_etcd
@pytest.mark.etcd
def test_seed_waits_for_etcd_started_20s_late(ca, members):
    """Members boot in any order: the script keeps retrying until etcd answers."""
    m = members(make_specs(ca, 1)[0])
    argv, env = m.seed_command(SEED_TIMEOUT="60")
    seed = subprocess.Popen(
        argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(20)
        assert seed.poll() is None, "gave up before etcd was even started"
        m.start()
        out, err = seed.communicate(timeout=60)
    finally:
        if seed.poll() is None:
            seed.kill()
            seed.wait()
    assert seed.returncode == 0, err
    assert "wrote" in out
    assert value_of(m.get_config()) == EXPECTED


@needs_etcd
@pytest.mark.etcd
def test_seed_gives_up_at_its_deadline_with_a_clear_message(ca, members, tmp_path):
    """etcd never up: exit 1 at SEED_TIMEOUT, telling a human what to look at. On a fake
    clock that only the script's pauses move (2 s at most each): tries at 0, 2 and 4 s, then
    one at the deadline after the last second; each try's etcdctl is bounded for real."""
    m = members(make_specs(ca, 1)[0])  # never started
    clock = Clock(tmp_path)
    argv, env = m.seed_command(SEED_TIMEOUT="5")
    r = subprocess.run(argv, env={**env, **clock.env}, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert clock.sleeps() == [2.0, 2.0, 1.0]
    assert "did not become healthy within 5s" in r.stderr
    assert "journalctl -u etcd" in r.stderr
    assert r.stdout == ""


@needs_etcd
@pytest.mark.etcd
def test_a_different_existing_config_is_refused(ca, members):
    """Never silently repoint a live pod network: a different config stays, and the run fails."""
    m = members(make_specs(ca, 1)[0])
    m.start()
    m.wait_healthy()
    other = json.dumps({**EXPECTED, "Network": "10.50.0.0/16"})
    m.etcdctl("put", discovery.FLANNEL_CONFIG_KEY, other)
    before = m.get_config()
    r = m.seed()
    assert r.returncode == 3, r.stderr
    assert "different config" in r.stderr and "10.50.0.0/16" in r.stderr and "Refusing" in r.stderr
    after = m.get_config()
    assert after["kvs"][0]["mod_revision"] == before["kvs"][0]["mod_revision"]
    assert json.loads(
        m.etcdctl("get", "--print-value-only", discovery.FLANNEL_CONFIG_KEY).stdout
    ) == json.loads(other)


@needs_etcd
@pytest.mark.etcd
def test_same_config_written_differently_is_accepted(ca, members):
    """Only the meaning counts: the same JSON with other spacing is not a conflict."""
    m = members(make_specs(ca, 1)[0])
    m.start()
    m.wait_healthy()
    m.etcdctl("put", discovery.FLANNEL_CONFIG_KEY, json.dumps(EXPECTED, separators=(",", ":")))
    before = m.get_config()
    r = m.seed()
    assert r.returncode == 0, r.stderr
    assert m.get_config()["kvs"][0]["mod_revision"] == before["kvs"][0]["mod_revision"]


@needs_etcd
@pytest.mark.etcd
def test_three_members_bootstrap_and_seed_exactly_once(ca, members):
    """A static 3-member cluster forms from the three rendered configs; all three members seed
    at once (as their runcmds do) and exactly one write happens."""
    ms = [members(spec) for spec in make_specs(ca, 3)]
    for m in ms:
        m.start()
    seeds = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for argv, env in (m.seed_command(SEED_TIMEOUT="60") for m in ms)
    ]
    try:
        results = [(p.wait(timeout=90), *p.communicate()) for p in seeds]
    finally:
        for p in seeds:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [rc for rc, _, _ in results] == [0, 0, 0], results
    assert sum("wrote" in out for _, out, _ in results) == 1, results
    for m in ms:
        got = m.get_config()
        assert value_of(got) == EXPECTED
        assert got["kvs"][0]["version"] == 1
    members_list = ms[0].etcdctl("member", "list", "-w", "json").stdout
    assert sorted(x["name"] for x in json.loads(members_list)["members"]) == [
        m.spec.name for m in ms
    ]


def test_etcd_unit_passes_systemd_analyze_verify(ca, tmp_path):
    """systemd ignores (with a warning only) keys and values it does not understand: make sure
    every line of the rendered unit means something to Debian 12's systemd."""
    require("/usr/bin/systemd-analyze", package="systemd")
    cfg = discovery_cloud_config(make_specs(ca, 1)[0])
    unit = tmp_path / "etcd.service"
    unit.write_text(write_files(cfg)[discovery.UNIT_PATH]["content"])
    r = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    problems = [line for line in r.stderr.splitlines() if str(unit) in line]
    assert r.returncode == 0 and problems == [], r.stderr
    assert "ExecStart=/usr/bin/etcd" in unit.read_text()


def test_runcmd_as_cloud_init_writes_it_stops_at_the_first_failure(ca, tmp_path):
    """cloud-init joins runcmd into one sh script whose status is its last command's: a failing
    step must fail the script (so `cloud-init status` says error), whatever the caller appends."""
    require("/usr/bin/cloud-init", package="cloud-init")
    cfg = discovery_cloud_config(make_specs(ca, 1)[0])
    shellify = "import json, sys; from cloudinit.util import shellify; print(shellify(json.load(sys.stdin)), end='')"
    text = subprocess.run(
        ["/usr/bin/python3", "-c", shellify],
        input=json.dumps(cfg["runcmd"] + ["true"]),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    runcmd = tmp_path / "runcmd"
    runcmd.write_text(text)
    assert subprocess.run(["sh", "-n", str(runcmd)]).returncode == 0
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    (bin_dir / "systemctl").write_text(
        f'#!/bin/sh\necho "systemctl $*" >> {calls}\n[ "$1" != enable ]\n'
    )
    (bin_dir / "systemctl").chmod(0o755)
    r = subprocess.run(
        ["sh", str(runcmd)],
        env={"PATH": f"{bin_dir}:/usr/bin:/bin"},
        capture_output=True,
        text=True,
    )
    assert r.returncode == 1
    assert calls.read_text().splitlines() == [
        "systemctl daemon-reload",
        "systemctl enable --now --no-block etcd.service",
    ]
