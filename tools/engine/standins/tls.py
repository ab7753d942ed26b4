"""Stand-in for pulumi-tls 5.6.2: keys, requests and certificates made with `cryptography`.

Names, defaults and what replaces follow the provider (hashicorp/terraform-provider-tls,
bridged): every input replaces the resource except a certificate's earlyRenewalHours, which
is updated in place; a certificate whose renewal window has opened (now >= validityEndTime -
earlyRenewalHours) is replaced by the next up, announced as a change of readyForRenewal.
One deliberate difference: Read returns the state as stored (the provider flips
readyForRenewal during a refresh; here the flip shows in the diff of the next preview or up).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import secrets
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .schema import Package, Prop, ResourceType

VERSION = "5.6.2"

CURVES = {"P224": ec.SECP224R1, "P256": ec.SECP256R1, "P384": ec.SECP384R1, "P521": ec.SECP521R1}

KEY_USAGES = {
    "digital_signature": "digital_signature",
    "content_commitment": "content_commitment",
    "key_encipherment": "key_encipherment",
    "data_encipherment": "data_encipherment",
    "key_agreement": "key_agreement",
    "cert_signing": "key_cert_sign",
    "crl_signing": "crl_sign",
    "encipher_only": "encipher_only",
    "decipher_only": "decipher_only",
}
EXT_KEY_USAGES = {
    "any_extended": ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    "server_auth": ExtendedKeyUsageOID.SERVER_AUTH,
    "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
    "code_signing": ExtendedKeyUsageOID.CODE_SIGNING,
    "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
    "ipsec_end_system": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.5"),
    "ipsec_tunnel": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.6"),
    "ipsec_user": x509.ObjectIdentifier("1.3.6.1.5.5.7.3.7"),
    "timestamping": ExtendedKeyUsageOID.TIME_STAMPING,
    "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING,
    "microsoft_server_gated_crypto": x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.3"),
    "netscape_server_gated_crypto": x509.ObjectIdentifier("2.16.840.1.113730.4.1"),
    "microsoft_commercial_code_signing": x509.ObjectIdentifier("1.3.6.1.4.1.311.2.1.22"),
    "microsoft_kernel_code_signing": x509.ObjectIdentifier("1.3.6.1.4.1.311.61.1.1"),
}
USES = tuple(sorted([*KEY_USAGES, *EXT_KEY_USAGES]))

# Subject fields in the order Go's x509 writes them (the provider is Go).
SUBJECT = (
    ("country", NameOID.COUNTRY_NAME),
    ("province", NameOID.STATE_OR_PROVINCE_NAME),
    ("locality", NameOID.LOCALITY_NAME),
    ("streetAddresses", NameOID.STREET_ADDRESS),
    ("postalCode", NameOID.POSTAL_CODE),
    ("organization", NameOID.ORGANIZATION_NAME),
    ("organizationalUnit", NameOID.ORGANIZATIONAL_UNIT_NAME),
    ("commonName", NameOID.COMMON_NAME),
    ("serialNumber", NameOID.SERIAL_NUMBER),
    ("emailAddress", NameOID.EMAIL_ADDRESS),
)


# --- keys -----------------------------------------------------------------------------------


def _algorithm(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "RSA"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ECDSA"
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return "ED25519"
    raise ValueError(f"unsupported key type {type(key).__name__}")


def load_private_key(pem: str, prop: str):
    try:
        key = ser.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{prop}: not a PEM private key ({err})") from None
    _algorithm(key)
    return key


def _openssh(key) -> tuple[str, str, str, str]:
    """(private key, public key line, MD5 and SHA256 fingerprints) in OpenSSH's formats; all
    empty for a curve OpenSSH does not know (P224), as the provider leaves them."""
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp224r1":
        return "", "", "", ""
    public = key.public_key().public_bytes(ser.Encoding.OpenSSH, ser.PublicFormat.OpenSSH)
    blob = base64.b64decode(public.split()[1])
    md5 = hashlib.md5(blob, usedforsecurity=False).hexdigest()
    sha = base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    private = key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption())
    return (
        private.decode(),
        public.decode() + "\n",
        ":".join(md5[i : i + 2] for i in range(0, len(md5), 2)),
        f"SHA256:{sha}",
    )


def new_key(inputs: dict[str, Any]):
    algorithm = inputs["algorithm"]
    if algorithm == "RSA":
        return rsa.generate_private_key(public_exponent=65537, key_size=inputs["rsaBits"])
    if algorithm == "ECDSA":
        return ec.generate_private_key(CURVES[inputs["ecdsaCurve"]]())
    return ed25519.Ed25519PrivateKey.generate()


def create_private_key(inputs: dict[str, Any], _now: datetime.datetime):
    key = new_key(inputs)
    # PKCS#1 for RSA and SEC 1 for ECDSA ("RSA/EC PRIVATE KEY"); ED25519 has only PKCS#8.
    traditional = (
        ser.PrivateFormat.PKCS8
        if inputs["algorithm"] == "ED25519"
        else (ser.PrivateFormat.TraditionalOpenSSL)
    )
    public_pem = (
        key.public_key()
        .public_bytes(ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    ssh_private, ssh_public, md5, sha256 = _openssh(key)
    outputs = {
        "privateKeyPem": key.private_bytes(
            ser.Encoding.PEM, traditional, ser.NoEncryption()
        ).decode(),
        "privateKeyPemPkcs8": key.private_bytes(
            ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()
        ).decode(),
        "privateKeyOpenssh": ssh_private,
        "publicKeyPem": public_pem,
        "publicKeyOpenssh": ssh_public,
        "publicKeyFingerprintMd5": md5,
        "publicKeyFingerprintSha256": sha256,
    }
    # The provider's id: a SHA-1 of the public key PEM.
    return hashlib.sha1(public_pem.encode(), usedforsecurity=False).hexdigest(), outputs


# --- subjects and names -----------------------------------------------------------------------


def subject_name(subject: dict[str, Any] | None) -> x509.Name:
    attrs = []
    for field, oid in SUBJECT:
        value = (subject or {}).get(field)
        for item in value if isinstance(value, list) else [value]:
            if item:
                attrs.append(x509.NameAttribute(oid, item))
    return x509.Name(attrs)


def alt_names(inputs: dict[str, Any]) -> list[x509.GeneralName]:
    return (
        [x509.DNSName(d) for d in inputs.get("dnsNames") or []]
        + [x509.IPAddress(ipaddress.ip_address(i)) for i in inputs.get("ipAddresses") or []]
        + [x509.UniformResourceIdentifier(u) for u in inputs.get("uris") or []]
    )


def _signature_hash(key):
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384() if key.curve.key_size == 384 else hashes.SHA512()
    return hashes.SHA256()


def subject_rules(inputs: dict[str, Any]) -> list[tuple[str, str]]:
    failures = []
    for ip in inputs.get("ipAddresses") or []:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            failures.append(("ipAddresses", f"ipAddresses: {ip!r} is not an IP address"))
    known = {f for f, _ in SUBJECT}
    for field in inputs.get("subject") or {}:
        if field not in known:
            failures.append(("subject", f"subject: {field!r} is not a subject field"))
    return failures


# --- certificates -----------------------------------------------------------------------------


def rfc3339(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def ready_for_renewal(end: str, early_hours: int, now: datetime.datetime) -> bool:
    """True once now >= end - earlyRenewalHours (a certificate past its end is ready too)."""
    ends = datetime.datetime.fromisoformat(end.replace("Z", "+00:00"))
    return now >= ends - datetime.timedelta(hours=early_hours)


def _key_usage(uses: list[str]) -> x509.KeyUsage | None:
    flags = {flag: False for flag in KEY_USAGES.values()}
    for use in uses:
        if use in KEY_USAGES:
            flags[KEY_USAGES[use]] = True
    return x509.KeyUsage(**flags) if any(flags.values()) else None


def sign(
    inputs: dict[str, Any],
    now: datetime.datetime,
    *,
    subject: x509.Name,
    sans: list[x509.GeneralName],
    public_key,
    ca_key,
    issuer: x509.Name,
    authority_key_id: bytes | None,
) -> tuple[str, dict[str, Any]]:
    """Issue the certificate the inputs describe; (serial as id, outputs)."""
    is_ca = inputs.get("isCaCertificate", False)
    if is_ca and not subject:
        raise ValueError("a CA certificate needs at least one subject field")
    start = now.astimezone(datetime.UTC).replace(microsecond=0)
    end = start + datetime.timedelta(hours=inputs["validityPeriodHours"])
    serial = secrets.randbits(128) | 1
    path_length = inputs.get("maxPathLength")
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.BasicConstraints(
                ca=is_ca,
                path_length=path_length if is_ca and path_length not in (None, -1) else None,
            ),
            critical=True,
        )
    )
    uses = inputs.get("allowedUses") or []
    usage = _key_usage(uses)
    if usage:
        builder = builder.add_extension(usage, critical=True)
    ekus = [EXT_KEY_USAGES[u] for u in uses if u in EXT_KEY_USAGES]
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if sans:
        # RFC 5280: the alternative names are critical when they are the only names.
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=not subject)
    if is_ca or inputs.get("setSubjectKeyId"):
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
        )
    if authority_key_id:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier(authority_key_id, None, None), critical=False
        )
    cert = builder.sign(ca_key, _signature_hash(ca_key))
    outputs = {
        "certPem": cert.public_bytes(ser.Encoding.PEM).decode(),
        "validityStartTime": rfc3339(start),
        "validityEndTime": rfc3339(end),
        "readyForRenewal": ready_for_renewal(rfc3339(end), inputs.get("earlyRenewalHours", 0), now),
    }
    return str(serial), outputs


def _subject_key_id(cert: x509.Certificate) -> bytes | None:
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


def create_self_signed(inputs: dict[str, Any], now: datetime.datetime):
    key = load_private_key(inputs["privateKeyPem"], "privateKeyPem")
    subject = subject_name(inputs.get("subject"))
    authority = None
    if inputs.get("setAuthorityKeyId"):
        if not (inputs.get("isCaCertificate") or inputs.get("setSubjectKeyId")):
            raise ValueError(
                "setAuthorityKeyId needs a subject key id (isCaCertificate or setSubjectKeyId)"
            )
        authority = x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    rid, outputs = sign(
        inputs,
        now,
        subject=subject,
        sans=alt_names(inputs),
        public_key=key.public_key(),
        ca_key=key,
        issuer=subject,
        authority_key_id=authority,
    )
    return rid, {**outputs, "keyAlgorithm": _algorithm(key)}


def create_cert_request(inputs: dict[str, Any], _now: datetime.datetime):
    key = load_private_key(inputs["privateKeyPem"], "privateKeyPem")
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        subject_name(inputs.get("subject"))
    )
    sans = alt_names(inputs)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    pem = builder.sign(key, _signature_hash(key)).public_bytes(ser.Encoding.PEM).decode()
    rid = hashlib.sha1(pem.encode(), usedforsecurity=False).hexdigest()
    return rid, {"certRequestPem": pem, "keyAlgorithm": _algorithm(key)}


def create_locally_signed(inputs: dict[str, Any], now: datetime.datetime):
    try:
        csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
        ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
    except ValueError as err:
        raise ValueError(f"certRequestPem or caCertPem is not valid PEM ({err})") from None
    ca_key = load_private_key(inputs["caPrivateKeyPem"], "caPrivateKeyPem")
    try:
        sans = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        sans = []
    rid, outputs = sign(
        inputs,
        now,
        subject=csr.subject,
        sans=sans,
        public_key=csr.public_key(),
        ca_key=ca_key,
        issuer=ca_cert.subject,
        authority_key_id=_subject_key_id(ca_cert),
    )
    return rid, {**outputs, "caKeyAlgorithm": _algorithm(ca_key)}


def renewal_due(state: dict[str, Any], news: dict[str, Any], now: datetime.datetime) -> list:
    end = state.get("validityEndTime")
    if not end:
        return []
    early = news.get("earlyRenewalHours", state.get("earlyRenewalHours", 0))
    if not isinstance(early, int):
        early = state.get("earlyRenewalHours", 0)
    return ["readyForRenewal"] if ready_for_renewal(end, early, now) else []


def renewal_state(state: dict[str, Any], now: datetime.datetime) -> dict[str, Any]:
    end = state.get("validityEndTime")
    if not end:
        return {}
    return {"readyForRenewal": ready_for_renewal(end, state.get("earlyRenewalHours", 0), now)}


def key_rules(inputs: dict[str, Any]) -> list[tuple[str, str]]:
    if inputs.get("algorithm") == "RSA" and inputs.get("rsaBits", 2048) < 1024:
        return [("rsaBits", "rsaBits must be at least 1024 for RSA keys")]
    return []


# --- the package ------------------------------------------------------------------------------

SUBJECT_INPUTS = (
    Prop("subject", "map"),
    Prop("dnsNames", "strings"),
    Prop("ipAddresses", "strings"),
    Prop("uris", "strings"),
)
CERT_INPUTS = (
    Prop("validityPeriodHours", "int", required=True, minimum=0),
    Prop("allowedUses", "strings", required=True, choices=USES),
    Prop("isCaCertificate", "bool", default=False),
    Prop("setSubjectKeyId", "bool", default=False),
    Prop("maxPathLength", "int", minimum=-1),
    # Updated in place: a new window applies to the certificate already issued.
    Prop("earlyRenewalHours", "int", default=0, minimum=0, replace=False),
)
CERT_OUTPUTS = ("certPem", "validityStartTime", "validityEndTime", "readyForRenewal")
WRITE_ONLY = ("privateKeyPemWo", "privateKeyPemWoVersion")

PACKAGE = Package(
    name="tls",
    version=VERSION,
    resources={
        r.token: r
        for r in (
            ResourceType(
                token="tls:index/privateKey:PrivateKey",
                props=(
                    Prop("algorithm", "string", required=True, choices=("RSA", "ECDSA", "ED25519")),
                    Prop("ecdsaCurve", "string", default="P224", choices=tuple(CURVES)),
                    Prop("rsaBits", "int", default=2048),
                ),
                outputs=(
                    "privateKeyPem",
                    "privateKeyPemPkcs8",
                    "privateKeyOpenssh",
                    "publicKeyPem",
                    "publicKeyOpenssh",
                    "publicKeyFingerprintMd5",
                    "publicKeyFingerprintSha256",
                ),
                secret_outputs=frozenset(
                    {"privateKeyPem", "privateKeyPemPkcs8", "privateKeyOpenssh"}
                ),
                create=create_private_key,
                rules=key_rules,
            ),
            ResourceType(
                token="tls:index/selfSignedCert:SelfSignedCert",
                props=(
                    Prop("privateKeyPem", "string", required=True, pem=True),
                    *SUBJECT_INPUTS,
                    *CERT_INPUTS,
                    Prop("setAuthorityKeyId", "bool", default=False),
                    *(Prop(w, "string", unsupported=True) for w in WRITE_ONLY),
                ),
                outputs=(*CERT_OUTPUTS, "keyAlgorithm"),
                secret_outputs=frozenset(),
                create=create_self_signed,
                rules=subject_rules,
                due=renewal_due,
                recompute=renewal_state,
            ),
            ResourceType(
                token="tls:index/certRequest:CertRequest",
                props=(
                    Prop("privateKeyPem", "string", required=True, pem=True),
                    *SUBJECT_INPUTS,
                    *(Prop(w, "string", unsupported=True) for w in WRITE_ONLY),
                ),
                outputs=("certRequestPem", "keyAlgorithm"),
                secret_outputs=frozenset(),
                create=create_cert_request,
                rules=subject_rules,
            ),
            ResourceType(
                token="tls:index/locallySignedCert:LocallySignedCert",
                props=(
                    Prop("certRequestPem", "string", required=True, pem=True),
                    Prop("caPrivateKeyPem", "string", required=True, pem=True),
                    Prop("caCertPem", "string", required=True, pem=True),
                    *CERT_INPUTS,
                    *(
                        Prop(w, "string", unsupported=True)
                        for w in ("caPrivateKeyPemWo", "caPrivateKeyPemWoVersion")
                    ),
                ),
                outputs=(*CERT_OUTPUTS, "caKeyAlgorithm"),
                secret_outputs=frozenset(),
                create=create_locally_signed,
                due=renewal_due,
                recompute=renewal_state,
            ),
        )
    },
)
