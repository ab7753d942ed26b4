"""A small hand-written discovery-like user-data: the harness's own smoke test.

It does what the real discovery node does, minimally (Debian's etcd-server, TLS on 2379 with
client-certificate auth, certificates at /etc/etcd/pki, flannel's config seeded), so the
harness can be exercised (``python -m tests.vm --sample``) without the offline plan. The
real test boots the plan's user-data, never this one.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FLANNEL_KEY = "/coreos.com/network/config"


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _cert(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool, sans=(), usage=None):
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
    if usage:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def write_pki(directory: Path, address: ipaddress.IPv4Address) -> dict[str, Path]:
    """CA, etcd server cert (SAN: the node address, 127.0.0.1) and a client cert, as files."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vm-test-ca")])
    ca = _cert("vm-test-ca", ca_key, ca_name, ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert(
        "etcd", server_key, ca_name, ca_key, ca=False,
        sans=[x509.IPAddress(address), x509.IPAddress(ipaddress.IPv4Address("127.0.0.1"))],
        usage=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    )  # fmt: skip
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _cert(
        "flannel", client_key, ca_name, ca_key, ca=False, usage=[ExtendedKeyUsageOID.CLIENT_AUTH]
    )
    files = {
        "ca.crt": ca.public_bytes(serialization.Encoding.PEM),
        "server.crt": server.public_bytes(serialization.Encoding.PEM),
        "server.key": _pem_key(server_key),
        "client.crt": client.public_bytes(serialization.Encoding.PEM),
        "client.key": _pem_key(client_key),
    }
    paths = {}
    for name, data in files.items():
        (directory / name).write_bytes(data)
        paths[name] = directory / name
    return paths


def user_data(
    pki: dict[str, Path], address: ipaddress.IPv4Address, pod_cidr: str, ssh_key: str
) -> str:
    """The cloud-config text: etcd-server from Debian, reconfigured for TLS, flannel key seeded."""
    url = f"https://{address}:2379"
    etcd_env = {
        "ETCD_NAME": "discovery",
        "ETCD_DATA_DIR": "/var/lib/etcd/default",
        "ETCD_LISTEN_CLIENT_URLS": "https://0.0.0.0:2379",
        "ETCD_ADVERTISE_CLIENT_URLS": url,
        "ETCD_CLIENT_CERT_AUTH": "true",
        "ETCD_TRUSTED_CA_FILE": "/etc/etcd/pki/ca.crt",
        "ETCD_CERT_FILE": "/etc/etcd/pki/server.crt",
        "ETCD_KEY_FILE": "/etc/etcd/pki/server.key",
    }
    etcdctl = (
        "ETCDCTL_API=3 etcdctl --endpoints https://127.0.0.1:2379 --cacert /etc/etcd/pki/ca.crt"
        " --cert /etc/etcd/pki/server.crt --key /etc/etcd/pki/server.key"
    )
    flannel = json.dumps({"Network": pod_cidr, "Backend": {"Type": "vxlan"}})
    staged = "/root/etcd-staged"
    config = {
        "ssh_authorized_keys": [ssh_key],
        "packages": ["etcd-server", "etcd-client"],
        # Staged, then installed after the package: the etcd user exists only then, and a
        # pre-existing /etc/default/etcd would make the package start etcd before its key is
        # readable.
        "write_files": [
            {"path": f"{staged}/{name}", "content": pki[name].read_text(), "permissions": "0600"}
            for name in ("ca.crt", "server.crt", "server.key")
        ]
        + [
            {
                "path": f"{staged}/etcd.env",
                "content": "".join(f"{k}={v}\n" for k, v in etcd_env.items()),
            }
        ],
        "runcmd": [
            ["install", "-d", "-o", "etcd", "-g", "etcd", "-m", "0750", "/etc/etcd/pki"],
            *(
                [
                    "install",
                    "-o",
                    "etcd",
                    "-g",
                    "etcd",
                    "-m",
                    "0600",
                    f"{staged}/{name}",
                    f"/etc/etcd/pki/{name}",
                ]
                for name in ("ca.crt", "server.crt", "server.key")
            ),
            ["install", "-m", "0644", f"{staged}/etcd.env", "/etc/default/etcd"],
            ["systemctl", "restart", "etcd"],
            ["sh", "-c", f"{etcdctl} put {FLANNEL_KEY} '{flannel}'"],
            ["sh", "-c", "echo runcmd >> /var/lib/vm-test-runcmd.count"],
        ],
    }
    return "#cloud-config\n" + yaml.safe_dump(config, sort_keys=False)
