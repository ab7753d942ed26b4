"""The discovery node's part of the cloud-config: a private etcd (v3, TLS) and flannel's config.

Each discovery member runs etcd from the distribution's own packages (`etcd-server`,
`etcd-client`), so nothing is downloaded from the internet and air-gapped clouds with a distro
mirror work. The packaged `etcd.service` is replaced, not configured: a unit of ours at
/etc/systemd/system/etcd.service takes precedence over /lib/systemd/system/etcd.service and
reads its whole configuration from one environment file, /etc/etcd/etcd.env.

Order on first boot, and why it is safe:

1. init stage, `write_files`: unit, environment file, CA and certificate, seed script. The
   `etcd` user does not exist yet, so the private key is not written here.
2. final stage, `packages`: Debian's postinst reloads systemd and starts etcd.service, which is
   now ours; its `ConditionPathExists` on the key makes that start a silent no-op instead of a
   start with the wrong owner on the key (or, for the packaged unit, a throwaway one-member
   cluster in the default data dir).
3. final stage, `write_files` with `defer: true`: the key, owned by the now existing `etcd`.
4. final stage, `runcmd`: enable and start etcd without blocking (a member of a new 3-member
   cluster only reports ready once a quorum of its peers is up), then run the seed script,
   which waits for the local etcd, bounded, and writes flannel's network config once. So
   `cloud-init status --wait` returns only when etcd answers and the config is there.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from cloud_init import kit, script

PKI_DIR = "/etc/etcd/pki"
CA_PATH = f"{PKI_DIR}/ca.crt"
CERT_PATH = f"{PKI_DIR}/server.crt"
KEY_PATH = f"{PKI_DIR}/server.key"
ENV_PATH = "/etc/etcd/etcd.env"
UNIT_PATH = "/etc/systemd/system/etcd.service"
# Its own directory under the package's /var/lib/etcd: nothing the package may have left in
# its default data dir can be mistaken for this cluster's data.
DATA_DIR = "/var/lib/etcd/discovery"
ETCD_BIN = "/usr/bin/etcd"
SEED_SCRIPT = "discovery-seed-flannel.sh"
SEED_SCRIPT_PATH = f"/usr/local/sbin/{SEED_SCRIPT}"
FLANNEL_CONFIG_KEY = "/coreos.com/network/config"
# Run on a member that stays, once per leaving member, before its VM goes (shrinking 3 to 1).
REMOVE_MEMBER_SCRIPT = "discovery-remove-member.sh"
PACKAGES = ("etcd-server", "etcd-client")


@dataclass(frozen=True)
class DiscoveryMember:
    """One etcd member of the discovery cluster: its etcd member name and private IPv4."""

    name: str
    address: str


@dataclass(frozen=True)
class DiscoverySpec:
    """Everything one discovery member needs to know to boot."""

    name: str  # this member, e.g. "dev-discovery-0"; also its etcd member name
    address: str  # this member's private IPv4
    members: tuple[DiscoveryMember, ...]  # all members (1 or 3) in index order, this one included
    ca_cert_pem: str  # the discovery etcd CA
    cert_pem: str  # this member's certificate: server and client auth, used on every port
    key_pem: str
    pod_cidr: str
    subnet_len: int = 24
    vxlan_vni: int = 1
    vxlan_port: int = 8472
    seed_timeout: int = 600  # seconds the flannel seeding waits for etcd
    client_port: int = 2379
    peer_port: int = 2380


def _check(spec: DiscoverySpec) -> None:
    """Refuse a spec that would boot a broken member, naming the offending field."""
    if len(spec.members) not in (1, 3):
        raise ValueError(
            f"members: a discovery cluster has 1 or 3 members, got {len(spec.members)}"
        )
    names = [m.name for m in spec.members]
    if len(set(names)) != len(names):
        raise ValueError(f"members: member names must be unique, got {names}")
    for m in spec.members:
        ipaddress.IPv4Address(m.address)  # raises with the bad value in the message
        if not m.name or any(c in m.name for c in "=,\n "):
            raise ValueError(f"members: invalid etcd member name {m.name!r}")
    if spec.address == "127.0.0.1":
        raise ValueError(
            "address: must be the private address; etcd listens on 127.0.0.1 as well anyway"
        )
    if DiscoveryMember(spec.name, spec.address) not in spec.members:
        raise ValueError(f"name/address: {spec.name} at {spec.address} is not one of the members")
    net = ipaddress.IPv4Network(spec.pod_cidr)
    if not net.prefixlen < spec.subnet_len <= 30:
        raise ValueError(
            f"subnet_len: {spec.subnet_len} must be longer than pod_cidr's /{net.prefixlen} and at most 30"
        )
    for field in ("seed_timeout", "vxlan_vni", "vxlan_port", "client_port", "peer_port"):
        if getattr(spec, field) <= 0:
            raise ValueError(f"{field}: must be positive")


def remove_member_env(member: DiscoveryMember, *, timeout: int = 60) -> dict[str, str]:
    """The environment of discovery-remove-member.sh for a leaving member (default paths)."""
    ipaddress.IPv4Address(member.address)
    if not member.name or any(c in member.name for c in "=,\n "):
        raise ValueError(f"member: invalid etcd member name {member.name!r}")
    if timeout <= 0:
        raise ValueError(f"timeout: {timeout} must be a positive number of seconds")
    return {
        "MEMBER_NAME": member.name,
        "MEMBER_ADDRESS": member.address,
        "REMOVE_TIMEOUT": str(timeout),
    }


def etcd_cert_env(*, cert_pem: str, key_pem: str, ca_pem: str) -> dict[str, str]:
    """node-install-cert.sh's inputs for a discovery member's renewed etcd certificate (server,
    peer and client in one). Restart one member at a time: the others keep the quorum."""
    for label, pem in (("cert_pem", cert_pem), ("key_pem", key_pem), ("ca_pem", ca_pem)):
        if "-----BEGIN " not in pem:
            raise ValueError(f"{label} is not PEM")
    return {
        "CERT_PEM": cert_pem,
        "KEY_PEM": key_pem,
        "CA_PEM": ca_pem,
        "CERT_PATH": CERT_PATH,
        "KEY_PATH": KEY_PATH,
        "CA_PATH": CA_PATH,
        "KEY_OWNER": "etcd:etcd",
        "RESTART_UNITS": "etcd.service",
    }


def etcd_environment(spec: DiscoverySpec) -> dict[str, str]:
    """etcd's whole configuration, as the ETCD_* variables etcd reads from its environment.

    The same file configures etcd 3.3 (Ubuntu 22.04) and 3.4 (Debian 12, Ubuntu 24.04).
    """
    _check(spec)
    peer_url = f"https://{spec.address}:{spec.peer_port}"
    initial_cluster = ",".join(
        f"{m.name}=https://{m.address}:{spec.peer_port}" for m in spec.members
    )
    return {
        "ETCD_NAME": spec.name,
        "ETCD_DATA_DIR": DATA_DIR,
        # Clients: other nodes (flanneld) on the private address, etcdctl on the node itself.
        "ETCD_LISTEN_CLIENT_URLS": f"https://{spec.address}:{spec.client_port},https://127.0.0.1:{spec.client_port}",
        "ETCD_ADVERTISE_CLIENT_URLS": f"https://{spec.address}:{spec.client_port}",
        # Peers only ever talk over the private network.
        "ETCD_LISTEN_PEER_URLS": peer_url,
        "ETCD_INITIAL_ADVERTISE_PEER_URLS": peer_url,
        # Only read when the data dir is empty: a reboot keeps the cluster it already has.
        "ETCD_INITIAL_CLUSTER": initial_cluster,
        "ETCD_INITIAL_CLUSTER_STATE": "new",
        # Derived from the members so two clusters on one network never merge by accident,
        # and stable so that re-rendering changes nothing.
        "ETCD_INITIAL_CLUSTER_TOKEN": "discovery-"
        + hashlib.sha256(initial_cluster.encode()).hexdigest()[:16],
        "ETCD_CERT_FILE": CERT_PATH,
        "ETCD_KEY_FILE": KEY_PATH,
        "ETCD_TRUSTED_CA_FILE": CA_PATH,
        "ETCD_CLIENT_CERT_AUTH": "true",
        "ETCD_PEER_CERT_FILE": CERT_PATH,
        "ETCD_PEER_KEY_FILE": KEY_PATH,
        "ETCD_PEER_TRUSTED_CA_FILE": CA_PATH,
        "ETCD_PEER_CLIENT_CERT_AUTH": "true",
        # v3 only; etcd 3.3 would otherwise also serve the unauthenticated-by-design v2 API.
        "ETCD_ENABLE_V2": "false",
        # flannel renews subnet leases forever: keep one hour of history, not all of it.
        "ETCD_AUTO_COMPACTION_RETENTION": "1",
    }


def etcd_unit() -> list[tuple[str, list[tuple[str, str]]]]:
    """Our etcd.service as data: (section, [(key, value), ...]) in file order."""
    return [
        (
            "Unit",
            [
                ("Description", "etcd of the cluster's discovery node (flannel network config)"),
                ("Documentation", "man:etcd"),
                ("Wants", "network-online.target"),
                ("After", "network-online.target"),
                # Absent until cloud-init's deferred write_files, i.e. during the package's own
                # start at install time: that start is skipped instead of failing.
                ("ConditionPathExists", KEY_PATH),
            ],
        ),
        (
            "Service",
            [
                ("Type", "notify"),
                ("User", "etcd"),
                ("Group", "etcd"),
                ("EnvironmentFile", ENV_PATH),
                ("ExecStart", ETCD_BIN),
                ("Restart", "on-failure"),
                ("RestartSec", "5s"),
                # A member of a new cluster reports ready only once a quorum is up, and its peers
                # may still be installing packages: no start timeout, the seed script has one.
                ("TimeoutStartSec", "infinity"),
                ("LimitNOFILE", "65536"),
                ("StateDirectory", "etcd"),
                ("StateDirectoryMode", "0700"),
            ],
        ),
        ("Install", [("WantedBy", "multi-user.target")]),
    ]


def dump_env(env: dict[str, str]) -> str:
    """etcd.env: the environment file etcd.service reads."""
    return kit.env_file(
        env, comment="etcd configuration of this discovery member, written by cloud-init."
    )


def seed_environment(spec: DiscoverySpec) -> dict[str, str]:
    """The seed script's inputs: this member's local etcd, its own cert, the network values."""
    _check(spec)
    return {
        "ETCD_ENDPOINTS": f"https://127.0.0.1:{spec.client_port}",
        "ETCD_CA_FILE": CA_PATH,
        "ETCD_CERT_FILE": CERT_PATH,
        "ETCD_KEY_FILE": KEY_PATH,
        "FLANNEL_CONFIG_KEY": FLANNEL_CONFIG_KEY,
        "POD_CIDR": str(ipaddress.IPv4Network(spec.pod_cidr)),
        "SUBNET_LEN": str(spec.subnet_len),
        "VXLAN_VNI": str(spec.vxlan_vni),
        "VXLAN_PORT": str(spec.vxlan_port),
        "SEED_TIMEOUT": str(spec.seed_timeout),
    }


def discovery_cloud_config(spec: DiscoverySpec) -> dict:
    """Role part of the cloud-config: keys packages, write_files and runcmd (lists).

    The caller merges it with the common part (users, ssh keys, sshd hardening, hostname,
    package_update) and dumps it.
    """
    _check(spec)
    seed_env = seed_environment(spec)
    return {
        "packages": list(PACKAGES),
        "write_files": [
            kit.file(UNIT_PATH, kit.unit(etcd_unit())),
            kit.file(ENV_PATH, dump_env(etcd_environment(spec))),
            kit.file(CA_PATH, spec.ca_cert_pem),
            kit.file(CERT_PATH, spec.cert_pem),
            kit.file(SEED_SCRIPT_PATH, script(SEED_SCRIPT), "0755"),
            # Deferred: after `packages`, once the etcd user exists (see the module docstring).
            kit.file(KEY_PATH, spec.key_pem, "0600", owner="etcd:etcd", defer=True),
        ],
        "runcmd": [
            kit.step(["systemctl", "daemon-reload"]),
            # --no-block: a 3-member cluster's first member is "activating" until a peer is up;
            # the seed script is what waits, with a deadline.
            kit.step(["systemctl", "enable", "--now", "--no-block", "etcd.service"]),
            kit.step(["env", *(f"{k}={v}" for k, v in seed_env.items()), SEED_SCRIPT_PATH]),
        ],
    }
