"""The stand-in provider plugins (tools/engine/standins) answer the engine as the real tls,
random, command and kubernetes providers would: tls and random make real keys, certificates
and random values (they feed the nodes' user-data); command and kubernetes configure, check
and diff, and refuse to act. Driven over gRPC on 127.0.0.1, without the Pulumi CLI; the
certificate clock is a fake one."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import os
import signal
import subprocess
import sys
import warnings
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2 as pb
from pulumi.runtime.proto import provider_pb2_grpc
from engine.standin_rpc import START, Client, FakeClock

from planning import ROOT
from tools.engine.standins import randomness, tls
from tools.engine.standins.provider import Provider
from tools.engine.standins.refusing import Refusing
from tools.engine.standins.values import UNKNOWN, from_struct, is_secret, plain, secret, to_struct

KEY = "tls:index/privateKey:PrivateKey"
SELF = "tls:index/selfSignedCert:SelfSignedCert"
CSR = "tls:index/certRequest:CertRequest"
LOCAL = "tls:index/locallySignedCert:LocallySignedCert"
BYTES = "random:index/randomBytes:RandomBytes"
RID = "random:index/randomId:RandomId"
PASSWORD = "random:index/randomPassword:RandomPassword"
NONE, SOME = pb.DiffResponse.DIFF_NONE, pb.DiffResponse.DIFF_SOME
VERSIONS = {"tls": "5.6.2", "random": "4.21.4", "command": "1.2.1", "kubernetes": "4.34.2"}


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def tls_rpc(clock):
    client = Client(Provider(tls.PACKAGE, clock=clock))
    yield client
    client.close()


@pytest.fixture
def random_rpc():
    client = Client(Provider(randomness.PACKAGE))
    yield client
    client.close()


@pytest.fixture(params=["command", "kubernetes"])
def refusing_rpc(request):
    client = Client(Refusing(request.param))
    client.name = request.param
    yield client
    client.close()


# --- the plugin process ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(VERSIONS))
def test_each_plugin_prints_its_port_answers_its_pinned_version_and_stops_quietly(name):
    """The contract with tools/real-engine.sh: run from the checkout root as a module, print
    the port, serve, and stop on the engine's SIGINT (or a SIGTERM) without a traceback."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen(
            [sys.executable, "-m", "tools.engine.standins", name, "127.0.0.1:1", "-v=9"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            port = int(proc.stdout.readline())
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = provider_pb2_grpc.ResourceProviderStub(channel)
                assert stub.GetPluginInfo(empty_pb2.Empty(), timeout=30).version == VERSIONS[name]
                handshake = stub.Handshake(pb.ProviderHandshakeRequest(), timeout=30)
                assert handshake.accept_secrets
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
        assert proc.returncode == 0, err
        assert "Traceback" not in err


def test_an_unknown_plugin_name_is_one_usage_line():
    result = subprocess.run(
        [sys.executable, "-m", "tools.engine.standins", "aws"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "usage: python -m tools.engine.standins <tls|random|command|kubernetes> [engine args]"
    ]


def test_configure_accepts_secrets_and_offers_previews(tls_rpc):
    response = tls_rpc.stub.Configure(pb.ConfigureRequest(acceptSecrets=True))
    assert response.acceptSecrets and response.supportsPreview


# --- tls: keys ---------------------------------------------------------------------------------

KEY_CASES = {
    # inputs -> (key class, PEM header of privateKeyPem, key size or curve)
    "rsa-default": ({"algorithm": "RSA"}, rsa.RSAPrivateKey, "RSA PRIVATE KEY", 2048),
    "ecdsa-default": (
        {"algorithm": "ECDSA"},
        ec.EllipticCurvePrivateKey,
        "EC PRIVATE KEY",
        "secp224r1",
    ),
    "ecdsa-p256": (
        {"algorithm": "ECDSA", "ecdsaCurve": "P256"},
        ec.EllipticCurvePrivateKey,
        "EC PRIVATE KEY",
        "secp256r1",
    ),
    "ed25519": ({"algorithm": "ED25519"}, ed25519.Ed25519PrivateKey, "PRIVATE KEY", None),
}


@pytest.mark.parametrize("case", sorted(KEY_CASES))
def test_private_keys_parse_and_match_their_public_forms(tls_rpc, case):
    news, cls, header, size = KEY_CASES[case]
    inputs, rid, out = tls_rpc.make(KEY, news)
    assert inputs == {"rsaBits": 2048, "ecdsaCurve": "P224", **news}  # the documented defaults
    for name in ("privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"):
        assert is_secret(out[name]), name
    for name in ("publicKeyPem", "publicKeyOpenssh", "publicKeyFingerprintSha256"):
        assert not is_secret(out[name]), name
    out = plain(out)
    key = ser.load_pem_private_key(out["privateKeyPem"].encode(), None)
    assert isinstance(key, cls)
    assert out["privateKeyPem"].startswith(f"-----BEGIN {header}-----")
    assert out["privateKeyPemPkcs8"].startswith("-----BEGIN PRIVATE KEY-----")
    assert size in (
        None,
        getattr(key, "key_size", None),
        getattr(getattr(key, "curve", None), "name", None),
    )
    spki = (ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
    assert ser.load_pem_public_key(out["publicKeyPem"].encode()).public_bytes(*spki) == (
        key.public_key().public_bytes(*spki)
    )
    assert rid == hashlib.sha1(out["publicKeyPem"].encode()).hexdigest()
    if size == "secp224r1":  # OpenSSH has no P-224: the provider leaves those empty
        assert out["publicKeyOpenssh"] == out["privateKeyOpenssh"] == ""
        return
    ssh_public = ser.load_ssh_public_key(out["publicKeyOpenssh"].encode())
    assert ssh_public.public_bytes(*spki) == key.public_key().public_bytes(*spki)
    blob = base64.b64decode(out["publicKeyOpenssh"].split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert out["publicKeyFingerprintSha256"] == f"SHA256:{digest}"
    assert out["publicKeyFingerprintMd5"].replace(":", "") == hashlib.md5(blob).hexdigest()
    ssh_private = ser.load_ssh_private_key(out["privateKeyOpenssh"].encode(), None)
    assert ssh_private.public_key().public_bytes(*spki) == key.public_key().public_bytes(*spki)


def test_two_keys_of_the_same_inputs_differ(tls_rpc):
    _, _, a = tls_rpc.make(KEY, {"algorithm": "ED25519"})
    _, _, b = tls_rpc.make(KEY, {"algorithm": "ED25519"})
    assert plain(a)["privateKeyPem"] != plain(b)["privateKeyPem"]


# --- tls: certificates -------------------------------------------------------------------------


def make_ca(rpc, **extra):
    _, _, key = rpc.make(KEY, {"algorithm": "ECDSA", "ecdsaCurve": "P256"})
    news = {
        "privateKeyPem": key["privateKeyPem"],  # a secret, as the engine passes it on
        "isCaCertificate": True,
        "subject": {"commonName": "kubernetes", "organization": "openstack-k8s"},
        "validityPeriodHours": 87600,
        "allowedUses": ["cert_signing", "crl_signing", "digital_signature", "key_encipherment"],
        **extra,
    }
    inputs, rid, out = rpc.make(SELF, news)
    return key, inputs, rid, out


def make_leaf(rpc, ca_key, ca_out, **extra):
    _, _, key = rpc.make(KEY, {"algorithm": "ECDSA", "ecdsaCurve": "P256"})
    _, _, csr = rpc.make(
        CSR,
        {
            "privateKeyPem": key["privateKeyPem"],
            "subject": {"commonName": "kube-apiserver", "organization": "system:masters"},
            "dnsNames": ["kubernetes", "kubernetes.default.svc"],
            "ipAddresses": ["10.96.0.1", "192.0.2.10"],
            "uris": ["spiffe://cluster.local/apiserver"],
        },
    )
    news = {
        "certRequestPem": csr["certRequestPem"],
        "caPrivateKeyPem": ca_key["privateKeyPem"],
        "caCertPem": ca_out["certPem"],
        "validityPeriodHours": 100,
        "earlyRenewalHours": 10,
        "allowedUses": ["digital_signature", "key_encipherment", "server_auth", "client_auth"],
        **extra,
    }
    inputs, rid, out = rpc.make(LOCAL, news)
    return key, inputs, rid, out


def cert(out) -> x509.Certificate:
    return x509.load_pem_x509_certificate(plain(out)["certPem"].encode())


def test_a_self_signed_ca_carries_its_subject_usages_and_key_ids(tls_rpc):
    key, inputs, rid, out = make_ca(tls_rpc)
    ca = cert(out)
    assert inputs["setSubjectKeyId"] is False and inputs["earlyRenewalHours"] == 0  # defaults
    assert is_secret(out["privateKeyPem"])  # the secret input stays secret in the state
    assert rid == str(ca.serial_number)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kubernetes"
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "openstack-k8s"
    assert ca.issuer == ca.subject
    ca.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign and usage.digital_signature
    assert usage.key_encipherment and not usage.content_commitment
    assert ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert out["keyAlgorithm"] == "ECDSA"
    assert ca.not_valid_before_utc == START
    assert ca.not_valid_after_utc == START + datetime.timedelta(hours=87600)
    assert out["validityStartTime"] == "2026-01-01T12:00:00Z"
    assert out["validityEndTime"] == "2035-12-30T12:00:00Z"  # 3650 days: two leap days short
    assert out["readyForRenewal"] is False


def test_a_locally_signed_certificate_chains_to_its_ca_with_the_requested_names(tls_rpc):
    ca_key, _, _, ca_out = make_ca(tls_rpc)
    _, _, rid, out = make_leaf(tls_rpc, ca_key, ca_out)
    ca, leaf = cert(ca_out), cert(out)
    leaf.verify_directly_issued_by(ca)
    assert leaf.issuer == ca.subject and rid == str(leaf.serial_number)
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kube-apiserver"
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["kubernetes", "kubernetes.default.svc"]
    assert sans.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.96.0.1"),
        ipaddress.ip_address("192.0.2.10"),
    ]
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/apiserver"
    ]
    assert leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    usage = leaf.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.key_encipherment and not usage.key_cert_sign
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH,
        ExtendedKeyUsageOID.CLIENT_AUTH,
    ]
    with pytest.raises(x509.ExtensionNotFound):  # setSubjectKeyId defaults to false
        leaf.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == (
        ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    )
    assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == datetime.timedelta(hours=100)
    assert out["caKeyAlgorithm"] == "ECDSA" and out["readyForRenewal"] is False


def test_set_subject_key_id_puts_one_on_a_leaf(tls_rpc):
    ca_key, _, _, ca_out = make_ca(tls_rpc)
    _, _, _, out = make_leaf(tls_rpc, ca_key, ca_out, setSubjectKeyId=True)
    ski = cert(out).extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(cert(out).public_key()).digest


def test_a_ca_without_a_subject_is_refused_at_create(tls_rpc):
    _, _, key = tls_rpc.make(KEY, {"algorithm": "ED25519"})
    inputs = tls_rpc.checked(
        SELF,
        {
            "privateKeyPem": key["privateKeyPem"],
            "isCaCertificate": True,
            "validityPeriodHours": 1,
            "allowedUses": ["cert_signing"],
        },
    )
    with pytest.raises(grpc.RpcError) as err:
        tls_rpc.create(SELF, inputs)
    assert "needs at least one subject field" in err.value.details()


# --- tls: the renewal window -------------------------------------------------------------------


def test_ready_for_renewal_flips_when_the_early_renewal_window_opens(tls_rpc, clock):
    """validity 100 h, earlyRenewalHours 10: the next up replaces the certificate from hour 90
    on, and only then; the replacement is announced on readyForRenewal."""
    ca_key, _, _, ca_out = make_ca(tls_rpc)
    _, inputs, rid, state = make_leaf(tls_rpc, ca_key, ca_out)
    clock.advance(90 - 1 / 60)  # a minute before the window
    before = tls_rpc.diff(LOCAL, rid, state, inputs, inputs)
    assert before.changes == NONE and list(before.replaces) == []
    clock.advance(1 / 60)
    due = tls_rpc.diff(LOCAL, rid, state, inputs, inputs)
    assert due.changes == SOME and list(due.replaces) == ["readyForRenewal"]
    assert due.detailedDiff["readyForRenewal"].kind == pb.PropertyDiff.UPDATE_REPLACE
    # The replacement is a fresh certificate, valid from now and not due.
    _, renewed = tls_rpc.create(LOCAL, inputs)
    assert renewed["readyForRenewal"] is False
    assert cert(renewed).not_valid_before_utc == START + datetime.timedelta(hours=90)
    assert tls_rpc.diff(LOCAL, "x", renewed, inputs, inputs).changes == NONE
    assert clock.calls >= 4  # the provider read the fake clock, not the wall clock


def test_a_wider_renewal_window_is_an_update_that_can_make_the_certificate_due(tls_rpc, clock):
    ca_key, _, _, ca_out = make_ca(tls_rpc)
    _, inputs, rid, state = make_leaf(tls_rpc, ca_key, ca_out)
    clock.advance(50)
    wider = {**inputs, "earlyRenewalHours": 40}
    response = tls_rpc.diff(LOCAL, rid, state, inputs, wider)
    assert response.changes == SOME and list(response.replaces) == []
    assert response.detailedDiff["earlyRenewalHours"].kind == pb.PropertyDiff.UPDATE
    updated = tls_rpc.update(LOCAL, rid, state, wider)
    assert updated["earlyRenewalHours"] == 40 and updated["certPem"] == state["certPem"]
    assert updated["readyForRenewal"] is False
    widest = {**inputs, "earlyRenewalHours": 60}  # hour 50 is inside 100 - 60
    response = tls_rpc.diff(LOCAL, rid, updated, wider, widest)
    assert set(response.replaces) == {"readyForRenewal"}


def test_a_certificate_shorter_than_its_window_is_due_from_the_start(tls_rpc):
    ca_key, _, _, ca_out = make_ca(tls_rpc)
    _, _, _, out = make_leaf(tls_rpc, ca_key, ca_out, validityPeriodHours=5)
    assert out["readyForRenewal"] is True


# --- random ------------------------------------------------------------------------------------


def test_random_bytes_are_secret_and_agree_in_both_encodings(random_rpc):
    inputs, rid, out = random_rpc.make(BYTES, {"length": 32})
    assert rid == "none" and is_secret(out["base64"]) and is_secret(out["hex"])
    data = base64.b64decode(plain(out["base64"]))
    assert len(data) == 32 and data.hex() == plain(out["hex"])


def test_random_id_encodings_prefix_and_keepers(random_rpc):
    keepers = {"imageId": "8f6c1c3e-image"}
    _, rid, out = random_rpc.make(RID, {"byteLength": 4, "prefix": "n-", "keepers": keepers})
    assert not any(is_secret(v) for v in out.values())
    data = base64.urlsafe_b64decode(rid + "=" * (-len(rid) % 4))
    assert len(data) == 4
    assert out["b64Url"] == "n-" + rid
    assert out["b64Std"] == "n-" + base64.b64encode(data).decode()
    assert out["hex"] == "n-" + data.hex()
    assert out["dec"] == "n-" + str(int.from_bytes(data, "big"))
    assert out["keepers"] == keepers  # the program reads the pinned image id back from here


def test_random_password_classes_minimums_and_bcrypt_hash(random_rpc):
    inputs, rid, out = random_rpc.make(
        PASSWORD, {"length": 40, "minSpecial": 6, "overrideSpecial": "#%", "minNumeric": 5}
    )
    assert inputs["special"] and inputs["upper"] and inputs["lower"] and inputs["numeric"]
    assert rid == "none" and is_secret(out["result"]) and is_secret(out["bcryptHash"])
    result, hashed = plain(out["result"]), plain(out["bcryptHash"])
    assert len(result) == 40
    assert sum(c in "#%" for c in result) >= 6 and sum(c.isdigit() for c in result) >= 5
    assert set(result) <= set("#%0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert hashed.startswith("$2b$10$")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt
    assert crypt.crypt(result, hashed) == hashed
    assert crypt.crypt(result + "x", hashed) != hashed


def test_random_password_without_special_is_alphanumeric(random_rpc):
    """The VRRP password: length 8, special=False."""
    for _ in range(20):
        _, _, out = random_rpc.make(PASSWORD, {"length": 8, "special": False})
        assert plain(out["result"]).isalnum() and len(plain(out["result"])) == 8


# --- check: defaults and failures naming the property -----------------------------------------

BAD_INPUTS = [
    (KEY, {}, "algorithm", "missing required property algorithm"),
    (KEY, {"algorithm": "DSA"}, "algorithm", "'DSA' is not one of RSA, ECDSA, ED25519"),
    (KEY, {"algorithm": "ECDSA", "ecdsaCurve": "P999"}, "ecdsaCurve", "is not one of"),
    (KEY, {"algorithm": "RSA", "rsaBits": "big"}, "rsaBits", "must be a whole number"),
    (KEY, {"algorithm": "RSA", "rsaBits": 512}, "rsaBits", "at least 1024"),
    (KEY, {"algorithm": "RSA", "colour": "red"}, "colour", "not an input of"),
    (
        SELF,
        {"privateKeyPem": "k", "validityPeriodHours": 1, "allowedUses": ["flying"]},
        "allowedUses",
        "'flying'",
    ),
    (
        SELF,
        {"privateKeyPem": "k", "validityPeriodHours": -1, "allowedUses": []},
        "validityPeriodHours",
        "at least 0",
    ),
    (SELF, {"privateKeyPem": "k", "allowedUses": []}, "validityPeriodHours", "missing required"),
    (
        CSR,
        {"privateKeyPem": "k", "ipAddresses": ["10.0.0.300"]},
        "ipAddresses",
        "not an IP address",
    ),
    (CSR, {"privateKeyPem": "k", "subject": {"nickname": "x"}}, "subject", "not a subject field"),
    (CSR, {"privateKeyPem": "k", "privateKeyPemWo": "k"}, "privateKeyPemWo", "not supported"),
    (
        LOCAL,
        {
            "certRequestPem": "r",
            "caCertPem": "c",
            "validityPeriodHours": 1,
            "allowedUses": [],
            "earlyRenewalHours": -2,
        },
        "caPrivateKeyPem",
        "missing required",
    ),
    (BYTES, {"length": 0}, "length", "at least 1"),
    (RID, {"byteLength": 4, "keepers": ["a"]}, "keepers", "must be a map"),
    (
        PASSWORD,
        {"length": 4, "minUpper": 3, "minNumeric": 3},
        "length",
        "less than the min_* counts (6)",
    ),
    (
        PASSWORD,
        {"length": 4, "upper": False, "lower": False, "numeric": False, "special": False},
        "special",
        "no characters",
    ),
    (PASSWORD, {"length": 4, "number": False}, "number", "set numeric"),
]


@pytest.mark.parametrize(
    "token,news,prop,reason",
    BAD_INPUTS,
    ids=[f"{t.split(':')[-1]}-{p}" for t, _, p, _ in BAD_INPUTS],
)
def test_check_names_the_bad_property(tls_rpc, random_rpc, token, news, prop, reason):
    rpc = tls_rpc if token.startswith("tls:") else random_rpc
    _, failures = rpc.check(token, news)
    assert [p for p, _ in failures][:1] == [prop]
    assert reason in failures[0][1]
    assert "\n" not in failures[0][1]


def test_check_keeps_secrets_and_unknowns_and_validates_only_known_values(tls_rpc):
    news = {
        "privateKeyPem": secret("pem"),
        "validityPeriodHours": UNKNOWN,
        "allowedUses": [UNKNOWN],
    }
    inputs, failures = tls_rpc.check(SELF, news)
    assert failures == []
    assert inputs["privateKeyPem"] == secret("pem") and inputs["validityPeriodHours"] == UNKNOWN


def test_an_unknown_resource_type_is_an_error_naming_it(tls_rpc):
    with pytest.raises(grpc.RpcError) as err:
        tls_rpc.check("tls:index/privateKey:PublicKey", {})
    assert "tls:index/privateKey:PublicKey: not implemented by the openstack-k8s stand-in" in (
        err.value.details()
    )


# --- diff: what replaces -----------------------------------------------------------------------

# A valid set of inputs per type and, per input, another valid value: every input the stand-in
# knows must be listed here (so a new one gets its replace rule tested).
CHANGES = {
    KEY: ({"algorithm": "ECDSA"}, {"algorithm": "RSA", "ecdsaCurve": "P384", "rsaBits": 4096}),
    SELF: (
        {"privateKeyPem": "a", "validityPeriodHours": 1, "allowedUses": ["cert_signing"]},
        {
            "privateKeyPem": "b",
            "subject": {"commonName": "x"},
            "dnsNames": ["x"],
            "ipAddresses": ["10.0.0.1"],
            "uris": ["x:y"],
            "validityPeriodHours": 2,
            "allowedUses": ["crl_signing"],
            "isCaCertificate": True,
            "setSubjectKeyId": True,
            "setAuthorityKeyId": True,
            "maxPathLength": 1,
            "earlyRenewalHours": 3,
        },
    ),
    CSR: (
        {"privateKeyPem": "a"},
        {
            "privateKeyPem": "b",
            "subject": {"commonName": "x"},
            "dnsNames": ["x"],
            "ipAddresses": ["10.0.0.1"],
            "uris": ["x:y"],
        },
    ),
    LOCAL: (
        {
            "certRequestPem": "a",
            "caPrivateKeyPem": "a",
            "caCertPem": "a",
            "validityPeriodHours": 1,
            "allowedUses": [],
        },
        {
            "certRequestPem": "b",
            "caPrivateKeyPem": "b",
            "caCertPem": "b",
            "validityPeriodHours": 2,
            "allowedUses": ["server_auth"],
            "isCaCertificate": True,
            "setSubjectKeyId": True,
            "maxPathLength": 1,
            "earlyRenewalHours": 3,
        },
    ),
    BYTES: ({"length": 8}, {"length": 9, "keepers": {"a": "b"}}),
    RID: ({"byteLength": 4}, {"byteLength": 5, "prefix": "p", "keepers": {"a": "b"}}),
    PASSWORD: (
        {"length": 8},
        {
            "length": 9,
            "special": False,
            "upper": False,
            "lower": False,
            "numeric": False,
            "number": False,
            "minUpper": 1,
            "minLower": 1,
            "minNumeric": 1,
            "minSpecial": 1,
            "overrideSpecial": "#",
            "keepers": {"a": "b"},
        },
    ),
}
UPDATED_IN_PLACE = {(SELF, "earlyRenewalHours"), (LOCAL, "earlyRenewalHours")}
SUPPORTED = {
    (t, p.name)
    for pkg in (tls.PACKAGE, randomness.PACKAGE)
    for t, r in pkg.resources.items()
    for p in r.props
    if not p.unsupported
}


def test_every_input_has_a_replace_case():
    assert {(t, p) for t, (_, alt) in CHANGES.items() for p in alt} == SUPPORTED


@pytest.mark.parametrize("token,prop", sorted(SUPPORTED))
def test_a_changed_input_replaces_as_the_provider_does(tls_rpc, random_rpc, token, prop):
    rpc = tls_rpc if token.startswith("tls:") else random_rpc
    base, alt = CHANGES[token]
    old = rpc.checked(token, base)
    new = {**old, prop: alt[prop]}
    response = rpc.diff(token, "id", old, old, new)
    assert response.changes == SOME and list(response.diffs) == [prop]
    if (token, prop) in UPDATED_IN_PLACE:
        assert list(response.replaces) == []
    else:
        assert list(response.replaces) == [prop]
    unknown = rpc.diff(token, "id", old, old, {**old, prop: UNKNOWN})
    assert unknown.changes == SOME and list(unknown.diffs) == [prop]


def test_pem_inputs_differing_only_in_surrounding_whitespace_are_the_same(tls_rpc):
    old = {"privateKeyPem": "-----BEGIN X-----\nabc\n-----END X-----\n"}
    new = {"privateKeyPem": old["privateKeyPem"].strip()}
    assert tls_rpc.diff(CSR, "id", old, old, new).changes == NONE


# --- refresh and no-change diffs over what was really made --------------------------------------


def made(tls_rpc, random_rpc):
    """(rpc, token, inputs, id, state) of one real resource of every type."""
    ca_key, ca_inputs, ca_id, ca_out = make_ca(tls_rpc)
    _, leaf_inputs, leaf_id, leaf_out = make_leaf(tls_rpc, ca_key, ca_out)
    rows = [
        (tls_rpc, SELF, ca_inputs, ca_id, ca_out),
        (tls_rpc, LOCAL, leaf_inputs, leaf_id, leaf_out),
    ]
    for token, news in (
        (KEY, {"algorithm": "ED25519"}),
        (CSR, {"privateKeyPem": ca_key["privateKeyPem"], "dnsNames": []}),
    ):
        rows.append((tls_rpc, token, *tls_rpc.make(token, news)))
    for token, news in (
        (BYTES, {"length": 32}),
        (RID, {"byteLength": 4, "keepers": {"imageId": "i"}}),
        (PASSWORD, {"length": 8, "special": False}),
    ):
        rows.append((random_rpc, token, *random_rpc.make(token, news)))
    return rows


def test_read_returns_the_state_and_equal_inputs_diff_to_nothing(tls_rpc, random_rpc):
    """What `pulumi refresh` and `pulumi preview --expect-no-changes` right after an up ask."""
    rows = made(tls_rpc, random_rpc)
    assert len(rows) == 7
    for rpc, token, inputs, rid, state in rows:
        assert rpc.read(token, rid, state, inputs) == (rid, state, inputs), token
        again = rpc.checked(token, inputs)  # the program sends the same inputs again
        assert again == inputs, token
        assert rpc.diff(token, rid, state, inputs, again).changes == NONE, token


def test_delete_forgets_without_error(tls_rpc, random_rpc):
    for rpc, token, _inputs, rid, state in made(tls_rpc, random_rpc):
        rpc.delete(token, rid, state)


# --- previews ----------------------------------------------------------------------------------


def test_a_preview_create_leaves_every_computed_output_unknown(tls_rpc, random_rpc):
    rid, out = tls_rpc.create(KEY, tls_rpc.checked(KEY, {"algorithm": "ED25519"}), preview=True)
    assert rid == "" and out["algorithm"] == "ED25519"
    assert all(out[k] == UNKNOWN for k in tls.PACKAGE.resources[KEY].outputs)
    rid, out = random_rpc.create(
        PASSWORD, random_rpc.checked(PASSWORD, {"length": 8}), preview=True
    )
    assert out["result"] == UNKNOWN and out["bcryptHash"] == UNKNOWN and out["length"] == 8


# --- command and kubernetes: configure, check, diff, refuse ------------------------------------

COMMAND = "command:remote:Command"
CUSTOM = "kubernetes:cilium.io/v2:CiliumNetworkPolicy"


def test_refusing_standins_check_inputs_through_and_diff_equal_inputs_to_nothing(refusing_rpc):
    token = COMMAND if refusing_rpc.name == "command" else CUSTOM
    news = {"create": "true", "stdin": secret("s"), "metadata": {"name": "a"}}
    inputs = refusing_rpc.checked(token, news)
    assert inputs == news
    assert refusing_rpc.diff(token, "id", inputs, inputs, news).changes == NONE
    assert refusing_rpc.info() == VERSIONS[refusing_rpc.name]
    _, previewed = refusing_rpc.create(token, inputs, preview=True)
    assert previewed == inputs


@pytest.mark.parametrize("action", ["create", "update", "delete"])
def test_refusing_standins_refuse_to_act_with_one_line(refusing_rpc, action):
    token = COMMAND if refusing_rpc.name == "command" else CUSTOM
    calls = {
        "create": lambda: refusing_rpc.create(token, {"create": "true"}),
        "update": lambda: refusing_rpc.update(token, "id", {"create": "a"}, {"create": "b"}),
        "delete": lambda: refusing_rpc.delete(token, "id", {"create": "a"}),
    }
    with pytest.raises(grpc.RpcError) as err:
        calls[action]()
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    message = err.value.details()
    assert "\n" not in message
    assert (
        f"cannot {action}: the {refusing_rpc.name} provider here is openstack-k8s's stand-in"
        in message
    )
    assert "--exclude 'urn:pulumi:test::standins::" in message and "--exclude-dependents" in message


def test_command_triggers_replace_the_command_even_with_an_update_command():
    """pulumi-command 1.2.1 tags `triggers` replaceOnChanges, and pulumi-go-provider's infer
    Diff replaces on such an input whenever the resource has an Update (every command
    resource but CopyFile): a new `triggers` replaces, `update` command or not (the schema's
    description says an `update` would run instead; the code does not). This project's node
    commands all have an `update` (the script, or a no-op) and hold their VM's id in
    `triggers`: a replaced VM replaces them."""
    rpc = Client(Refusing("command"))
    try:
        for token in (COMMAND, "command:local:Command", "command:remote:CopyToRemote"):
            for update in ({}, {"update": "u"}, {"update": "true"}):
                old = {"create": "a", "triggers": ["1"], **update}
                for news in (
                    {**old, "triggers": ["2"]},
                    {**old, "triggers": [UNKNOWN]},  # a new VM's id, in a preview
                    {**old, "triggers": ["2"], "create": "b", "stdin": "s"},
                ):
                    diff = rpc.diff(token, "id", old, old, news)
                    assert diff.changes == SOME and list(diff.replaces) == ["triggers"], (
                        token,
                        news,
                    )
                    assert diff.detailedDiff["triggers"].kind == pb.PropertyDiff.UPDATE_REPLACE
                added = rpc.diff(token, "id", old, old, {**old, "triggers": ["1", "2"]})
                assert list(added.replaces) == ["triggers"]
                first = {k: v for k, v in old.items() if k != "triggers"}
                assert list(rpc.diff(token, "id", first, first, old).replaces) == ["triggers"]
        # Anything else is an update: it runs `update`, or `create` again.
        old = {"create": "a", "update": "u", "triggers": ["1"]}
        for key in ("create", "update", "stdin"):
            changed = rpc.diff(COMMAND, "id", old, old, {**old, key: "b"})
            assert changed.changes == SOME and list(changed.replaces) == [], key
            assert list(changed.diffs) == [key]
            assert changed.detailedDiff[key].kind == pb.PropertyDiff.UPDATE
    finally:
        rpc.close()


def test_copy_file_has_no_update_and_is_replaced_on_any_change():
    """remote:CopyFile (deprecated) has no Update in pulumi-command 1.2.1: infer replaces it
    on every change."""
    rpc = Client(Refusing("command"))
    try:
        old = {"localPath": "a", "remotePath": "b"}
        diff = rpc.diff("command:remote:CopyFile", "id", old, old, {**old, "remotePath": "c"})
        assert diff.changes == SOME and list(diff.replaces) == ["remotePath"]
    finally:
        rpc.close()


def test_kubernetes_objects_are_replaced_on_a_new_identity_and_updated_otherwise():
    rpc = Client(Refusing("kubernetes"))
    try:
        old = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "n"},
            "data": {"k": "1"},
        }
        renamed = {**old, "metadata": {"name": "b", "namespace": "n"}}
        assert list(rpc.diff(CUSTOM, "id", old, old, renamed).replaces) == ["metadata.name"]
        changed = rpc.diff(CUSTOM, "id", old, old, {**old, "data": {"k": "2"}})
        assert changed.changes == SOME and list(changed.replaces) == []
    finally:
        rpc.close()


