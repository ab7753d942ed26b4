"""tools/openstack/controlplane.py without a cloud: processes are stopped by the PIDs it
recorded (children included, a reused PID never), start-up waits fail loudly with the log
tail, a busy port is refused by name, and every service's config agrees on the names that
tie them together. Runs in the offline suite (stdlib only, real processes, fake clocks)."""

from __future__ import annotations

import configparser
import importlib.metadata
import socket
import sys
import subprocess
import time
from pathlib import Path

import pytest

from tools.openstack import controlplane

configs = controlplane.configs  # the module controlplane itself uses
Layout = configs.Layout


@pytest.fixture
def layout(tmp_path):
    (tmp_path / "log").mkdir()
    return Layout(run=tmp_path, venv=tmp_path / "venv", computes=3)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_stop_ends_each_started_group_with_its_children(layout):
    """A service that forks (a gunicorn master and its worker) is stopped whole: the group of
    the PID that was started, newest first, and nothing of it is left."""
    runner = controlplane.Runner(layout)
    runner.start("forker", ["sh", "-c", "sleep 300 & sleep 300 & wait"])
    runner.start("plain", ["sleep", "300"])
    pids = [p.pid for p in runner.procs.values()]
    children = []
    deadline = time.monotonic() + 10
    while len(children) < 2 and time.monotonic() < deadline:
        children = [
            int(c) for c in Path(f"/proc/{pids[0]}/task/{pids[0]}/children").read_text().split()
        ]
        time.sleep(0.05)
    assert len(children) == 2
    assert controlplane.stop(layout, grace=10) == 2
    for proc in runner.procs.values():
        proc.wait(timeout=10)  # reap our own children, so they are not zombies of the test
    assert not any(alive(pid) for pid in children)
    assert not (layout.run / "pids").exists() and (layout.run / "pids.stopped").exists()
    assert controlplane.stop(layout) == 0


def test_stop_leaves_a_reused_pid_alone(layout):
    """A recorded PID whose start time differs is someone else's process: never signalled."""
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        (layout.run / "pids").write_text(f"ghost {other.pid} 1\n")
        assert controlplane.stop(layout, grace=1) == 0
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_service_that_dies_fails_the_wait_with_its_log_tail(layout):
    runner = controlplane.Runner(layout)
    runner.start("doomed", ["sh", "-c", "echo 'cannot bind 127.0.0.1:1'; exit 3"])
    runner.procs["doomed"].wait()
    with pytest.raises(controlplane.StartError) as failure:
        runner.wait("doomed", lambda: False, timeout=60, what="answer")
    assert "doomed exited with 3 before it would answer" in str(failure.value)
    assert "| cannot bind 127.0.0.1:1" in str(failure.value)
    controlplane.stop(layout)


def test_a_service_that_never_answers_fails_at_its_deadline(layout):
    """The deadline is counted on the runner's clock: a fake one, advanced by each poll."""
    runner = controlplane.Runner(layout)
    now = [0.0]
    polls = []
    runner.clock = lambda: now[0]
    runner.sleep = lambda seconds: now.__setitem__(0, now[0] + seconds)
    (layout.run / "log" / "slow.log").write_text("still migrating\n")

    def check():
        polls.append(now[0])
        return False

    with pytest.raises(controlplane.StartError) as failure:
        runner.wait("slow", check, timeout=30, what="answer")
    assert "slow did not answer within 30 s" in str(failure.value) and "| still migrating" in str(
        failure.value
    )
    assert polls[0] == 0.0 and polls[-1] == 30.5 and len(polls) == 62


