"""Start, stop and report on the local OpenStack control plane (tools/openstack.sh runs it).

Every process is started here in a session of its own, its PID (with the kernel's start time,
so a reused PID is never signalled) appended to <run>/pids; `stop` ends exactly those process
groups, newest first. Every step has a deadline: a service that does not come up fails the run
with the tail of its log, and whatever was started is stopped again.

    python controlplane.py start|stop|status|env
Environment: OSK8S_OPENSTACK_RUN (run directory), OSK8S_OPENSTACK_VENV (the OpenStack venv),
OSK8S_OPENSTACK_COMPUTES (fake compute hosts, default 3).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import configs  # noqa: E402
from configs import PORTS, Layout  # noqa: E402

HERE = Path(__file__).resolve().parent
DEFAULT_RUN = Path("/tmp/osk8s-openstack")
EXTERNAL_NETWORK = "public"
IMAGE = "ubuntu-24.04-server-cloudimg-amd64"
FLAVOR = "m1.medium"


class StartError(Exception):
    pass


def layout_from_env() -> Layout:
    return Layout(
        run=Path(os.environ.get("OSK8S_OPENSTACK_RUN", DEFAULT_RUN)),
        venv=Path(os.environ.get("OSK8S_OPENSTACK_VENV", "")),
        computes=int(os.environ.get("OSK8S_OPENSTACK_COMPUTES", "3")),
    )


def say(message: str) -> None:
    print(f"openstack.sh: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- processes by PID


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks


def _alive(pid: int, started: str) -> bool:
    if _start_time(pid) != started:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    return state != "Z"


def recorded(layout: Layout) -> list[tuple[str, int, str]]:
    path = layout.run / "pids"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        name, pid, started = line.split()
        rows.append((name, int(pid), started))
    return rows


class Runner:
    def __init__(self, layout: Layout):
        self.layout = layout
        self.logs = layout.run / "log"
        self.procs: dict[str, subprocess.Popen] = {}
        # Deadlines read this clock and poll with this sleep (a test gives fake ones).
        self.clock = time.monotonic
        self.sleep = time.sleep

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env["PATH"] = f"{self.layout.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
        env["PYTHONPATH"] = str(HERE)
        env.update(extra or {})
        return env

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def start(self, name: str, argv: list[str], extra_env: dict[str, str] | None = None) -> None:
        with self.log(name).open("ab") as out:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env(extra_env),
                cwd=self.layout.run,
                start_new_session=True,
            )
        self.procs[name] = proc
        with (self.layout.run / "pids").open("a") as pids:
            pids.write(f"{name} {proc.pid} {_start_time(proc.pid)}\n")

    def run(
        self,
        name: str,
        argv: list[str],
        timeout: float,
        extra_env: dict[str, str] | None = None,
        log: bool = True,
    ) -> str:
        """A one-off command (a DB sync, a bootstrap): its output is appended to its log (and
        returned; with log=False only returned, for a command whose output is data)."""
        with self.log(name).open("ab") as out:
            out.write(f"$ {' '.join(argv)}\n".encode())
            out.flush()
            try:
                result = subprocess.run(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=self.env(extra_env),
                    cwd=self.layout.run,
                    timeout=timeout,
                )
            except subprocess.TimeoutExpired:
                raise StartError(
                    f"{name}: `{argv[0]}` did not finish within {timeout:.0f} s\n{self.tail(name)}"
                ) from None
            if log or result.returncode != 0:
                out.write(result.stdout)
        if result.returncode != 0:
            raise StartError(
                f"{name}: `{' '.join(argv)}` exited {result.returncode}\n{self.tail(name)}"
            )
        return result.stdout.decode(errors="replace")

    def run_all(self, jobs: dict[str, list[list[str]]], timeout: float) -> None:
        """Several sequences of one-off commands side by side (the DB syncs)."""
        import concurrent.futures

        def sequence(name: str, commands: list[list[str]]) -> None:
            for argv in commands:
                self.run(name, argv, timeout)

        with concurrent.futures.ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            futures = [pool.submit(sequence, name, commands) for name, commands in jobs.items()]
            errors = [f.exception() for f in futures if f.exception()]
        if errors:
            raise errors[0]

    def tail(self, name: str, lines: int = 40) -> str:
        try:
            text = self.log(name).read_text(errors="replace").splitlines()
        except OSError:
            return f"(no log at {self.log(name)})"
        return "\n".join(f"  | {line}" for line in text[-lines:]) + f"\n  (log: {self.log(name)})"

    def wait(
        self, name: str, check, timeout: float, what: str = "come up", log: str | None = None
    ) -> None:
        """Poll `check()` until true; fail at the deadline or as soon as `name` has died."""
        deadline = self.clock() + timeout
        log = log or name
        while True:
            try:
                if check():
                    return
            except Exception:  # noqa: BLE001 - a service that is still starting refuses in many ways
                pass
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is not None:
                raise StartError(
                    f"{name} exited with {proc.returncode} before it would {what}\n{self.tail(log)}"
                )
            if self.clock() > deadline:
                raise StartError(f"{name} did not {what} within {timeout:.0f} s\n{self.tail(log)}")
            self.sleep(0.5)


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def http_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status < 500
    except urllib.error.HTTPError as error:
        return error.code < 500


def stop(layout: Layout, grace: float = 20.0) -> int:
    """End every process group this control plane started, newest first; returns how many."""
    live = [
        (name, pid) for name, pid, started in reversed(recorded(layout)) if _alive(pid, started)
    ]
    for _, pid in live:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace
    rows = {pid: started for _, pid, started in recorded(layout)}
    while time.monotonic() < deadline and any(_alive(pid, rows[pid]) for _, pid in live):
        time.sleep(0.2)
    for name, pid in live:
        if _alive(pid, rows[pid]):
            say(f"{name} (PID {pid}) ignored SIGTERM for {grace:.0f} s: SIGKILL")
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    # Group members that outlive their leader (a gunicorn worker, erlang's helpers).
    for _, pid in live:
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    path = layout.run / "pids"
    if path.exists():
        path.rename(layout.run / "pids.stopped")
    return len(live)


# ---------------------------------------------------------------- the steps of `start`


def check_ports_free() -> None:
    busy = [f"{name} {port}" for name, port in PORTS.items() if port_open(port)]
    if busy:
        raise StartError(
            "ports already in use on 127.0.0.1: "
            + ", ".join(busy)
            + " (another control plane? `tools/openstack.sh stop`, or free them)"
        )


MARKER = ".osk8s-openstack-run"


def fresh_run_dir(layout: Layout) -> None:
    """Each start begins from an empty run directory; one this script did not make (a typo in
    OSK8S_OPENSTACK_RUN) is never wiped."""
    if layout.run.exists() and any(layout.run.iterdir()):
        if not (layout.run / MARKER).exists():
            raise StartError(
                f"{layout.run} is not empty and not a run directory of this script: not wiping it"
            )
        shutil.rmtree(layout.run)
    layout.run.mkdir(parents=True, exist_ok=True)
    (layout.run / MARKER).touch()
    for sub in [
        "log",
        "lock",
        "mysql",
        "rabbitmq",
        "ovn",
        "keystone",
        "glance",
        "nova",
        "neutron",
        "cinder",
    ]:
        (layout.run / sub).mkdir(parents=True, exist_ok=True)
    for index in range(1, layout.computes + 1):
        layout.ovs_dir(index).mkdir()
        (layout.run / "nova" / layout.compute_host(index)).mkdir()
    (layout.run / "octavia" / "certs").mkdir(parents=True)


def octavia_certs(layout: Layout) -> None:
    """A throwaway CA and client certificate for Octavia's amphora flows."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    certs = layout.run / "octavia" / "certs"
    now = datetime.datetime.now(datetime.UTC)

    def cert(subject: str, key, issuer_key, issuer_name, ca: bool):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer_name or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key or key, hashes.SHA256())
        )

    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_cert = cert("osk8s-octavia-ca", ca_key, None, None, True)
    passphrase = configs.octavia(layout)["certificates"]["ca_private_key_passphrase"].encode()
    (certs / "ca.key").write_bytes(
        ca_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.BestAvailableEncryption(passphrase),
        )
    )
    (certs / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client_cert = cert("osk8s-octavia-controller", client_key, ca_key, ca_cert.subject, False)
    (certs / "client.pem").write_bytes(
        client_cert.public_bytes(serialization.Encoding.PEM)
        + client_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )


def start_mariadb(r: Runner) -> None:
    layout = r.layout
    data = layout.run / "mysql" / "data"
    r.run(
        "mysql",
        [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={data}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        timeout=120,
    )
    r.start(
        "mysql",
        [
            "/usr/sbin/mariadbd",
            "--no-defaults",
            f"--datadir={data}",
            f"--socket={layout.mysql_socket}",
            f"--pid-file={layout.run / 'mysql' / 'mysqld.pid'}",
            "--skip-networking",
            "--user=root",
            "--skip-log-bin",
            "--innodb-buffer-pool-size=128M",
            # Throwaway data: no durability, and one tablespace (hundreds of tables load faster).
            "--innodb-flush-log-at-trx-commit=0",
            "--innodb-doublewrite=0",
            "--innodb-file-per-table=0",
            "--max-connections=2000",
            "--character-set-server=utf8mb4",
        ],
    )


def mysql(layout: Layout, sql: str) -> list[str]:
    return ["mariadb", "--no-defaults", f"--socket={layout.mysql_socket}", "-uroot", "-e", sql]


def start_rabbitmq(r: Runner) -> None:
    base = r.layout.run / "rabbitmq"
    (base / "enabled_plugins").write_text("[].\n")
    (base / "rabbitmq-env.conf").write_text("")
    (base / "rabbitmq.conf").write_text(
        f"loopback_users = none\nlisteners.tcp.default = 127.0.0.1:{PORTS['rabbitmq']}\n"
    )
    env = {
        "HOME": str(base),
        "ERL_EPMD_PORT": str(PORTS["epmd"]),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODENAME": "osk8s@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(PORTS["rabbitmq"]),
        "RABBITMQ_DIST_PORT": str(PORTS["rabbitmq-dist"]),
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(r.logs),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_PID_FILE": str(base / "rabbitmq.pid"),
    }
    # epmd is started here, on a port of ours, so that it is stopped by PID like the rest.
    r.start("epmd", ["epmd", "-port", str(PORTS["epmd"]), "-address", "127.0.0.1"], env)
    r.wait("epmd", lambda: port_open(PORTS["epmd"]), 15, "listen")
    r.start("rabbitmq", ["/usr/lib/rabbitmq/bin/rabbitmq-server"], env)


def ovsdb_server(
    r: Runner, name: str, db: Path, sock: Path, remotes: list[str], extra_env: dict[str, str]
) -> None:
    argv = ["ovsdb-server", str(db), f"--remote=punix:{sock}", *remotes]
    argv += [f"--unixctl={sock.parent / (name + '.ctl')}", "-vconsole:info", "-vsyslog:off"]
    r.start(name, argv, extra_env)


def start_ovn_central(r: Runner) -> None:
    ovn = r.layout.ovn_dir()
    env = {"OVS_RUNDIR": str(ovn), "OVN_RUNDIR": str(ovn)}
    for db, schema, port in (("nb", "ovn-nb", PORTS["ovn-nb"]), ("sb", "ovn-sb", PORTS["ovn-sb"])):
        r.run(
            f"ovn-{db}",
            ["ovsdb-tool", "create", str(ovn / f"{db}.db"), f"/usr/share/ovn/{schema}.ovsschema"],
            30,
        )
        ovsdb_server(
            r,
            f"ovn-{db}",
            ovn / f"{db}.db",
            ovn / f"{db}.sock",
            [f"--remote=ptcp:{port}:127.0.0.1"],
            env,
        )
    r.start(
        "ovn-northd",
        [
            "ovn-northd",
            f"--ovnnb-db=unix:{ovn / 'nb.sock'}",
            f"--ovnsb-db=unix:{ovn / 'sb.sock'}",
            f"--unixctl={ovn / 'northd.ctl'}",
            "-vconsole:info",
            "-vsyslog:off",
        ],
        env,
    )


def start_ovs(r: Runner, index: int) -> None:
    """One fake compute host's Open vSwitch: userspace datapath, in a network namespace of its
    own (its tap devices would collide with the other hosts' and have no business on the host)."""
    layout = r.layout
    ovs = layout.ovs_dir(index)
    env = {"OVS_RUNDIR": str(ovs), "OVN_RUNDIR": str(ovs)}
    r.run(
        f"ovs-{index}",
        ["ovsdb-tool", "create", str(ovs / "conf.db"), "/usr/share/openvswitch/vswitch.ovsschema"],
        30,
    )
    ovsdb_server(r, f"ovsdb-{index}", ovs / "conf.db", ovs / "db.sock", [], env)
    r.wait(f"ovsdb-{index}", lambda: (ovs / "db.sock").exists(), 15, "open its socket")
    host = layout.compute_host(index)
    vsctl = ["ovs-vsctl", f"--db=unix:{ovs / 'db.sock'}", "--no-wait", "--timeout=10"]
    r.run(f"ovs-{index}", [*vsctl, "init"], 30)
    r.run(
        f"ovs-{index}",
        [
            *vsctl,
            "set",
            "Open_vSwitch",
            ".",
            f"external_ids:system-id={host}",
            f"external_ids:hostname={host}",
            f"external_ids:ovn-remote=tcp:127.0.0.1:{PORTS['ovn-sb']}",
            "external_ids:ovn-encap-type=geneve",
            # Distinct per chassis: OVN's southbound DB keeps one chassis per encap address.
            f"external_ids:ovn-encap-ip=127.0.1.{index}",
            "external_ids:ovn-bridge=br-int",
            "external_ids:ovn-bridge-datapath-type=netdev",
            "external_ids:ovn-cms-options=enable-chassis-as-gw",
            "external_ids:ovn-bridge-mappings=public:br-ex",
        ],
        30,
    )
    r.run(
        f"ovs-{index}",
        [*vsctl, "add-br", "br-ex", "--", "set", "bridge", "br-ex", "datapath_type=netdev"],
        30,
    )
    r.start(
        f"ovs-vswitchd-{index}",
        [
            "unshare",
            "--net",
            "ovs-vswitchd",
            f"unix:{ovs / 'db.sock'}",
            f"--unixctl={ovs / 'vswitchd.ctl'}",
            "-vconsole:info",
            "-vsyslog:off",
        ],
        env,
    )


def start_ovn_controller(r: Runner, index: int) -> None:
    ovs = r.layout.ovs_dir(index)
    r.start(
        f"ovn-controller-{index}",
        [
            "ovn-controller",
            f"unix:{ovs / 'db.sock'}",
            "-vconsole:info",
            "-vsyslog:off",
        ],
        {"OVS_RUNDIR": str(ovs), "OVN_RUNDIR": str(ovs)},
    )


def db_syncs(layout: Layout) -> dict[str, list[list[str]]]:
    etc = layout.etc
    ks = ["keystone-manage", "--config-file", str(etc / "keystone" / "keystone.conf")]
    nova = ["nova-manage", "--config-file", str(etc / "nova" / "nova.conf")]
    root = ["--keystone-user", "root", "--keystone-group", "root"]
    return {
        "keystone-setup": [
            [*ks, "db_sync"],
            [*ks, "fernet_setup", *root],
            [*ks, "credential_setup", *root],
            [
                *ks,
                "bootstrap",
                "--bootstrap-password",
                configs.ADMIN_PASSWORD,
                "--bootstrap-region-id",
                configs.REGION,
                "--bootstrap-admin-url",
                configs.AUTH_URL,
                "--bootstrap-internal-url",
                configs.AUTH_URL,
                "--bootstrap-public-url",
                configs.AUTH_URL,
            ],
        ],
        "glance-setup": [
            ["glance-manage", "--config-file", str(etc / "glance" / "glance-api.conf"), "db_sync"]
        ],
        "placement-setup": [
            [
                "placement-manage",
                "--config-file",
                str(etc / "placement" / "placement.conf"),
                "db",
                "sync",
            ]
        ],
        "nova-setup": [
            [*nova, "api_db", "sync"],
            [*nova, "cell_v2", "map_cell0", "--database_connection", layout.db("nova_cell0")],
            [*nova, "cell_v2", "create_cell", "--name", "cell1"],
            [*nova, "db", "sync"],
        ],
        "neutron-setup": [
            [
                "neutron-db-manage",
                "--config-file",
                str(etc / "neutron" / "neutron.conf"),
                "--config-file",
                str(etc / "neutron" / "ml2_conf.ini"),
                "upgrade",
                "head",
            ]
        ],
        "octavia-setup": [
            [
                "octavia-db-manage",
                "--config-file",
                str(etc / "octavia" / "octavia.conf"),
                "upgrade",
                "head",
            ]
        ],
        "cinder-setup": [
            ["cinder-manage", "--config-file", str(etc / "cinder" / "cinder.conf"), "db", "sync"]
        ],
    }


# name -> (WSGI module, program name, config files under etc/, extra environment)
APIS: dict[str, tuple[str, str, list[str], dict[str, str]]] = {
    "keystone": ("keystone.wsgi.api", "keystone", ["keystone/keystone.conf"], {}),
    "glance": ("glance.wsgi.api", "glance-api", ["glance/glance-api.conf"], {}),
    "placement": ("placement.wsgi.api", "placement-api", ["placement/placement.conf"], {}),
    "nova": (
        "nova.wsgi.osapi_compute",
        "nova-api",
        ["nova/nova.conf"],
        {"OS_NOVA_CONFIG_FILES": "api-paste.ini;nova.conf"},
    ),
    "neutron": (
        "neutron.wsgi.api",
        "neutron-api",
        ["neutron/neutron.conf", "neutron/ml2_conf.ini"],
        # Neutron sizes its own worker pools from this under a WSGI/ASGI server.
        {"OS_NEUTRON_CONFIG_FILES": "neutron.conf;ml2_conf.ini", "ASGI_WORKERS": "1"},
    ),
    "cinder": ("cinder.wsgi.api", "cinder-api", ["cinder/cinder.conf"], {}),
    "octavia": ("octavia.wsgi.api", "octavia-api", ["octavia/octavia.conf"], {}),
}


# Keystone's auth-context middleware keeps the token it validated on the one middleware object
# of the process (`self.token`) and reads it back later in the request: with threads, a request
# can take a concurrent request's token, and with it that token's user's roles (an application
# credential then failed: "Could not find role assignment with role: <service role id>"). So
# Keystone serves one request per process at a time, in several processes.
WORKERS = {"keystone": ["--workers=4", "--worker-class=sync"]}


def start_api(r: Runner, name: str) -> None:
    module, prog, files, extra = APIS[name]
    etc = r.layout.etc
    paths = [str(etc / f) for f in files]
    env = {
        "OSK8S_WSGI_MODULE": module,
        "OSK8S_WSGI_PROG": prog,
        "OSK8S_WSGI_CONFIG": ":".join(paths),
        # The services that read their config directory from the environment, not argv.
        f"OS_{name.upper()}_CONFIG_DIR": str(etc / name),
        **extra,
    }
    r.start(
        name,
        [
            str(r.layout.venv / "bin" / "gunicorn"),
            f"--bind=127.0.0.1:{PORTS[name]}",
            *WORKERS.get(name, ["--workers=1", "--threads=8", "--worker-class=gthread"]),
            "--timeout=300",
            # No keep-alive: a client reusing a connection the server is just closing gets
            # "connection reset by peer" on a POST (seen from the Pulumi provider on Neutron).
            "--keep-alive=0",
            "--graceful-timeout=5",
            # Nova asks Neutron for a project's ports with every id in the query string: past
            # about 90 servers that line outgrows gunicorn's default 4094 bytes (a 500 from
            # an unfiltered server listing). 0: no limit, as Apache and uWSGI allow here.
            "--limit-request-line=0",
            f"--name=osk8s-{name}",
            f"--chdir={HERE}",
            "wsgi_app:application",
        ],
        env,
    )


def api_root(name: str) -> str:
    return configs.url(name) + ("/v3" if name == "keystone" else "/")


def daemons(layout: Layout) -> list[tuple[str, list[str]]]:
    etc = layout.etc
    nova = ["--config-file", str(etc / "nova" / "nova.conf")]
    neutron = [
        "--config-file",
        str(etc / "neutron" / "neutron.conf"),
        "--config-file",
        str(etc / "neutron" / "ml2_conf.ini"),
    ]
    cinder = ["--config-file", str(etc / "cinder" / "cinder.conf")]
    out = [
        ("nova-conductor", ["nova-conductor", *nova]),
        ("nova-scheduler", ["nova-scheduler", *nova]),
        ("neutron-ovn-maintenance", ["neutron-ovn-maintenance-worker", *neutron]),
        (
            "octavia-worker",
            ["octavia-worker", "--config-file", str(etc / "octavia" / "octavia.conf")],
        ),
        ("cinder-scheduler", ["cinder-scheduler", *cinder]),
        ("cinder-volume", ["cinder-volume", *cinder]),
    ]
    for index in range(1, layout.computes + 1):
        compute = ["--config-file", str(etc / "nova" / f"compute-{index}.conf")]
        out.append((f"nova-compute-{index}", ["nova-compute", *nova, *compute]))
    return out


def preflight(layout: Layout) -> None:
    try:
        if any(_alive(pid, started) for _, pid, started in recorded(layout)):
            raise StartError(f"already running from {layout.run}: `tools/openstack.sh stop` first")
        check_ports_free()
    except StartError as error:
        say(f"start refused: {error}")
        raise SystemExit(1) from None


def snapshot_dir(layout: Layout) -> Path:
    """Migrated databases (and Keystone's keys) are kept beside the venv and loaded on the next
    start: the migrations are most of a cold start. The snapshot holds the run directory's
    paths (Nova's cell mappings) and what the bootstrap wrote, so its key covers them and the
    sources that decide them."""
    sources = [(HERE / name).read_text() for name in ("configs.py", "controlplane.py")]
    material = json.dumps([str(layout.run), PORTS, *sources])
    key = hashlib.sha256(material.encode()).hexdigest()[:12]
    return layout.venv.parent / "db-snapshots" / key


def migrate(r: Runner) -> None:
    layout = r.layout
    snapshot = snapshot_dir(layout)
    keys = layout.run / "keystone"
    client = ["mariadb", "--no-defaults", f"--socket={layout.mysql_socket}", "-uroot"]
    if (snapshot / "complete").exists():
        r.run(
            "mysql", ["sh", "-c", f'exec "$@" < "{snapshot / "databases.sql"}"', "sh", *client], 120
        )
        for name in ("fernet-keys", "credential-keys"):
            shutil.copytree(snapshot / name, keys / name)
        say(f"databases loaded from {snapshot}")
        return
    create = "; ".join(f"CREATE DATABASE {db} CHARACTER SET utf8" for db in configs.DATABASES)
    r.run("mysql", mysql(layout, create), 30)
    r.run_all(db_syncs(layout), timeout=600)
    partial = snapshot.with_name(snapshot.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    dump = [
        "mariadb-dump",
        "--no-defaults",
        f"--socket={layout.mysql_socket}",
        "-uroot",
        "--single-transaction",
    ]
    sql = r.run("mysql", [*dump, "--databases", *configs.DATABASES], 120, log=False)
    (partial / "databases.sql").write_text(sql)
    for name in ("fernet-keys", "credential-keys"):
        shutil.copytree(keys / name, partial / name)
    (partial / "complete").touch()
    shutil.rmtree(snapshot, ignore_errors=True)
    partial.rename(snapshot)


def bring_up(r: Runner, mark) -> None:
    import seed

    layout = r.layout
    start_mariadb(r)
    start_rabbitmq(r)
    start_ovn_central(r)
    for index in range(1, layout.computes + 1):
        start_ovs(r, index)
    select = mysql(layout, "SELECT 1")
    r.wait(
        "mysql", lambda: subprocess.run(select, capture_output=True).returncode == 0, 60, "answer"
    )
    mark("infrastructure started")
    migrate(r)
    mark("databases ready")
    start_api(r, "keystone")
    r.wait("keystone", lambda: http_answers(api_root("keystone")), 120, "answer")
    for name in ("ovn-nb", "ovn-sb"):
        r.wait(name, lambda name=name: port_open(PORTS[name]), 30, "listen")
    for index in range(1, layout.computes + 1):
        start_ovn_controller(r, index)
    seed.identity()
    mark("keystone answering, catalog seeded")
    for name in APIS:
        if name != "keystone":
            start_api(r, name)
    r.wait("rabbitmq", lambda: port_open(PORTS["rabbitmq"]), 120, "listen")
    for name in APIS:
        r.wait(name, lambda name=name: http_answers(api_root(name)), 180, "answer")
    mark("all APIs answering")
    for name, argv in daemons(layout):
        r.start(name, argv)
    conn = seed.connect()
    hosts = [layout.compute_host(i) for i in range(1, layout.computes + 1)]
    r.wait("nova-compute-1", lambda: seed.compute_services_up(conn, hosts), 180, "report up")
    discover = [
        "nova-manage",
        "--config-file",
        str(layout.etc / "nova" / "nova.conf"),
        "cell_v2",
        "discover_hosts",
    ]
    r.run("nova-setup", discover, 120)
    r.wait("nova-compute-1", lambda: seed.hypervisors(conn) >= len(hosts), 60, "be discovered")
    r.wait(
        "ovn-controller-1",
        lambda: seed.ovn_agents_alive(conn, hosts),
        120,
        "register as a live OVN agent",
    )
    r.wait("cinder-volume", lambda: seed.volume_service_up(conn), 120, "report up")
    mark("compute hosts, OVN chassis and volume service up")
    seed.resources(conn)
    mark("seeded")


def start(layout: Layout) -> dict[str, float]:
    began = time.monotonic()
    timings: dict[str, float] = {}

    def mark(step: str) -> None:
        timings[step] = round(time.monotonic() - began, 1)
        say(f"{step}: {timings[step]} s")

    preflight(layout)
    try:
        fresh_run_dir(layout)
    except StartError as error:
        say(f"start refused: {error}")
        raise SystemExit(1) from None
    configs.write(layout)
    octavia_certs(layout)
    r = Runner(layout)
    try:
        bring_up(r, mark)
    except BaseException as error:
        message = (
            str(error) if isinstance(error, StartError) else f"{type(error).__name__}: {error}"
        )
        say(f"start failed: {message}")
        say(f"stopping what was started; logs stay in {layout.run / 'log'}")
        stop(layout)
        raise SystemExit(1) from None
    (layout.run / "state.json").write_text(
        json.dumps({"timings": timings, "computes": layout.computes}, indent=1)
    )
    return timings


def env_lines() -> list[str]:
    values = {
        "OS_AUTH_URL": configs.AUTH_URL,
        "OS_AUTH_TYPE": "password",
        "OS_IDENTITY_API_VERSION": "3",
        "OS_USERNAME": "admin",
        "OS_PASSWORD": configs.ADMIN_PASSWORD,
        "OS_PROJECT_NAME": "admin",
        "OS_USER_DOMAIN_NAME": "Default",
        "OS_PROJECT_DOMAIN_NAME": "Default",
        "OS_REGION_NAME": configs.REGION,
        "OS_INTERFACE": "public",
        "OSK8S_EXTERNAL_NETWORK": EXTERNAL_NETWORK,
        "OSK8S_IMAGE": IMAGE,
        "OSK8S_FLAVOR": FLAVOR,
    }
    return [f"export {key}={value}" for key, value in values.items()]


def status(layout: Layout) -> int:
    rows = recorded(layout)
    if not rows:
        print(f"not running (no {layout.run / 'pids'})")
        return 1
    dead = 0
    for name, pid, started in rows:
        alive = _alive(pid, started)
        dead += not alive
        extra = ""
        if name in APIS:
            answering = alive and http_answers(api_root(name))
            extra = f"  {api_root(name)} {'answers' if answering else 'DOES NOT ANSWER'}"
            dead += alive and not answering
        print(f"{name:28} {pid:>8}  {'running' if alive else 'DEAD'}{extra}")
    return 1 if dead else 0


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else ""
    layout = layout_from_env()
    if command == "start":
        timings = start(layout)
        say(f'up in {timings["seeded"]} s; `eval "$(bash tools/openstack.sh env)"` to use it')
        return 0
    if command == "stop":
        count = stop(layout)
        say(f"stopped {count} process groups")
        return 0
    if command == "status":
        return status(layout)
    if command == "env":
        print("\n".join(env_lines()))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