def test_kubernetes_provider_config_replaces_only_on_a_new_cluster_identifier():
    """The program sets clusterIdentifier so that a renewed kubeconfig updates the provider
    instead of replacing it (and every object it made)."""
    rpc = Client(Refusing("kubernetes"))
    try:

        def diff(olds, news):
            return rpc.stub.DiffConfig(
                pb.DiffRequest(
                    urn="urn:pulumi:test::standins::pulumi:providers:kubernetes::p",
                    olds=to_struct(olds),
                    news=to_struct(news),
                )
            )

        old = {"kubeconfig": "one", "clusterIdentifier": "p/s/c"}
        assert diff(old, old).changes == NONE
        renewed = diff(old, {**old, "kubeconfig": "two"})
        assert renewed.changes == SOME and list(renewed.replaces) == []
        assert list(diff(old, {**old, "clusterIdentifier": "p/s/d"}).replaces) == [
            "clusterIdentifier"
        ]
        bare = {"kubeconfig": "one"}
        assert list(diff(bare, {"kubeconfig": UNKNOWN}).replaces) == ["kubeconfig"]
        checked = rpc.stub.CheckConfig(pb.CheckRequest(news=to_struct(old)))
        assert list(checked.failures) == [] and from_struct(checked.inputs) == old
    finally:
        rpc.close()


