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

from cloud_init.kubeconfig import ca_cert_hash, public_kubeconfig

SERVER = "https://203.0.113.10:6443"
FIXED = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)


def _cert(subject: str, key, issuer_key, issuer: str, ca: bool) -> x509.Certificate:
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key()).serial_number(1000 + len(subject))
            .not_valid_before(FIXED).not_valid_after(FIXED + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(issuer_key, hashes.SHA256()))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture(scope="module")
def admin_conf():
    """An admin.conf shaped like kubeadm's (its names, a private server address), carrying a
    real CA certificate and a real client certificate and key."""
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca = _cert("kubernetes", ca_key, ca_key, "kubernetes", ca=True)
    client_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    client = _cert("kubernetes-admin", client_key, ca_key, "kubernetes", ca=False)
    pem = serialization.Encoding.PEM
    text = yaml.safe_dump({
        "apiVersion": "v1",
        "clusters": [{"cluster": {"certificate-authority-data": _b64(ca.public_bytes(pem)),
                                  "server": "https://10.0.0.10:6443"},
                      "name": "kubernetes"}],
        "contexts": [{"context": {"cluster": "kubernetes", "user": "kubernetes-admin"},
                      "name": "kubernetes-admin@kubernetes"}],
        "current-context": "kubernetes-admin@kubernetes",
        "kind": "Config",
        "preferences": {},
        "users": [{"name": "kubernetes-admin",
                   "user": {"client-certificate-data": _b64(client.public_bytes(pem)),
                            "client-key-data": _b64(client_key.private_bytes(
                                pem, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption()))}}],
    })
    return text


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (Debian package)")
def test_public_kubeconfig_passes_kubectl(admin_conf, tmp_path):
    """kubectl itself reads the output: one cluster/user/context named after the stack, the
    public server, and the credentials intact (kubectl --raw shows the same data back)."""
    out = tmp_path / "kubeconfig"
    out.write_text(public_kubeconfig(admin_conf, SERVER, "dev"))
    # The documented check, as a user would run it, must succeed...
    subprocess.run(["kubectl", "config", "view", "--minify", "--kubeconfig", str(out)],
                   capture_output=True, check=True)
    # ...and its JSON form, with the data, is what the assertions read.
    view = subprocess.run(["kubectl", "config", "view", "--minify", "--raw", "-o", "json",
                           "--kubeconfig", str(out)], capture_output=True, text=True, check=True)
    shown = yaml.safe_load(view.stdout)
    assert shown["current-context"] == "dev"
    assert [c["name"] for c in shown["contexts"]] == ["dev"]
    assert shown["contexts"][0]["context"] == {"cluster": "dev", "user": "dev"}
    assert [(c["name"], c["cluster"]["server"]) for c in shown["clusters"]] == [("dev", SERVER)]
    original = yaml.safe_load(admin_conf)
    assert (shown["clusters"][0]["cluster"]["certificate-authority-data"]
            == original["clusters"][0]["cluster"]["certificate-authority-data"])
    assert shown["users"][0]["user"] == original["users"][0]["user"]
    current = subprocess.run(["kubectl", "config", "current-context", "--kubeconfig", str(out)],
                             capture_output=True, text=True, check=True)
    assert current.stdout.strip() == "dev"


def test_public_kubeconfig_is_deterministic_and_refuses_garbage(admin_conf):
    """Same input, same bytes (no churn in the stack output); a non-kubeconfig is an error."""
    assert public_kubeconfig(admin_conf, SERVER, "p") == public_kubeconfig(admin_conf, SERVER, "p")
    with pytest.raises(ValueError, match="kind: Config"):
        public_kubeconfig("apiVersion: v1\nkind: Pod\n", SERVER, "p")
    with pytest.raises(ValueError, match="current context"):
        public_kubeconfig("kind: Config\ncontexts: []\n", SERVER, "p")


@pytest.mark.parametrize("make_key", [
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048),
    lambda: ec.generate_private_key(ec.SECP256R1()),
], ids=["rsa", "ecdsa"])
def test_ca_cert_hash_matches_cryptography(make_key):
    """The pin is sha256 over the DER SubjectPublicKeyInfo, exactly as kubeadm computes it;
    cryptography produces that DER independently of our PEM-body shortcut."""
    key = make_key().public_key()
    pem = key.public_bytes(serialization.Encoding.PEM,
                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    der = key.public_bytes(serialization.Encoding.DER,
                           serialization.PublicFormat.SubjectPublicKeyInfo)
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
