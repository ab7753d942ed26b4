"""The masters' VIP endpoint: haproxy and keepalived configs checked by the real daemons.

haproxy -c and keepalived -t (Debian's) parse what a master would receive; the cloud-config
part passes cloud-init's strict schema; bad input is refused before anything is rendered.
"""

import fnmatch
import ipaddress
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import FakeBin, runcmd_script
from validators import verdict
import yaml

from cloud_init import SCRIPTS
from cloud_init.ha import (
    INTERFACE_SCRIPT,
    KEEPALIVED_INTERFACE_FILE,
    Master,
    ha_cloud_config,
    haproxy_config,
    keepalived_config,
)

CIDR = "10.0.0.0/24"
VIP = "10.0.0.10"
MASTERS = [
    Master("master-0", "10.0.0.11"),
    Master("master-1", "10.0.0.12"),
    Master("master-2", "10.0.0.13"),
]
SHELLCHECK = Path(sys.executable).parent / "shellcheck"


def _host_subnet() -> tuple[str, str]:
    """(interface, CIDR) of a non-loopback IPv4 address here: keepalived -t insists the
    interface exists, so the keepalived test renders for this host's own subnet."""
    out = subprocess.run(
        ["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    for line in out.splitlines():
        fields = line.split()
        if fields[1] != "lo":
            return fields[1], str(ipaddress.IPv4Interface(fields[3]).network)
    raise AssertionError("no non-loopback IPv4 interface here to render keepalived for")


def _hosts(cidr: str, n: int) -> list[str]:
    net = ipaddress.IPv4Network(cidr)
    # VIP and masters from the top of the subnet, far from this host's own address
    return [str(net.broadcast_address - 1 - i) for i in range(n)]


def test_haproxy_config_passes_haproxy_check(tmp_path):
    """haproxy must accept the config as rendered, and balance over every master."""
    text = haproxy_config(vip=VIP, port=6443, masters=MASTERS)
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    run = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "[WARNING]" not in run.stdout + run.stderr
    servers = re.findall(r"^\s+server (\S+) (\S+)$", text, re.M)
    assert servers == [(m.name, f"{m.address}:6443") for m in MASTERS]
    assert re.search(rf"^\s+bind {re.escape(VIP)}:6443$", text, re.M)
    assert "http-check send meth GET uri /readyz" in text


def test_keepalived_configs_pass_keepalived_test(tmp_path):
    """Every master's keepalived.conf parses with keepalived -t, with the interface file the
    boot script writes for this host; priorities are distinct and each master lists the
    others as unicast peers."""
    _, cidr = _host_subnet()
    vip, *addresses = _hosts(cidr, 4)
    masters = [Master(f"master-{i}", a) for i, a in enumerate(addresses)]
    iface_file = tmp_path / "interface.conf"
    run = subprocess.run(
        ["bash", str(SCRIPTS / "keepalived-interface.sh")],
        capture_output=True,
        text=True,
        env={
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "INTERFACE_CIDR": cidr,
            "OUT": str(iface_file),
            "WAIT_SECONDS": "2",
        },
    )
    assert run.returncode == 0, run.stderr
    assert re.fullmatch(r"\$IFACE=\S+\n", iface_file.read_text())

    priorities = []
    for me in masters:
        text = keepalived_config(
            me=me, masters=masters, vip=vip, interface_cidr=cidr, router_id=51, auth_pass="dev-k8s"
        )
        assert f"include {KEEPALIVED_INTERFACE_FILE}\n" in text
        conf = tmp_path / f"{me.name}.conf"
        conf.write_text(text.replace(KEEPALIVED_INTERFACE_FILE, str(iface_file)))
        run = subprocess.run(["keepalived", "-t", "-f", str(conf)], capture_output=True, text=True)
        assert run.returncode == 0, f"{me.name}: {run.stdout}{run.stderr}"
        assert run.stdout + run.stderr == "", f"{me.name} warnings: {run.stdout}{run.stderr}"
        priorities.append(int(re.search(r"^\s+priority (\d+)$", text, re.M).group(1)))
        peers = re.search(r"unicast_peer \{\n(.*?)\n\s*\}", text, re.S).group(1).split()
        assert peers == [m.address for m in masters if m != me]
        assert re.search(rf"^\s+unicast_src_ip {re.escape(me.address)}$", text, re.M)
        assert "virtual_router_id 51\n" in text
    assert len(priorities) == 3 and len(set(priorities)) == 3
    assert all(1 <= p <= 254 for p in priorities)


def test_keepalived_test_catches_a_broken_config(tmp_path):
    """keepalived -t is a real check here: an out-of-range router id in the file fails it."""
    iface, cidr = _host_subnet()
    vip, *addresses = _hosts(cidr, 3)
    masters = [Master(f"master-{i}", a) for i, a in enumerate(addresses)]
    (tmp_path / "interface.conf").write_text(f"$IFACE={iface}\n")
    text = keepalived_config(
        me=masters[0],
        masters=masters,
        vip=vip,
        interface_cidr=cidr,
        router_id=51,
        auth_pass="s3cret42",
    )
    text = text.replace(KEEPALIVED_INTERFACE_FILE, str(tmp_path / "interface.conf"))
    conf = tmp_path / "bad.conf"
    conf.write_text(text.replace("virtual_router_id 51", "virtual_router_id 300"))
    run = subprocess.run(["keepalived", "-t", "-f", str(conf)], capture_output=True, text=True)
    assert run.returncode != 0


def test_single_master_has_no_peer_block(tmp_path):
    """One master: keepalived still holds the VIP; an empty unicast_peer block would be refused."""
    text = keepalived_config(
        me=MASTERS[0],
        masters=MASTERS[:1],
        vip=VIP,
        interface_cidr=CIDR,
        router_id=7,
        auth_pass="abc",
    )
    assert "unicast_peer" not in text
    assert "virtual_router_id 7\n" in text


def test_cloud_config_part_passes_strict_schema(tmp_path):
    """The part the control plane merges must be valid cloud-config on its own (Debian's cloud-init,
    strict), and carry the sysctl that lets haproxy bind a VIP it does not hold."""
    part = ha_cloud_config(
        me=MASTERS[0],
        masters=MASTERS,
        vip=VIP,
        port=6443,
        interface_cidr=CIDR,
        router_id=51,
        auth_pass="s3cret42",
    )
    assert set(part["packages"]) == {"haproxy", "keepalived"}
    files = {f["path"]: f for f in part["write_files"]}
    assert (
        "net.ipv4.ip_nonlocal_bind = 1" in files["/etc/sysctl.d/90-apiserver-vip.conf"]["content"]
    )
    assert files["/etc/keepalived/keepalived.conf"]["permissions"] == "0600"
    assert files["/usr/local/sbin/keepalived-interface.sh"]["content"].startswith(
        "#!/usr/bin/env bash"
    )
    restarts = [c for c in part["runcmd"] if c.startswith("systemctl restart ")]
    assert len(restarts) == 2
    doc = {"users": ["default"], **part}
    text = "#cloud-config\n" + yaml.safe_dump(doc, sort_keys=False)
    assert verdict(text) == "valid"
    # and the same checker does reject a wrong shape (it is not a no-op)
    bad = "#cloud-config\n" + yaml.safe_dump({**doc, "runcmd": "not a list"})
    assert verdict(bad) != "valid"


def test_cloud_config_is_deterministic():
    """Same inputs, same bytes: a diff in `pulumi preview` must mean a real change."""
    args = dict(
        me=MASTERS[1],
        masters=MASTERS,
        vip=VIP,
        port=6443,
        interface_cidr=CIDR,
        router_id=51,
        auth_pass="s3cret42",
    )
    assert json.dumps(ha_cloud_config(**args)) == json.dumps(ha_cloud_config(**args))


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(masters=[]), "at least one master"),
        (dict(vip="10.0.1.10"), "not in the masters' subnet"),
        (dict(vip="10.0.0.11"), "also a master's address"),
        (dict(vip="nonsense"), "not an IPv4 address"),
        (dict(router_id=0), "router_id"),
        (dict(router_id=256), "router_id"),
        (dict(auth_pass="123456789"), "auth_pass"),
        (dict(auth_pass=""), "auth_pass"),
        (dict(auth_pass="a#b"), "auth_pass"),
        (dict(auth_pass="a b"), "auth_pass"),
        (dict(me=Master("stranger", "10.0.0.99")), "not one of the masters"),
        (dict(masters=MASTERS + [Master("master-9", "10.0.5.1")]), "not in 10.0.0.0/24"),
        (dict(masters=MASTERS + [Master("master-0", "10.0.0.20")]), "duplicate names"),
        (dict(masters=MASTERS + [Master("master-9", "10.0.0.11")]), "duplicate addresses"),
        (dict(masters=[Master("Master_0", "10.0.0.11")]), "not a DNS label"),
        (dict(interface_cidr="10.0.0.0/33"), "interface_cidr"),
        (dict(port=0), "not a TCP port"),
    ],
)
def test_bad_input_is_refused(change, match):
    """Mistakes surface at render time with the offending field named, not on a booted node."""
    args = dict(
        me=MASTERS[0],
        masters=MASTERS,
        vip=VIP,
        port=6443,
        interface_cidr=CIDR,
        router_id=51,
        auth_pass="s3cret42",
    )
    args.update(change)
    if "masters" in change and MASTERS[0] not in change["masters"] and change["masters"]:
        args["me"] = change["masters"][0]
    with pytest.raises(ValueError, match=match):
        ha_cloud_config(**args)