# --- through the real CLI ----------------------------------------------------------------------


def install_standins(cli: str, work: Path, env: dict[str, str]) -> None:
    """The stand-ins as installed plugins, wrapped as tools/real-engine.sh wraps them."""
    for name, version in VERSIONS.items():
        wrapper = work / f"pulumi-resource-{name}"
        wrapper.write_text(
            f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m tools.engine.standins {name} "$@"\n'
        )
        wrapper.chmod(0o755)
        subprocess.run(
            [cli, "plugin", "install", "resource", name, version, "--file", str(wrapper)],
            env=env,
            check=True,
            capture_output=True,
            timeout=120,
        )


def inline_stack(tmp_path: Path, engine, program):
    """A stack "test" of project "standins" running `program` inline on the Go-built CLI of
    tools/real-engine.sh, with the stand-ins installed into a PULUMI_HOME of its own and a
    local file backend."""
    from pulumi import automation as auto

    cli = engine.pulumi
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "pulumi").symlink_to(cli)
    (tmp_path / "state").mkdir()
    env = {
        **os.environ,
        "PULUMI_HOME": str(tmp_path / "home"),
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        # Only the installed stand-ins: never a pulumi-resource-* found on PATH.
        "PULUMI_IGNORE_AMBIENT_PLUGINS": "true",
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": "standins",
        "PULUMI_SKIP_UPDATE_CHECK": "true",
    }
    install_standins(cli, tmp_path, env)
    return auto.create_or_select_stack(
        "test",
        project_name="standins",
        program=program,
        opts=auto.LocalWorkspaceOptions(
            pulumi_command=auto.PulumiCommand(root=str(tmp_path)),
            env_vars=env,
            pulumi_home=env["PULUMI_HOME"],
            work_dir=str(tmp_path),
        ),
    )


