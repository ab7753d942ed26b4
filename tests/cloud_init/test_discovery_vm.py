"""The discovery node's real user-data, booted in a real VM under real cloud-init.

Schema validation says the user-data is well formed; only running it says it works. The dev
stack is rendered with the offline plan, and the discovery node's user-data is booted exactly
as rendered in a Debian 12 VM (qemu, TCG) with a NoCloud seed: only the seed and the network
differ from OpenStack, and the guest gets the very private address the plan gave the node.
Everything is then checked from the host, through forwarded 127.0.0.1 ports, with the client
certificate the program generated for flannel.

Slow (about 5 minutes; the first run also builds the cached image, about 2 minutes): marked
``vm``, run alone with ``pytest -m vm``. See docs/vm-test.md.
"""

from __future__ import annotations

import base64
import gzip
import ipaddress
import json
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

import settings
from tests.vm import etcd, qemu, sample
from tests.vm.image import ensure_image, preflight
from planning import CONNECT_FROM_CONFIG
from tools.plan import stack_config

pytestmark = pytest.mark.vm

STACK = "dev"
FLANNEL_PKI = "/etc/flannel/pki"
FLANNEL_CONFIG_KEY = "/coreos.com/network/config"
DISCOVERY_PKI = "/etc/etcd/pki"
FIRST_BOOT_TIMEOUT = 480  # seconds to cloud-init's final line; about 120-220 s measured
REBOOT_TIMEOUT = 300
SSH_TIMEOUT = 120
SENTINEL_KEY = "/openstack-k8s-vm-test/sentinel"


@dataclass
class Rendered:
    """What the test needs out of the plan for the discovery node."""

    name: str
    user_data: Path
    address: ipaddress.IPv4Interface
    pod_cidr: str
    tls: etcd.ClientTls  # the client certificate the program generated
    tls_source: str  # where that certificate comes from, for messages
    ssh_user: str
    ssh_key: Path


@dataclass
class Booted:
    vm: qemu.Vm
    ssh: qemu.Ssh
    rendered: Rendered
    timings: dict[str, float] = field(default_factory=dict)

    def etcd_port(self) -> int:
        return self.vm.host_port(2379)


def _file_content(entry: dict) -> bytes:
    """A write_files entry's bytes, decoded the way cloud-init decodes them."""
    content = entry.get("content", "")
    encoding = entry.get("encoding", "text")
    data = content.encode() if isinstance(content, str) else content
    if encoding in ("b64", "base64", "gz+b64", "gzip+base64", "gz+base64", "gzip+b64"):
        data = base64.b64decode(data)
    if encoding.startswith("gz"):
        data = gzip.decompress(data)
    return data


def _write_files(user_data: Path) -> dict[str, bytes]:
    config = yaml.safe_load(user_data.read_text())
    return {entry["path"]: _file_content(entry) for entry in config.get("write_files") or []}


def _env_file(text: bytes) -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in text.decode().splitlines()
        if "=" in line and not line.startswith("#")
    )
    return {k: v for k, v in pairs}


@pytest.fixture(scope="module")
def rendered(plan, tmp_path_factory) -> Rendered:
    """Render the dev stack with a fresh SSH key as its user key, and pick out the discovery node."""
    keys = tmp_path_factory.mktemp("vm-keys")
    key, public = qemu.keygen(keys)
    p = plan(STACK, f"sshPublicKeys={json.dumps([public])}")

    discovery = sorted(
        r["name"] for r in p.of_type("openstack:compute/instance:Instance")
        if (r["inputs"].get("metadata") or {}).get("openstack-k8s-role") == "discovery"
    )  # fmt: skip
    assert discovery, f"no discovery instance in the plan: {p.instances}"
    name = discovery[0]
    user_data = p.dir / "user-data" / f"{name}.yaml"
    files = _write_files(user_data)

    # The address the node's own configuration expects: etcd advertises it, its cert names it.
    env = _env_file(files["/etc/etcd/etcd.env"])
    ip = ipaddress.IPv4Address(env["ETCD_ADVERTISE_CLIENT_URLS"].split("//")[1].split(":")[0])
    subnets = [
        ipaddress.IPv4Network(r["inputs"]["cidr"])
        for r in p.of_type("openstack:networking/subnet:Subnet")
    ]
    subnet = next((s for s in subnets if ip in s), None)
    assert subnet, f"{ip} is in none of the plan's subnets {subnets}"

    # The stack's podCidr as the program sees it (its default when Pulumi.dev.yaml has none).
    pod_cidr = str(settings.load({**stack_config(STACK), **CONNECT_FROM_CONFIG}, STACK).pod_cidr)

    # The flannel client certificate the program gave the masters/workers: what flanneld uses.
    tls_dir = keys / "client-tls"
    tls_dir.mkdir()
    source = None
    for other in p.instances:
        other_files = _write_files(p.dir / "user-data" / f"{other}.yaml")
        wanted = [f"{FLANNEL_PKI}/{n}" for n in ("ca.crt", "client.crt", "client.key")]
        if all(w in other_files for w in wanted):
            for w in wanted:
                (tls_dir / Path(w).name).write_bytes(other_files[w])
            source = f"{other}:{FLANNEL_PKI}"
            break
    assert source, f"no node's user-data carries {FLANNEL_PKI}/{{ca.crt,client.crt,client.key}}"
    (tls_dir / "client.key").chmod(0o600)
    tls = etcd.ClientTls(tls_dir / "ca.crt", tls_dir / "client.crt", tls_dir / "client.key")

    config = yaml.safe_load(user_data.read_text())
    users = [
        u
        for u in config.get("users") or []
        if isinstance(u, dict) and public in (u.get("ssh_authorized_keys") or [])
    ]
    assert users, f"the test's key is in no user's ssh_authorized_keys in {user_data}"
    return Rendered(name, user_data, ipaddress.IPv4Interface(f"{ip}/{subnet.prefixlen}"), pod_cidr, tls, source,
                    users[0]["name"], key)  # fmt: skip