def test_a_busy_port_is_refused_by_name(monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        monkeypatch.setattr(controlplane, "PORTS", {"keystone": port})
        with pytest.raises(
            controlplane.StartError, match=f"ports already in use on 127.0.0.1: keystone {port}"
        ):
            controlplane.check_ports_free()
    controlplane.check_ports_free()  # closed again: no complaint


def test_configs_agree_on_hosts_catalog_and_drivers(layout):
    """What ties the services together: each fake compute host's Nova `host` is the OVN
    chassis' hostname (Neutron binds only to a live chassis of that name); the catalog has an
    endpoint for each API; every service reaches the same RabbitMQ and its own database."""
    paste = layout.venv / "etc" / "nova" / "api-paste.ini"
    paste.parent.mkdir(parents=True)
    paste.write_text("[composite:osapi_compute]\n")
    configs.write(layout)
    assert (layout.etc / "nova" / "api-paste.ini").read_text() == "[composite:osapi_compute]\n"

    def read(name):
        parser = configparser.RawConfigParser()
        parser.optionxform = str
        assert parser.read(layout.etc / name), name
        return parser

    hosts = [read(f"nova/compute-{i}.conf")["DEFAULT"]["host"] for i in (1, 2, 3)]
    assert (
        hosts
        == [layout.compute_host(i) for i in (1, 2, 3)]
        == [f"osk8s-compute-{i}" for i in (1, 2, 3)]
    )
    nova = read("nova/nova.conf")
    assert nova["DEFAULT"]["compute_driver"] == "fake.FakeDriver"
    assert (nova["DEFAULT"]["vif_plugging_is_fatal"], nova["DEFAULT"]["vif_plugging_timeout"]) == (
        "False",
        "0",
    )
    assert read("neutron/ml2_conf.ini")["ml2"]["mechanism_drivers"] == "ovn"
    octavia = read("octavia/octavia.conf")
    assert octavia["api_settings"]["default_provider_driver"] == "amphora"
    assert octavia["controller_worker"]["amphora_driver"] == "amphora_noop_driver"
    # Our VIP-port driver is found through the dist-info beside it (tools/openstack on PYTHONPATH).
    [entry] = [
        e
        for dist in importlib.metadata.distributions(path=[str(controlplane.HERE)])
        for e in dist.entry_points
        if e.group == "octavia.network.drivers"
    ]
    assert (entry.name, entry.value) == (
        octavia["controller_worker"]["network_driver"],
        "osk8s_octavia:NeutronVipNetworkDriver",
    )
    for name in (
        "nova/nova.conf",
        "neutron/neutron.conf",
        "octavia/octavia.conf",
        "cinder/cinder.conf",
    ):
        conf = read(name)
        assert conf["DEFAULT"]["transport_url"] == layout.transport_url
        assert f"unix_socket={layout.mysql_socket}" in conf["database"]["connection"]
    assert {kind for kind, *_ in configs.CATALOG} >= {
        "identity",
        "image",
        "placement",
        "compute",
        "network",
        "load-balancer",
        "block-storage",
    }
    assert set(controlplane.APIS) == {port for *_, port, _ in configs.CATALOG}


ROOT = Path(__file__).resolve().parents[2]


def test_the_script_passes_shellcheck():
    shellcheck = Path(sys.executable).parent / "shellcheck"
    result = subprocess.run(
        [str(shellcheck), str(ROOT / "tools" / "openstack.sh")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout


def test_env_evals_to_the_admin_credentials_and_stack_names():
    """`eval "$(bash tools/openstack.sh env)"` in a shell exports what Pulumi's OpenStack
    provider and the test stacks read; it needs no running cloud."""
    script = 'eval "$(bash tools/openstack.sh env)" && env'
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, cwd=ROOT, check=True
    )
    env = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    assert env["OS_AUTH_URL"] == f"http://127.0.0.1:{configs.PORTS['keystone']}/v3"
    assert (env["OS_USERNAME"], env["OS_PROJECT_NAME"], env["OS_REGION_NAME"]) == (
        "admin",
        "admin",
        "RegionOne",
    )
    assert env["OS_PASSWORD"] == configs.ADMIN_PASSWORD
    assert (env["OS_USER_DOMAIN_NAME"], env["OS_PROJECT_DOMAIN_NAME"]) == ("Default", "Default")
    assert env["OSK8S_EXTERNAL_NETWORK"] == "public"
    assert env["OSK8S_IMAGE"] == "ubuntu-24.04-server-cloudimg-amd64"
    assert env["OSK8S_FLAVOR"] == "m1.medium"


def test_a_foreign_run_directory_is_never_wiped(tmp_path):
    """Only a directory this script made (it leaves a marker) is emptied by `start`."""
    foreign = Layout(run=tmp_path / "home", venv=tmp_path / "venv", computes=1)
    foreign.run.mkdir()
    (foreign.run / "precious").write_text("keep me")
    with pytest.raises(controlplane.StartError, match="not a run directory of this script"):
        controlplane.fresh_run_dir(foreign)
    assert (foreign.run / "precious").read_text() == "keep me"
    (foreign.run / controlplane.MARKER).touch()
    controlplane.fresh_run_dir(foreign)
    assert not (foreign.run / "precious").exists() and (foreign.run / "log").is_dir()
