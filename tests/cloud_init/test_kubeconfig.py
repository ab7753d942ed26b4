"""The kubeconfig users get from the stack output, and the CA pin joins carry, built from real
key material (made with `cryptography`) and checked by kubectl itself and by cryptography's own
DER encoding."""

import base64
import datetime
import shutil
import subprocess

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from cloud_init.kubeconfig import ADMIN_GROUP, ADMIN_USER, admin_kubeconfig, ca_cert_hash

SERVER = "https://203.0.113.10:6443"
FIXED = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _cert(subject: str, key, issuer_key, issuer: str, ca: bool) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(1000 + len(subject))
        .not_valid_before(FIXED)
        .not_valid_after(FIXED + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def admin_pems():
    """A real CA, and a client certificate and key it signed, as PEM text."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("kubernetes", ca_key, ca_key, "kubernetes", ca=True)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _cert("openstack-k8s-admin", client_key, ca_key, "kubernetes", ca=False)
    pem = serialization.Encoding.PEM
    return {
        "ca_pem": ca.public_bytes(pem).decode(),
        "cert_pem": client.public_bytes(pem).decode(),
        "key_pem": client_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode(),
    }


def test_admin_kubeconfig_passes_kubectl(admin_pems, tmp_path):
    """kubectl itself reads the output: one cluster/user/context named after the stack, the
    public server, and the program's CA and client certificate intact."""
    assert shutil.which("kubectl"), "kubectl is missing: tools/test.sh installs it"
    out = tmp_path / "kubeconfig"
    out.write_text(admin_kubeconfig(server=SERVER, name="dev", **admin_pems))
    # The documented check, as a user would run it, must succeed...
    subprocess.run(
        ["kubectl", "config", "view", "--minify", "--kubeconfig", str(out)],
        capture_output=True,
        check=True,
    )
    # ...and its JSON form, with the data, is what the assertions read.
    view = subprocess.run(
        ["kubectl", "config", "view", "--minify", "--raw", "-o", "json", "--kubeconfig", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    shown = yaml.safe_load(view.stdout)
    assert shown["current-context"] == "dev"
    assert shown["contexts"][0]["context"] == {"cluster": "dev", "user": "dev"}
    assert [(c["name"], c["cluster"]["server"]) for c in shown["clusters"]] == [("dev", SERVER)]
    cluster, user = shown["clusters"][0]["cluster"], shown["users"][0]["user"]
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == admin_pems["ca_pem"]
    assert base64.b64decode(user["client-certificate-data"]).decode() == admin_pems["cert_pem"]
    assert base64.b64decode(user["client-key-data"]).decode() == admin_pems["key_pem"]


def test_admin_kubeconfig_is_deterministic_and_refuses_garbage(admin_pems):
    """Same input, same bytes (no churn in the stack output); a non-PEM is an error."""
    a = admin_kubeconfig(server=SERVER, name="p", **admin_pems)
    assert a == admin_kubeconfig(server=SERVER, name="p", **admin_pems)
    with pytest.raises(ValueError, match="key is not PEM"):
        admin_kubeconfig(server=SERVER, name="p", **{**admin_pems, "key_pem": "secret"})


def test_exported_kubeconfig_is_issued_by_the_program(plan):
    """The kubeconfig is built by the program, not read from the first master: its client
    certificate comes from the cluster CA through pulumi-tls, for a year, in kubeadm's
    cluster-admins group, renewed by any `pulumi up` in its last two months. No command
    reads admin.conf (its certificate would expire after a year, with nothing to renew it)."""
    p = plan("dev")
    assert not [r for r in p.resources if r["name"].endswith("-kubeconfig")]
    csr = p.named("dev-admin-csr")["inputs"]
    assert csr["subject"] == {"commonName": ADMIN_USER, "organization": ADMIN_GROUP}
    cert = p.named("dev-admin-cert")
    assert cert["inputs"]["validityPeriodHours"] == 365 * 24
    assert cert["inputs"]["earlyRenewalHours"] == 60 * 24
    assert cert["inputs"]["allowedUses"] == ["digital_signature", "key_encipherment", "client_auth"]
    signers = {p.by_urn[u]["name"] for u in cert["dependencies"]}
    assert {"dev-ca-cert", "dev-ca-key", "dev-admin-csr"} <= signers


@pytest.mark.parametrize(
    "make_key",
    [
        lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
        lambda: ec.generate_private_key(ec.SECP256R1()),
    ],
    ids=["rsa", "ecdsa"],
)
def test_ca_cert_hash_matches_cryptography(make_key):
    """The pin is sha256 over the DER SubjectPublicKeyInfo, exactly as kubeadm computes it;
    cryptography produces that DER independently of our PEM-body shortcut."""
    key = make_key().public_key()
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    assert ca_cert_hash(pem) == "sha256:" + digest.finalize().hex()
    assert len(ca_cert_hash(pem)) == len("sha256:") + 64


def test_ca_cert_hash_refuses_other_pem_kinds():
    """A PKCS#1 RSA PUBLIC KEY or a certificate would hash to a pin kubeadm rejects: refuse."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    pkcs1 = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    with pytest.raises(ValueError, match="PUBLIC KEY"):
        ca_cert_hash(pkcs1)