@pytest.fixture(scope="module")
def booted(rendered, tmp_path_factory):
    """The discovery node booted once for the module, cloud-init finished, SSH working."""
    # Fail, not skip: CI must never pass by not running this.
    problems = preflight()
    if problems:
        pytest.fail("cannot boot a VM here: " + "; ".join(problems))
    timings: dict[str, float] = {}
    started = time.monotonic()
    image = ensure_image()
    timings["image_seconds"] = time.monotonic() - started
    workdir = tmp_path_factory.mktemp("vm-discovery")
    with qemu.running_vm(
        image,
        workdir,
        rendered.user_data,
        name=rendered.name,
        address=rendered.address,
        guest_ports=(22, 2379),
    ) as vm:
        finished = vm.wait_cloud_init_finished(1, FIRST_BOOT_TIMEOUT)
        timings["boot_to_done_wall_seconds"] = time.monotonic() - vm.started_at
        timings["boot_to_done_guest_seconds"] = finished.uptime_seconds
        ssh = qemu.Ssh(vm, rendered.ssh_user, rendered.ssh_key)
        ssh.wait(SSH_TIMEOUT)
        node = Booted(vm, ssh, rendered, timings)
        try:
            yield node
        finally:
            timings["total_seconds"] = time.monotonic() - started
            # Shown with -s or -rA; the numbers docs/vm-test.md quotes come from here.
            print(f"\nvm timings ({rendered.name}, console {vm.console_log}): "
                  + json.dumps({k: round(v, 1) for k, v in timings.items()}))  # fmt: skip


def _cloud_init_result(node: Booted) -> tuple[str, dict]:
    status = node.ssh.run("cloud-init status --long", check=False)
    result = node.ssh.run("cat /run/cloud-init/result.json", check=False)
    try:
        parsed = json.loads(result.stdout)
    except ValueError:
        parsed = {}
    return status.stdout + status.stderr, parsed


def _assert_cloud_init_done(node: Booted) -> None:
    status, result = _cloud_init_result(node)
    errors = (result.get("v1") or {}).get("errors")
    if "status: done" not in status or errors != []:
        # Both logs are root:adm 0640; the user-data's user has passwordless sudo (checked
        # by the reboot test, which needs it too).
        log = node.ssh.run("sudo -n tail -n 60 /var/log/cloud-init-output.log; sudo -n grep -E "
                           "'WARNING|ERROR|Traceback' /var/log/cloud-init.log | tail -n 30", check=False)  # fmt: skip
        pytest.fail(
            f"cloud-init did not finish cleanly on {node.rendered.name}:\n{status}\nresult.json errors: {errors}\n"
            f"--- guest logs ---\n{log.stdout}\n{node.vm.describe(40)}"
        )


def test_cloud_init_finishes_without_errors(booted):
    """Every module of the rendered user-data runs on Debian 12's cloud-init, and none fails."""
    _assert_cloud_init_done(booted)
    assert booted.ssh.run("hostname").stdout.strip() == booted.rendered.name
    # The guest has the plan's address: certificates and etcd's URLs name it.
    addresses = booted.ssh.run("ip -4 -o addr show scope global").stdout
    assert f" {booted.rendered.address.with_prefixlen} " in addresses, addresses


