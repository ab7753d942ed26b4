"""etcd snapshots and restore, run for real against Debian's etcd on 127.0.0.1 (TLS).

The backup and restore scripts are the ones nodes receive; only `openstack` is faked (there is
no Swift here). Every etcd started here is killed by its PID, even when a test fails.
"""

import datetime
import ipaddress
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from validators import verdict
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fakes import FakeBin, run_remote

import cloud_init
from cloud_init import SCRIPTS, steps, userdata
from cloud_init.backup import (
    BACKUP_SCRIPT,
    KIT_SCRIPTS,
    RESTORE_SCRIPT,
    ROLE_DEFAULTS,
    SHORTHANDS,
    backup_cloud_config,
    openstack_rc_file,
    validate_schedule,
)

pytestmark = pytest.mark.etcd
BACKUP = SCRIPTS / "etcd-backup.sh"
RESTORE = SCRIPTS / "etcd-restore.sh"
SHELLCHECK = Path(sys.executable).parent / "shellcheck"
ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA and one cert (server + client auth, SAN 127.0.0.1), like the discovery node's."""
    d = tmp_path_factory.mktemp("pki")
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test etcd ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "etcd")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    (d / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (d / "server.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (d / "server.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (d / "server.key").chmod(0o600)
    return {
        "cacert": str(d / "ca.crt"),
        "cert": str(d / "server.crt"),
        "key": str(d / "server.key"),
    }


class Etcd:
    """One etcd member on free 127.0.0.1 ports; start() waits for health, bounded."""

    def __init__(self, pki, data_dir: Path, name="member-0"):
        self.pki, self.data_dir, self.name = pki, data_dir, name
        self.client = f"https://127.0.0.1:{_free_port()}"
        self.peer = f"http://127.0.0.1:{_free_port()}"
        self.proc = None

    def start(self):
        log = open(self.data_dir.parent / f"{self.name}.log", "ab")
        self.proc = subprocess.Popen(
            [
                ETCD,
                "--name",
                self.name,
                "--data-dir",
                str(self.data_dir),
                "--listen-client-urls",
                self.client,
                "--advertise-client-urls",
                self.client,
                "--listen-peer-urls",
                self.peer,
                "--initial-advertise-peer-urls",
                self.peer,
                "--initial-cluster",
                f"{self.name}={self.peer}",
                "--cert-file",
                self.pki["cert"],
                "--key-file",
                self.pki["key"],
                "--trusted-ca-file",
                self.pki["cacert"],
                "--client-cert-auth",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"etcd exited {self.proc.returncode}; see {log.name}")
            if self.ctl("endpoint", "health", check=False).returncode == 0:
                return self
            time.sleep(0.2)
        raise AssertionError(f"etcd not healthy on {self.client} within 20s; see {log.name}")

    def ctl(self, *args, check=True):
        return subprocess.run(
            [
                ETCDCTL,
                "--endpoints",
                self.client,
                "--cacert",
                self.pki["cacert"],
                "--cert",
                self.pki["cert"],
                "--key",
                self.pki["key"],
                "--dial-timeout=2s",
                *args,
            ],
            capture_output=True,
            text=True,
            check=check,
            env={**os.environ, "ETCDCTL_API": "3"},
            timeout=30,
        )

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


@pytest.fixture
def etcd_factory(pki, tmp_path):
    started = []

    def make(data_dir: Path, name="member-0", like: Etcd | None = None):
        e = Etcd(pki, data_dir, name)
        if like:  # same ports: a restored member keeps its peer URL
            e.client, e.peer = like.client, like.peer
        started.append(e)
        return e.start()

    try:
        yield make
    finally:
        for e in started:
            e.stop()


def _backup_env(etcd: Etcd, pki, backup_dir: Path, **extra) -> dict:
    return {
        "PATH": os.environ["PATH"],
        "ETCDCTL_ENDPOINTS": etcd.client,
        "ETCD_CACERT": pki["cacert"],
        "ETCD_CERT": pki["cert"],
        "ETCD_KEY": pki["key"],
        "BACKUP_DIR": str(backup_dir),
        "NAME": etcd.name,
        "KEEP": "3",
        **extra,
    }


def _run(script: Path, env: dict, *args, timeout=60):
    return subprocess.run(
        ["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=timeout
    )


def test_backup_destroy_restore_serves_the_same_keys(etcd_factory, pki, tmp_path):
    """The whole disaster: keys written, snapshot by the backup script, etcd killed, data
    directory destroyed, restore script, a fresh etcd on the restored directory serves them."""
    data = tmp_path / "data"
    etcd = etcd_factory(data)
    keys = {
        f"/coreos.com/network/subnets/10.244.{i}.0-24": json.dumps({"PublicIP": f"10.0.0.{i}"})
        for i in range(20)
    }
    for k, v in keys.items():
        etcd.ctl("put", k, v)

    backups = tmp_path / "backups"
    run = _run(BACKUP, _backup_env(etcd, pki, backups))
    assert run.returncode == 0, run.stdout + run.stderr
    snapshots = sorted(backups.glob("member-0-*.db"))
    assert len(snapshots) == 1
    assert not list(backups.glob(".*.part")), "temporary file left behind"

    etcd.stop()
    shutil.rmtree(data)

    run = _run(
        RESTORE,
        {
            "PATH": os.environ["PATH"],
            "DATA_DIR": str(data),
            "NAME": etcd.name,
            "INITIAL_ADVERTISE_PEER_URLS": etcd.peer,
        },
        str(snapshots[0]),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Next steps" in run.stdout
    assert oct(data.stat().st_mode & 0o777) == "0o700"

    restored = etcd_factory(data, like=etcd)
    got = restored.ctl("get", "/coreos.com/network/subnets/", "--prefix", "-w", "json").stdout
    kvs = json.loads(got)["kvs"]
    import base64

    served = {
        base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode() for kv in kvs
    }
    assert len(served) == 20 and served == keys


def test_restore_refuses_a_live_or_non_empty_data_dir(etcd_factory, pki, tmp_path):
    """The restore must never pull a data directory from under a running etcd, and needs
    --force to replace a stopped one, which it keeps aside rather than deleting."""
    data = tmp_path / "data"
    etcd = etcd_factory(data)
    etcd.ctl("put", "k", "before")
    backups = tmp_path / "b"
    assert _run(BACKUP, _backup_env(etcd, pki, backups)).returncode == 0
    snapshot = str(next(backups.glob("*.db")))
    env = {
        "PATH": os.environ["PATH"],
        "DATA_DIR": str(data),
        "NAME": etcd.name,
        "INITIAL_ADVERTISE_PEER_URLS": etcd.peer,
    }

    live = _run(RESTORE, env, "--force", snapshot)
    assert live.returncode == 3 and "still running" in live.stderr, live.stderr

    etcd.stop()
    refused = _run(RESTORE, env, snapshot)
    assert refused.returncode == 3 and "--force" in refused.stderr
    assert (data / "member").is_dir()

    forced = _run(RESTORE, env, "--force", snapshot)
    assert forced.returncode == 0, forced.stderr
    kept = list(tmp_path.glob("data.before-restore-*"))
    assert len(kept) == 1 and (kept[0] / "member" / "snap" / "db").exists()
    assert etcd_factory(data, like=etcd).ctl("get", "k", "--print-value-only").stdout == "before\n"


def test_retention_keeps_exactly_keep(etcd_factory, pki, tmp_path):
    """KEEP+2 runs leave exactly KEEP snapshots: the newest ones, and only this member's."""
    etcd = etcd_factory(tmp_path / "data")
    backups = tmp_path / "backups"
    backups.mkdir()
    other = backups / "other-member-20000101T000000.000Z.db"
    other.write_bytes(b"not ours")
    made = []
    for i in range(5):
        etcd.ctl("put", "run", str(i))
        run = _run(BACKUP, _backup_env(etcd, pki, backups, KEEP="3"))
        assert run.returncode == 0, run.stderr
        made.append(run.stdout.split("saved ")[1].split(" ")[0])
    left = sorted(str(p) for p in backups.glob("member-0-*.db"))
    assert len(made) == 5 and len(set(made)) == 5
    assert left == sorted(made)[-3:]
    assert other.exists()


def test_upload_calls_openstack_with_container_and_object(etcd_factory, pki, tmp_path):
    """With SWIFT_CONTAINER, the snapshot goes to `openstack object create` with the
    application credential from OPENSTACK_RC in its environment."""
    etcd = etcd_factory(tmp_path / "data")
    fake = tmp_path / "bin"
    fake.mkdir()
    calls = tmp_path / "calls"
    (fake / "openstack").write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$*" "$OS_APPLICATION_CREDENTIAL_ID" >>"{calls}"\n'
        'cmp -s "${@: -1}" "${@: -1}" && [ -s "${@: -1}" ]\n'
    )
    (fake / "openstack").chmod(0o755)
    rc = tmp_path / "openrc"
    rc.write_text(
        openstack_rc_file(
            auth_url="https://keystone.example:5000/v3",
            credential_id="cred-id-1",
            credential_secret="s",
        )
    )
    backups = tmp_path / "backups"
    env = _backup_env(
        etcd,
        pki,
        backups,
        PATH=f"{fake}:{os.environ['PATH']}",
        SWIFT_CONTAINER="etcd-backups",
        OPENSTACK_RC=str(rc),
    )
    run = _run(BACKUP, env)
    assert run.returncode == 0, run.stdout + run.stderr
    snapshot = next(backups.glob("member-0-*.db"))
    args, cred = calls.read_text().splitlines()
    assert args == f"object create --name {snapshot.name} etcd-backups {snapshot}"
    assert cred == "cred-id-1"

    # a failing upload keeps the local snapshot and says so, with its own exit code
    (fake / "openstack").write_text(
        "#!/usr/bin/env bash\necho 'Unauthorized (HTTP 401)' >&2\nexit 1\n"
    )
    run = _run(BACKUP, env)
    assert run.returncode == 3
    assert "etcd-backups" in run.stderr and "snapshot kept" in run.stderr
    assert len(list(backups.glob("member-0-*.db"))) == 2


def test_backup_of_a_dead_etcd_fails_clearly_and_in_time(pki, tmp_path):
    """Nothing listening: the script gives up within its bound with an actionable message
    and leaves no snapshot or temporary file behind."""
    backups = tmp_path / "backups"
    env = {
        "PATH": os.environ["PATH"],
        "ETCDCTL_ENDPOINTS": f"https://127.0.0.1:{_free_port()}",
        "ETCD_CACERT": pki["cacert"],
        "ETCD_CERT": pki["cert"],
        "ETCD_KEY": pki["key"],
        "BACKUP_DIR": str(backups),
        "NAME": "m",
        "TIMEOUT": "2",
    }
    # Bounded: TIMEOUT=2 ends the snapshot (timeout(1) and etcdctl's own timeouts); a script
    # that hung would fail here at _run's 30 s guard, not at a wall-time assertion.
    run = _run(BACKUP, env, timeout=30)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "is etcd up" in run.stderr and env["ETCDCTL_ENDPOINTS"] in run.stderr
    assert "took over 2s" in run.stderr
    assert [p.name for p in backups.iterdir()] == [".lock"]


@pytest.mark.parametrize(
    "change, message",
    [
        ({"ETCDCTL_ENDPOINTS": "https://a:2379,https://b:2379"}, "exactly one endpoint"),
        ({"KEEP": "0"}, "KEEP=0"),
        ({"ETCD_CERT": "/nonexistent/cert"}, "cannot read /nonexistent/cert"),
        ({"SWIFT_CONTAINER": "c"}, "OPENSTACK_RC"),
    ],
)
def test_backup_refuses_bad_configuration(pki, tmp_path, change, message):
    """A misconfigured node says what is wrong (exit 2) instead of a half-made snapshot."""
    env = {
        "PATH": os.environ["PATH"],
        "ETCDCTL_ENDPOINTS": "https://127.0.0.1:1",
        "ETCD_CACERT": pki["cacert"],
        "ETCD_CERT": pki["cert"],
        "ETCD_KEY": pki["key"],
        "BACKUP_DIR": str(tmp_path / "b"),
        "NAME": "m",
        **change,
    }
    run = _run(BACKUP, env, timeout=20)
    assert run.returncode == 2 and message in run.stderr, run.stderr


@pytest.mark.parametrize("script", ["etcd-backup.sh", "etcd-restore.sh"])
def test_scripts_pass_shellcheck(script):
    """Shipped as is: shellcheck must have nothing to say."""
    run = subprocess.run(
        [str(SHELLCHECK), "-x", str(SCRIPTS / script)], capture_output=True, text=True
    )
    assert run.returncode == 0, run.stdout


# ---- cloud-config and schedule -------------------------------------------------------------


@pytest.mark.parametrize("role", ["master", "discovery"])
@pytest.mark.parametrize("container", [None, "etcd-backups"])
def test_cloud_config_part(role, container):
    """Both roles: strict cloud-init schema, the role's certificates in the environment file,
    the timer on the asked schedule, enabled; the credential only when uploading, mode 0600."""
    rc = (
        openstack_rc_file(auth_url="https://k:5000/v3", credential_id="i", credential_secret="s")
        if container
        else None
    )
    part = backup_cloud_config(
        role=role,
        name="node-0",
        schedule="*-*-* 00/6:00",
        keep=5,
        container=container,
        openstack_rc=rc,
    )
    files = {f["path"]: f for f in part["write_files"]}
    env = dict(
        line.split("=", 1) for line in files["/etc/default/etcd-backup"]["content"].splitlines()
    )
    for k, path in (("ETCD_CACERT", "cacert"), ("ETCD_CERT", "cert"), ("ETCD_KEY", "key")):
        assert env[k] == ROLE_DEFAULTS[role][path]
    assert env["KEEP"] == "5" and env["NAME"] == "node-0"
    timer = files["/etc/systemd/system/etcd-backup.timer"]["content"]
    assert "OnCalendar=*-*-* 00/6:00\n" in timer and "Persistent=true\n" in timer
    assert ["systemctl", "enable", "--now", "etcd-backup.timer"] in part["runcmd"]
    assert files["/usr/local/sbin/etcd-restore.sh"]["permissions"] == "0755"
    if container:
        assert files["/etc/etcd-backup/openrc"]["permissions"] == "0600"
        assert env["SWIFT_CONTAINER"] == container
        assert "python3-openstackclient" in part["packages"]
    else:
        assert "/etc/etcd-backup/openrc" not in files and "SWIFT_CONTAINER" not in env
    text = "#cloud-config\n" + yaml.safe_dump({"users": ["default"], **part}, sort_keys=False)
    assert verdict(text) == "valid"


def test_bundle_carries_no_script_text(monkeypatch, tmp_path):
    """The two operator paths run the kit's copies: an edit of etcd-backup.sh, etcd-restore.sh
    or lib/common.sh changes the kit (the edit bites) and leaves the bundle, hence the
    command that installs it, byte for byte the same; the unit still starts BACKUP_SCRIPT."""

    def bundle():
        return userdata.bundle_env(backup_cloud_config(role="master", name="m-0"))

    before, kit_before = bundle(), steps.step_kit_tar_b64(KIT_SCRIPTS)
    files = {f["path"]: f for f in backup_cloud_config(role="master", name="m-0")["write_files"]}
    for path, name in ((BACKUP_SCRIPT, "etcd-backup.sh"), (RESTORE_SCRIPT, "etcd-restore.sh")):
        assert files[path]["content"] == steps.command_file(name)
        assert files[path]["permissions"] == "0755"
    assert (
        "ExecStart=/usr/local/sbin/etcd-backup.sh\n"
        in (files["/etc/systemd/system/etcd-backup.service"]["content"])
    )
    edited = tmp_path / "scripts"
    shutil.copytree(SCRIPTS, edited)
    for name in (*KIT_SCRIPTS, "lib/common.sh"):
        with (edited / name).open("a") as f:
            f.write("# an edit\n")
    monkeypatch.setattr(cloud_init, "SCRIPTS", edited)
    assert steps.step_kit_tar_b64(KIT_SCRIPTS) != kit_before
    assert bundle() == before


def test_installed_paths_run_the_kit(tmp_path):
    """The bundle (node-install-bundle.sh) and the kit (node-ready.sh) installed under one
    root: /usr/local/sbin/etcd-restore.sh --help prints the kit copy's usage, and
    etcd-backup.sh runs the kit's backup, which refuses to run without its settings. The
    installed files name the kit by its absolute path: pointed here at this root's kit."""
    root = tmp_path / "root"
    kit = root / steps.STEP_KIT_DIR.lstrip("/")
    fakes = FakeBin(tmp_path, ["apt-get", "dpkg-query", "systemctl", "cloud-init", "chown"])
    env = userdata.bundle_env(backup_cloud_config(role="discovery", name="d-0"))
    r = run_remote(SCRIPTS / "node-install-bundle.sh", {**env, "ROOT_DIR": str(root)}, fakes.env())
    assert r.returncode == 0, r.stderr
    r = run_remote(
        SCRIPTS / "node-ready.sh",
        {"STEP_KIT_TAR_B64": steps.step_kit_tar_b64(KIT_SCRIPTS), "STEP_KIT_DIR": str(kit)},
        fakes.env(),
    )
    assert r.returncode == 0, r.stderr
    for path in (BACKUP_SCRIPT, RESTORE_SCRIPT):
        installed = root / path.lstrip("/")
        assert os.access(installed, os.X_OK)
        text = installed.read_text()
        assert f"exec bash {steps.STEP_KIT_DIR}/" in text
        installed.write_text(text.replace(steps.STEP_KIT_DIR, str(kit)))

    def run(path, *args):
        return subprocess.run(
            [str(root / path.lstrip("/")), *args],
            env={"PATH": os.environ["PATH"]},
            capture_output=True,
            text=True,
            timeout=60,
        )

    usage = run(RESTORE_SCRIPT, "--help")
    assert usage.returncode == 0, usage.stderr
    assert "Usage: etcd-restore.sh [--force] [SNAPSHOT]" in usage.stdout
    backup = run(BACKUP_SCRIPT)  # the kit's copy, by its path, without /etc/default/etcd-backup
    assert backup.returncode == 1, backup.stderr
    assert backup.stderr.startswith(f"{kit}/etcd-backup.sh: line ")
    assert "ETCDCTL_ENDPOINTS must be the etcd client URL to snapshot" in backup.stderr


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(schedule="every hour"), "schedule"),
        (dict(keep=0), "keep"),
        (dict(role="worker"), "role"),
        (dict(container="c"), "openstack_rc"),
        (dict(name="a b"), "name"),
        (dict(endpoints="https://a:2379,https://b:2379"), "exactly one endpoint"),
    ],
)
def test_cloud_config_refuses_bad_input(change, match):
    """Bad settings fail at render time, naming the field."""
    args = dict(role="master", name="m-0", keep=3) | change
    with pytest.raises(ValueError, match=match):
        backup_cloud_config(**args)


def _systemd_accepts(*values: str) -> bool:
    return (
        subprocess.run(["systemd-analyze", "calendar", *values], capture_output=True).returncode
        == 0
    )


GOOD = [
    *SHORTHANDS,
    "Hourly",
    "*:00/15",
    "*:0,30",
    "Mon..Fri 02:30",
    "mon,fri 2:0",
    "Sat *-*-* 03:00:00",
    "*-*-01 00:00",
    "2099-01-01 00:00",
    "*-*-1..7/2 3:00",
    "1..5/2:00:00",
    "Mon",
    "*-*-*",
    "00/6:00",
    "Monday..Sunday 23:59:59",
]
BAD = [
    "",
    " hourly",
    "every hour",
    "12:60",
    "24:00",
    "*/2:00",
    "*:0/0",
    "Fri..Mon 1:00",
    "5..3:00",
    "*-13-01",
    "2200-01-01",
    "00:00 UTC",
    "Mon  02:00",
    "02:00:00:00",
    "Moon 1:00",
    "*-*-0 00:00",
    "1:00 Mon",
    "23/1:00",
    "*-*-31/1",
    "9..9:00",
]


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_schedule_validation_agrees_with_systemd():
    """Every schedule we accept, systemd accepts; the known-bad ones we refuse (systemd
    accepts a few of them, e.g. timezones: outside our documented subset, refused clearly)."""
    for value in GOOD:
        assert validate_schedule(value) == value
    assert _systemd_accepts(*GOOD)
    for value in BAD:
        with pytest.raises(ValueError, match="OnCalendar"):
            validate_schedule(value)
    # random values from the grammar: what we accept must be accepted by systemd
    rng = random.Random(5)
    accepted = []
    for _ in range(400):

        def comp(high):
            a = rng.randint(0, high + 3)
            return rng.choice(
                [
                    "*",
                    str(a),
                    f"{a}..{min(a + rng.randint(-2, 5), 99)}",
                    f"{a}/{rng.randint(0, 4)}",
                    f"{a},{rng.randint(0, high)}",
                ]
            )

        value = " ".join(
            filter(
                None,
                [
                    rng.choice(["", "Mon", "Tue..Thu", "sat,sun"]),
                    rng.choice(["", f"*-{comp(12)}-{comp(31)}"]),
                    f"{comp(23)}:{comp(59)}" + rng.choice(["", f":{comp(59)}"]),
                ],
            )
        )
        try:
            accepted.append(validate_schedule(value))
        except ValueError:
            continue
    assert len(accepted) > 50
    # one systemd-analyze call for all (it fails if any value is bad); name the culprits if so
    if not _systemd_accepts(*accepted):
        assert [v for v in accepted if not _systemd_accepts(v)] == []