def test_interface_script_passes_shellcheck():
    """The boot script is shipped as is: shellcheck must have nothing to say."""
    run = subprocess.run(
        [str(SHELLCHECK), "-x", str(SCRIPTS / "keepalived-interface.sh")],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout


def test_interface_script_fails_clearly_without_a_matching_interface(tmp_path):
    """No address in the subnet: a bounded wait, then a message naming the subnet, exit 1."""
    run = subprocess.run(
        ["bash", str(SCRIPTS / "keepalived-interface.sh")],
        capture_output=True,
        text=True,
        timeout=20,
        env={
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "INTERFACE_CIDR": "203.0.113.0/24",
            "OUT": str(tmp_path / "i"),
            "WAIT_SECONDS": "1",
        },
    )
    assert run.returncode == 1
    assert "203.0.113.0/24" in run.stderr
    assert not (tmp_path / "i").exists()


def test_haproxy_check_catches_a_broken_config(tmp_path):
    """haproxy -c is a real check here: a server line with no address fails it."""
    text = haproxy_config(vip=VIP, port=6443, masters=MASTERS) + "    server broken\n"
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(text)
    assert subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True).returncode != 0


@pytest.mark.parametrize(
    "failing",
    [
        "--load *",
        "interface-script",
        "enable *",
        "restart haproxy.service",
        "restart keepalived.service",
    ],
)
def test_a_failed_vip_step_fails_the_boot(tmp_path, failing):
    """Every VIP step, when it fails, ends runcmd with an error (so `cloud-init status` and
    the ready gate say so) and nothing after it runs, whatever the caller appends."""
    part = ha_cloud_config(
        me=MASTERS[0],
        masters=MASTERS,
        vip=VIP,
        port=8443,
        backend_port=6443,
        interface_cidr=CIDR,
        router_id=51,
        auth_pass="s3cret42",
    )
    fakes = FakeBin(tmp_path, ["sysctl", "systemctl"])
    interface = tmp_path / "keepalived-interface.sh"
    interface.write_text(
        f'#!/bin/sh\necho "interface $*" >>{tmp_path}/interface.log\n'
        f"exit {1 if failing == 'interface-script' else 0}\n"
    )
    interface.chmod(0o755)
    if failing != "interface-script":
        fakes.rule(
            "sysctl" if failing == "--load *" else "systemctl",
            failing,
            {"rc": 1, "stderr": "failed on demand"},
        )
    text = runcmd_script(part["runcmd"] + [["touch", str(tmp_path / "after")]])
    text = text.replace(INTERFACE_SCRIPT, str(interface))
    assert str(interface) in text
    r = subprocess.run(["sh", "-c", text], env=fakes.env(), capture_output=True, text=True)
    assert r.returncode != 0, (failing, r.stdout, r.stderr)
    assert not (tmp_path / "after").exists()
    ran = fakes.calls()
    assert ran[0] == ["sysctl", "--load", "/etc/sysctl.d/90-apiserver-vip.conf"]
    # The step that failed is the last one that ran.
    if failing == "interface-script":
        assert len(ran) == 1 and (tmp_path / "interface.log").exists()
    else:
        assert fnmatch.fnmatchcase(" ".join(ran[-1][1:]), failing), ran


def test_every_vip_step_succeeding_passes_the_boot(tmp_path):
    """The counterpart: with every step succeeding, runcmd runs to its end and exits 0."""
    part = ha_cloud_config(
        me=MASTERS[0],
        masters=MASTERS,
        vip=VIP,
        port=8443,
        backend_port=6443,
        interface_cidr=CIDR,
        router_id=51,
        auth_pass="s3cret42",
    )
    fakes = FakeBin(tmp_path, ["sysctl", "systemctl", "keepalived-interface"])
    text = runcmd_script(part["runcmd"] + [["touch", str(tmp_path / "after")]])
    text = text.replace(INTERFACE_SCRIPT, str(fakes.bin / "keepalived-interface"))
    r = subprocess.run(["sh", "-c", text], env=fakes.env(), capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "after").exists()
    assert [c[0] for c in fakes.calls()] == [
        "sysctl",
        "keepalived-interface",
        "systemctl",
        "systemctl",
        "systemctl",
    ]