def test_etcd_is_healthy_over_tls_with_the_generated_client_cert(booted):
    """etcd serves TLS on 2379 with a certificate for the node's private address, and the
    client certificate the program generated for flannel is accepted."""
    r = booted.rendered
    assert etcd.healthy(booted.etcd_port(), str(r.address.ip), r.tls), (
        f"etcd unhealthy (client cert from {r.tls_source})"
    )


def test_etcd_refuses_clients_without_a_valid_cert(booted, tmp_path):
    """Client-certificate auth is on: no certificate, or one from another CA, gets nothing."""
    r = booted.rendered
    foreign = sample.write_pki(tmp_path / "foreign", r.address.ip)
    refused = {
        "no client certificate": etcd.ClientTls(r.tls.ca),
        "a certificate from another CA": etcd.ClientTls(
            r.tls.ca, foreign["client.crt"], foreign["client.key"]
        ),
    }
    checked = 0
    for why, tls in refused.items():
        with pytest.raises((ssl.SSLError, ConnectionError)):
            etcd.healthy(booted.etcd_port(), str(r.address.ip), tls)
            pytest.fail(f"etcd answered a client with {why}")
        checked += 1
    assert checked == 2
    # And the refusal is about the client: the same request with the right cert still works.
    assert etcd.healthy(booted.etcd_port(), str(r.address.ip), r.tls)


def test_flannel_network_config_is_seeded(booted):
    """flannel's network config is in etcd with the stack's pod CIDR and the VXLAN backend."""
    r = booted.rendered
    value = etcd.get(booted.etcd_port(), str(r.address.ip), r.tls, FLANNEL_CONFIG_KEY)
    assert value is not None, f"{FLANNEL_CONFIG_KEY} is not in etcd"
    config = json.loads(value)
    assert config["Network"] == r.pod_cidr, config
    assert config["Backend"]["Type"] == "vxlan", config


def _sem_files(node: Booted) -> dict[str, str]:
    """cloud-init's once-per-instance markers: name -> modification time (ns)."""
    out = node.ssh.run(
        "readlink -f /var/lib/cloud/instance; stat -c '%n %.9Y' /var/lib/cloud/instance/sem/*"
    ).stdout
    lines = out.splitlines()
    return {
        "instance": lines[0],
        **{Path(n).name: t for n, t in (line.rsplit(" ", 1) for line in lines[1:])},
    }


def test_reboot_keeps_etcd_data_and_skips_first_boot_modules(booted):
    """After a reboot etcd comes back by itself with its data, and cloud-init does not run
    the first-boot modules (packages, write_files, runcmd) again."""
    node, r = booted, booted.rendered
    port, ip = node.etcd_port(), str(r.address.ip)
    etcd.put(port, ip, r.tls, SENTINEL_KEY, "written before the reboot")
    flannel_before = etcd.get(port, ip, r.tls, FLANNEL_CONFIG_KEY)
    sem_before = _sem_files(node)
    for module in (
        "config_package_update_upgrade_install",
        "config_runcmd",
        "config_write_files_deferred",
    ):
        assert module in sem_before, (
            f"{module} has no once-per-instance marker: {sorted(sem_before)}"
        )
    boot_id = node.ssh.run("cat /proc/sys/kernel/random/boot_id").stdout.strip()

    node.ssh.run("sudo systemctl reboot", check=False)  # the connection drops: exit status is moot
    started = time.monotonic()
    finished = node.vm.wait_cloud_init_finished(2, REBOOT_TIMEOUT)
    node.timings["reboot_to_done_wall_seconds"] = time.monotonic() - started
    node.timings["reboot_to_done_guest_seconds"] = finished.uptime_seconds
    node.ssh.wait(SSH_TIMEOUT)
    assert node.ssh.run("cat /proc/sys/kernel/random/boot_id").stdout.strip() != boot_id, (
        "the guest did not reboot"
    )

    node.vm.wait_for(
        "etcd healthy after the reboot", lambda: etcd.healthy(port, ip, r.tls) or None, 120
    )
    assert etcd.get(port, ip, r.tls, SENTINEL_KEY) == "written before the reboot"
    assert etcd.get(port, ip, r.tls, FLANNEL_CONFIG_KEY) == flannel_before
    assert _sem_files(node) == sem_before, (
        "cloud-init re-ran once-per-instance modules on the second boot"
    )
    _assert_cloud_init_done(node)