def standins_program():
    """Every stand-in resource type the project uses, wired as the project wires them, and one
    command and one Kubernetes object that must be excluded."""
    import pulumi
    import pulumi_command as command
    import pulumi_kubernetes as k8s
    import pulumi_random as random
    import pulumi_tls as tls

    config = pulumi.Config()
    key = tls.PrivateKey("ca-key", algorithm="ECDSA", ecdsa_curve="P256")
    ca = tls.SelfSignedCert(
        "ca",
        private_key_pem=key.private_key_pem,
        is_ca_certificate=True,
        subject=tls.SelfSignedCertSubjectArgs(common_name="kubernetes", organization="o"),
        validity_period_hours=1000,
        allowed_uses=["cert_signing", "digital_signature"],
    )
    leaf_key = tls.PrivateKey("leaf-key", algorithm="ED25519")
    csr = tls.CertRequest(
        "leaf-csr",
        private_key_pem=leaf_key.private_key_pem,
        subject=tls.CertRequestSubjectArgs(common_name="admin", organization="system:masters"),
        dns_names=["api.example"],
        ip_addresses=["10.0.0.1"],
    )
    # Ready for renewal from the start when earlyRenewalHours is wider than its validity.
    leaf = tls.LocallySignedCert(
        "leaf",
        cert_request_pem=csr.cert_request_pem,
        ca_private_key_pem=key.private_key_pem,
        ca_cert_pem=ca.cert_pem,
        validity_period_hours=100,
        early_renewal_hours=config.get_int("earlyRenewalHours") or 10,
        allowed_uses=["digital_signature", "client_auth"],
    )
    password = random.RandomPassword("vrrp", length=8, special=False)
    key_bytes = random.RandomBytes("encryption-key", length=32)
    pin = random.RandomId(
        "image",
        byte_length=4,
        keepers={"imageId": config.get("image") or "img-1"},
        opts=pulumi.ResourceOptions(ignore_changes=["keepers"]),
    )
    command.remote.Command(
        "cmd",
        connection=command.remote.ConnectionArgs(host="192.0.2.1"),
        create="true",
        stdin=password.result,
    )
    provider = k8s.Provider("k8s", kubeconfig=leaf.cert_pem, cluster_identifier="standins/test")
    k8s.core.v1.ConfigMap("cm", data={"a": "b"}, opts=pulumi.ResourceOptions(provider=provider))
    pulumi.export("ca", ca.cert_pem)
    pulumi.export("leaf", leaf.cert_pem)
    pulumi.export("leafSerial", leaf.id)
    pulumi.export("password", password.result)
    pulumi.export("bytes", key_bytes.base64)
    pulumi.export("image", pin.keepers.apply(lambda k: k["imageId"]))
    # And the project's own PKI functions, with the inputs the program really sends.
    from components import pki

    parent = pulumi.ComponentResource("standins:test:Pki", "pki")
    cluster = pki.kubernetes_pki("k", parent)
    api = pki.signed_certificate(
        "api",
        ca=cluster.ca,
        common_name="kube-apiserver",
        uses=["server_auth"],
        parent=parent,
        dns_names=["kubernetes"],
        ip_addresses=["10.96.0.1"],
    )
    pulumi.export("clusterCa", cluster.ca.cert)
    pulumi.export("apiCert", api.cert)


@pytest.mark.engine
def test_a_real_pulumi_program_runs_on_the_standins(tmp_path, engine):
    """preview, up (command and Kubernetes excluded), preview --expect-no-changes, refresh,
    an up that would create a command (refused in one line), a renewal window opened by
    config (the certificate is replaced, nothing else), destroy: the real CLI with the
    stand-ins installed into a PULUMI_HOME of the test's own, the program inline (the SDK
    serves the language runtime itself: no language host needed)."""
    from pulumi import automation as auto

    stack = inline_stack(tmp_path, engine, standins_program)
    prefix = "urn:pulumi:test::standins::"
    excluded = {
        "exclude": [
            f"{prefix}command:remote:Command::cmd",
            f"{prefix}kubernetes:core/v1:ConfigMap::cm",
        ],
        "exclude_dependents": True,
    }

    # A preview of everything: the refusing stand-ins show what would be created.
    assert stack.preview().change_summary == {"create": 23}

    up = stack.up(**excluded)
    # 19 resources of tls and random, the stack, the PKI component and the kubernetes provider.
    assert up.summary.resource_changes == {"create": 21, "same": 2}
    outputs = up.outputs
    assert outputs["password"].secret and outputs["bytes"].secret
    assert len(outputs["password"].value) == 8 and outputs["password"].value.isalnum()
    assert len(base64.b64decode(outputs["bytes"].value)) == 32
    assert outputs["image"].value == "img-1"
    ca = x509.load_pem_x509_certificate(outputs["ca"].value.encode())
    leaf = x509.load_pem_x509_certificate(outputs["leaf"].value.encode())
    leaf.verify_directly_issued_by(ca)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["api.example"]
    api = x509.load_pem_x509_certificate(outputs["apiCert"].value.encode())
    api.verify_directly_issued_by(
        x509.load_pem_x509_certificate(outputs["clusterCa"].value.encode())
    )
    assert isinstance(api.public_key(), ec.EllipticCurvePublicKey)
    assert api.public_key().curve.name == "secp256r1"  # the program's ECDSA P-256
    # No private key in the clear anywhere in the state: every copy is a secret.
    (checkpoint,) = (tmp_path / "state").rglob("test.json")
    saved = checkpoint.read_text()
    assert "PRIVATE KEY" not in saved and saved.count('"ciphertext"') >= 15
    assert "BEGIN CERTIFICATE" in saved  # the certificates are not secrets
    assert stack.preview(expect_no_changes=True, **excluded).change_summary == {"same": 23}
    assert stack.refresh(expect_no_changes=True).summary.resource_changes == {"same": 21}
    # A changed keeper is ignored (the program's pinned image id stays).
    stack.set_config("image", auto.ConfigValue("img-2"))
    assert stack.preview(expect_no_changes=True, **excluded).change_summary == {"same": 23}

    with pytest.raises(auto.errors.CommandError) as refused:
        stack.up()
    assert "cannot create: the command provider here is openstack-k8s's stand-in" in str(
        refused.value
    )
    assert f"pulumi up --exclude '{prefix}command:remote:Command::cmd' --exclude-dependents" in (
        str(refused.value)
    )

    # The renewal window opens (earlyRenewalHours beyond the validity): the next up replaces
    # the certificate, and only it (the kubernetes provider's kubeconfig follows, in place).
    stack.set_config("earlyRenewalHours", auto.ConfigValue("200"))
    preview = stack.preview(**excluded)
    assert preview.change_summary.get("replace") == 1, preview.change_summary
    renewed = stack.up(**excluded)
    assert renewed.summary.resource_changes.get("replace") == 1
    assert renewed.outputs["leafSerial"].value != outputs["leafSerial"].value
    assert renewed.outputs["ca"].value == outputs["ca"].value

    assert stack.destroy().summary.resource_changes == {"delete": 21}


def command_program():
    """One node command as components/commands.node_command makes a run-once one: an
    `update` (a no-op), its VM's id in `triggers`, its script and jump host ignored."""
    import pulumi
    import pulumi_command as command

    config = pulumi.Config()
    command.remote.Command(
        "cmd",
        connection=command.remote.ConnectionArgs(host="192.0.2.1"),
        create="sudo bash -s",
        update="true",
        stdin=config.get("script") or "v1",
        triggers=[config.get("vm") or "vm-1"],
        opts=pulumi.ResourceOptions(ignore_changes=["stdin", "connection"]),
    )


@pytest.mark.engine
def test_the_real_engine_replaces_a_command_whose_triggers_change(tmp_path, engine):
    """Through the Go-built CLI, over a state that holds a command (imported: the stand-in
    creates none): a new VM id in `triggers` replaces the command although it has an
    `update`, as pulumi-command 1.2.1 does; a new script alone (ignored) changes nothing."""
    from pulumi import automation as auto

    stack = inline_stack(tmp_path, engine, command_program)
    cmd = "urn:pulumi:test::standins::command:remote:Command::cmd"
    steps: list = []  # the command's steps, as the engine announces them

    def keep(event) -> None:
        pre = event.resource_pre_event
        if pre is not None and pre.metadata.urn == cmd:
            steps.append(pre.metadata)

    assert stack.preview(on_event=keep).change_summary == {"create": 2}
    (planned,) = steps
    assert planned.op.value == "create"
    # The stack resource and the command's default provider in state; then the command as
    # the real provider would have created it (its outputs echo its inputs).
    up = stack.up(exclude=[cmd]).summary.resource_changes
    assert up == {"create": 1, "same": 1}, up  # the stack; the command left out
    deployment = stack.export_stack()
    resources = deployment.deployment["resources"]
    (default,) = [r for r in resources if r["type"] == "pulumi:providers:command"]
    # The preview showed the connection as a secret placeholder; it is ignored, so a plain
    # one does in state.
    inputs = {**planned.new.inputs, "connection": {"host": "192.0.2.1"}}
    assert inputs["update"] == "true" and inputs["triggers"] == ["vm-1"]
    resources.append(
        {
            "urn": cmd,
            "custom": True,
            "id": "cmd-1",
            "type": "command:remote:Command",
            "inputs": inputs,
            "outputs": {**inputs, "stdout": "", "stderr": ""},
            "parent": planned.new.parent,
            "provider": f"{default['urn']}::{default['id']}",
        }
    )
    stack.import_stack(deployment)
    assert stack.preview(expect_no_changes=True).change_summary == {"same": 2}

    stack.set_config("script", auto.ConfigValue("v2"))  # ignored: nothing to do
    assert stack.preview(expect_no_changes=True).change_summary == {"same": 2}

    stack.set_config("vm", auto.ConfigValue("vm-2"))
    preview = stack.preview(on_event=keep)
    assert preview.change_summary == {"replace": 1, "same": 1}, preview.change_summary
    by_op = {step.op.value: step for step in steps[1:]}
    assert sorted(by_op) == ["create-replacement", "delete-replaced", "replace"], sorted(by_op)
    replaced = by_op["replace"]
    assert replaced.keys == ["triggers"]
    # The replacement is created from the program's inputs: the ignored script too.
    assert replaced.new.inputs["stdin"] == "v2" and replaced.old.inputs["stdin"] == "v1"


def test_what_the_standins_do_not_implement_is_a_clean_unimplemented(tls_rpc, capfd):
    with pytest.raises(grpc.RpcError) as err:
        tls_rpc.stub.Invoke(pb.InvokeRequest(tok="tls:index/getPublicKey:getPublicKey"))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "openstack-k8s stand-in for tls" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        tls_rpc.stub.Parameterize(pb.ParameterizeRequest())
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "Traceback" not in capfd.readouterr().err


def test_a_bad_pem_fails_the_create_with_one_line_naming_the_input(tls_rpc):
    inputs = tls_rpc.checked(CSR, {"privateKeyPem": "not a key"})
    with pytest.raises(grpc.RpcError) as err:
        tls_rpc.create(CSR, inputs)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert err.value.details().startswith(f"{CSR}: privateKeyPem: not a PEM private key")
    assert "\n" not in err.value.details()
