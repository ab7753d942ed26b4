"""Run the Pulumi program under Pulumi's mock engine and record what the engine would receive.

`Recorder` subclasses `pulumi.runtime.mocks.MockMonitor`: every RegisterResource request is
kept as the engine sees it (the engine's URN, type, name, parent, dependencies, inputs,
options), secrets marked. `CloudMocks` answers like a cloud would, plausibly and
deterministically: addresses inside the configured subnet (stable per resource name), ids
derived from names, and real keys and certificates (ECDSA with deterministic signatures,
fixed validity) so that what the nodes would receive is what a real run renders, byte for
byte across runs. Over a previous plan it answers as the engine over that state: kept ids
and outputs, ignoreChanges, new ids and outputs for what is replaced.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import runpy
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.sync_await import _ensure_event_loop, _sync_await

from components.roles import Role, role_of
from tools import plandiff
from tools import urn as urns

ROOT = Path(__file__).resolve().parent.parent
SECRET = "[secret]"
# Floating IPs come from TEST-NET-3, then (past its 252 addresses) the benchmarking range:
# plausible, and routed nowhere.
PUBLIC_NETS = (ipaddress.IPv4Network("203.0.113.0/24"), ipaddress.IPv4Network("198.18.0.0/15"))
# Certificates carry a fixed validity window: no clock in the plan.
NOT_BEFORE = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\0".join(parts).encode()).digest()


def _id(kind: str, name: str, *replacing: str) -> str:
    """A resource's id: from its type and name, and for a replacement the id it replaces."""
    return str(uuid.UUID(bytes=_digest(kind, name, *replacing)[:16], version=4))


def _plain(value: Any) -> Any:
    """Unwrap the SDK's secret markers: what the mock provider computes with."""
    if rpc.is_rpc_secret(value):
        return _plain(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _redacted(value: Any) -> Any:
    """Secrets as the plan shows them."""
    if rpc.is_rpc_secret(value):
        return SECRET
    if isinstance(value, dict):
        return {k: _redacted(v) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [_redacted(v) for v in value]
    return value


def _keep_old(
    inputs: dict, old: dict, ignored: list[str], urn: str, *, secret_stays_new: bool = False
) -> dict:
    """The engine's ignoreChanges: each ignored property takes its value from the previous
    inputs, or is dropped if they had none. A previous value the plan shows as a secret is
    not known offline: `secret_stays_new` keeps the new one (the provider's echo of it, which
    the program never reads back)."""
    out = dict(inputs)
    for path in ignored:
        if not path.isidentifier():
            raise NotImplementedError(
                f"{urn}: ignoreChanges {path!r}: the offline plan models top-level properties"
            )
        if path not in old:
            out.pop(path, None)
        elif not (secret_stays_new and _shows_secret(old[path])):
            out[path] = old[path]
    return out


def _shows_secret(value: Any) -> bool:
    if isinstance(value, dict):
        return any(_shows_secret(v) for v in value.values())
    if isinstance(value, list):
        return any(_shows_secret(v) for v in value)
    return value == SECRET


class _Pki:
    """Real ECDSA keys and certificates, derived from resource names: same name, same bytes."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519

        self.ec = ec
        self.ed25519 = ed25519

    def key(self, name: str, algorithm: str):
        seed = _digest("key", name)
        if algorithm == "ED25519":
            return self.ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        order = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
        return self.ec.derive_private_key(
            int.from_bytes(seed, "big") % (order - 1) + 1, self.ec.SECP256R1()
        )

    def key_outputs(self, key) -> dict:
        from cryptography.hazmat.primitives import serialization as s

        if isinstance(key, self.ed25519.Ed25519PrivateKey):
            pem = key.private_bytes(
                s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()
            ).decode()
        else:
            pem = key.private_bytes(
                s.Encoding.PEM, s.PrivateFormat.TraditionalOpenSSL, s.NoEncryption()
            ).decode()
        pub = key.public_key()
        return {
            "privateKeyPem": pem,
            "privateKeyPemPkcs8": key.private_bytes(
                s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()
            ).decode(),
            "privateKeyOpenssh": key.private_bytes(
                s.Encoding.PEM, s.PrivateFormat.OpenSSH, s.NoEncryption()
            ).decode(),
            "publicKeyPem": pub.public_bytes(
                s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo
            ).decode(),
            "publicKeyOpenssh": pub.public_bytes(
                s.Encoding.OpenSSH, s.PublicFormat.OpenSSH
            ).decode()
            + "\n",
            "publicKeyFingerprintSha256": "SHA256:"
            + base64.b64encode(
                hashlib.sha256(
                    pub.public_bytes(s.Encoding.DER, s.PublicFormat.SubjectPublicKeyInfo)
                ).digest()
            )
            .decode()
            .rstrip("="),
        }

    def _subject(self, subject: dict | None):
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        subject = subject or {}
        attrs = []
        if subject.get("organization"):
            attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject["organization"]))
        if subject.get("commonName"):
            attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, subject["commonName"]))
        return x509.Name(attrs)

    def _load_key(self, pem: str):
        from cryptography.hazmat.primitives import serialization

        return serialization.load_pem_private_key(pem.encode(), None)

    def _sign(self, builder, ca_key):
        from cryptography.hazmat.primitives import hashes, serialization

        cert = builder.sign(ca_key, hashes.SHA256(), ecdsa_deterministic=True)
        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def certificate(
        self, name: str, inputs: dict, *, subject, public_key, dns, ips, ca_key, issuer
    ) -> str:
        from cryptography import x509
        from cryptography.x509.oid import ExtendedKeyUsageOID

        uses = set(inputs.get("allowedUses") or [])
        is_ca = bool(inputs.get("isCaCertificate"))
        hours = int(inputs.get("validityPeriodHours") or 24)
        serial = int.from_bytes(_digest("serial", name)[:16], "big") >> 1
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public_key)
            .serial_number(serial)
            .not_valid_before(NOT_BEFORE)
            .not_valid_after(NOT_BEFORE + datetime.timedelta(hours=hours))
            .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature="digital_signature" in uses,
                    content_commitment=False,
                    key_encipherment="key_encipherment" in uses,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign="cert_signing" in uses,
                    crl_sign="crl_signing" in uses,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        ekus = [
            o
            for u, o in (
                ("server_auth", ExtendedKeyUsageOID.SERVER_AUTH),
                ("client_auth", ExtendedKeyUsageOID.CLIENT_AUTH),
            )
            if u in uses
        ]
        if ekus:
            builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
        sans = [x509.DNSName(d) for d in dns] + [
            x509.IPAddress(ipaddress.ip_address(i)) for i in ips
        ]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        if is_ca:
            builder = builder.add_extension(
                x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False
            )
        return self._sign(builder, ca_key)

    def self_signed(self, name: str, inputs: dict) -> str:
        key = self._load_key(inputs["privateKeyPem"])
        subject = self._subject(inputs.get("subject"))
        return self.certificate(
            name,
            inputs,
            subject=subject,
            public_key=key.public_key(),
            dns=inputs.get("dnsNames") or [],
            ips=inputs.get("ipAddresses") or [],
            ca_key=key,
            issuer=subject,
        )

    def request(self, inputs: dict) -> str:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization

        key = self._load_key(inputs["privateKeyPem"])
        builder = x509.CertificateSigningRequestBuilder().subject_name(
            self._subject(inputs.get("subject"))
        )
        sans = [x509.DNSName(d) for d in inputs.get("dnsNames") or []] + [
            x509.IPAddress(ipaddress.ip_address(i)) for i in inputs.get("ipAddresses") or []
        ]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        csr = builder.sign(key, hashes.SHA256(), ecdsa_deterministic=True)
        return csr.public_bytes(serialization.Encoding.PEM).decode()

    def locally_signed(self, name: str, inputs: dict) -> str:
        from cryptography import x509

        csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
        ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
        dns, ips = [], []
        try:
            san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns = san.get_values_for_type(x509.DNSName)
            ips = [str(i) for i in san.get_values_for_type(x509.IPAddress)]
        except x509.ExtensionNotFound:
            pass
        return self.certificate(
            name,
            inputs,
            subject=csr.subject,
            public_key=csr.public_key(),
            dns=dns,
            ips=ips,
            ca_key=self._load_key(inputs["caPrivateKeyPem"]),
            issuer=ca_cert.subject,
        )


class AddressesExhausted(RuntimeError):
    """The mock cloud has no address left for a port, load balancer or floating IP."""

    def __init__(self, net: ipaddress.IPv4Network, name: str, size: int):
        super().__init__(
            f"no free address in {net} for {name}: all {size} that Neutron hands out "
            "there are taken"
        )
        self.net, self.name, self.size = net, name, size


class CloudMocks(mocks.Mocks):
    """What OpenStack, pulumi-tls and the nodes would answer, made up plausibly.

    With a previous plan (`prior`: its resources by URN) it answers like the engine over
    that plan's state: a resource the previous plan has keeps its id and its outputs, its
    ignoreChanges properties keep their old values, and one whose change the provider makes
    a replacement gets a new id and new outputs, made from all of the program's inputs
    (ignored ones too: a replacement is created as the program says); so what depends on it
    shows the change (a replaced subnet gives every port on it a new subnet id and address),
    and what only an ignored property would change does not (a node's image pin keeps the
    old image)."""

    def __init__(self, subnet: str, stack: str, prior: dict[str, dict] | None = None):
        self.subnet = ipaddress.IPv4Network(subnet)
        self.stack = stack
        self.prior = prior or {}
        self.taken: dict[ipaddress.IPv4Network, dict[str, str]] = {}
        self.pki = _Pki()

    def _address(
        self, name: str, seed: str, net: ipaddress.IPv4Network, first: int, last: int
    ) -> str:
        """A stable address for a seed in net[first..last]: hashed into the range, probing
        past taken ones. AddressesExhausted (naming the resource) when every one is taken."""
        taken = self.taken.setdefault(net, {})
        if seed in taken:
            return taken[seed]
        size = last - first + 1
        if size > 0:
            start = int.from_bytes(_digest("addr", seed)[:8], "big") % size
            used = set(taken.values())
            for step in range(size):
                candidate = str(net[first + (start + step) % size])
                if candidate not in used:
                    taken[seed] = candidate
                    return candidate
        raise AddressesExhausted(net, name, max(size, 0))

    def _fixed_ip(self, name: str, seed: str) -> str:
        # Neutron's default allocation pool: every host address but the gateway (.1); the
        # subnet's DHCP port takes the first of them (.2).
        return self._address(name, seed, self.subnet, 3, self.subnet.num_addresses - 2)

    def _floating_ip(self, name: str, seed: str) -> str:
        for net in PUBLIC_NETS:
            try:
                return self._address(name, seed, net, first=2, last=net.num_addresses - 3)
            except AddressesExhausted:
                continue
        raise AddressesExhausted(PUBLIC_NETS[-1], name, 0)

    def new_resource(self, args: mocks.MockResourceArgs):
        """A resource no earlier plan knows (the SDK's entry point; registrations of the
        program go through `register`)."""
        t, name, inputs = args.typ, args.name, _plain(args.inputs)
        id_ = _id(t, name) if args.custom else None
        return id_, self._state(t, name, id_, inputs)

    def register(self, reg: Registration) -> tuple[str | None, dict, str]:
        """(id, outputs, op) for a registration: op is the engine's step, "create" when no
        previous plan has the resource, else "same", "update" or "replace"."""
        prior = self.prior.get(reg.urn)
        if not reg.custom:  # a component: no id, no provider, nothing to answer
            return None, dict(reg.raw_inputs), "create" if prior is None else "same"
        if prior is None:
            id_ = _id(reg.type, reg.name)
            return id_, self._state(reg.type, reg.name, id_, reg.raw_inputs), "create"
        ignored = reg.options.get("ignoreChanges") or []
        old_inputs = prior.get("inputs") or {}
        shown = _keep_old(reg.inputs, old_inputs, ignored, reg.urn)
        op = plandiff.step(prior, {**vars(reg), "inputs": shown}).op
        old_id = prior.get("id") or _id(reg.type, reg.name)  # plans before ids: the name's
        if op == "replace":
            # ignoreChanges holds only for an update: the engine checks a replacement afresh
            # from the program's inputs, and its create gets them all.
            id_ = _id(reg.type, reg.name, old_id)
            return id_, self._state(reg.type, reg.name, id_, reg.raw_inputs), op
        raw = _keep_old(reg.raw_inputs, old_inputs, ignored, reg.urn, secret_stays_new=True)
        return old_id, self._state(reg.type, reg.name, old_id, raw), op

    def _state(self, t: str, name: str, id_: str | None, inputs: dict) -> dict:
        """The provider's outputs: the inputs, and what it makes up, derived from the name
        for a resource's first id and from the id after a replacement (a new id, a new
        address, key or password), so that the same id always answers the same."""
        out = dict(inputs)
        made = self._outputs.get(t)
        if made is not None:
            seed = name if id_ in (None, _id(t, name)) else f"{name}@{id_}"
            out.update(made(self, name, seed, inputs))
        return out

    # What the provider adds to a resource's inputs, by type: what the program reads back.
    def _port(self, name: str, seed: str, inputs: dict) -> dict:
        address = self._fixed_ip(name, seed)
        subnet_id = inputs.get("fixedIps", [{}])[0].get("subnetId")
        return {
            "allFixedIps": [address],
            "fixedIps": [{"subnetId": subnet_id, "ipAddress": address}],
            "macAddress": "fa:16:3e:" + ":".join(f"{b:02x}" for b in _digest("mac", seed)[:3]),
        }

    def _password(self, name: str, seed: str, inputs: dict) -> dict:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        digest = _digest("password", seed)
        return {
            "result": "".join(
                alphabet[b % len(alphabet)] for b in digest[: int(inputs.get("length", 16))]
            )
        }

    def _bytes(self, name: str, seed: str, inputs: dict) -> dict:
        data = (_digest("bytes", seed) * 8)[: int(inputs.get("length", 32))]
        return {"base64": base64.b64encode(data).decode(), "hex": data.hex()}

    _outputs = {
        "openstack:networking/port:Port": _port,
        "openstack:networking/floatingIp:FloatingIp": lambda self, name, seed, _: {
            "address": self._floating_ip(name, seed)
        },
        "openstack:loadbalancer/loadBalancer:LoadBalancer": lambda self, name, seed, _: {
            "vipAddress": self._fixed_ip(name, seed),
            "vipPortId": _id("vip-port", seed),
        },
        "openstack:networking/subnet:Subnet": lambda self, name, seed, _: {
            "gatewayIp": str(self.subnet[1])
        },
        "openstack:compute/instance:Instance": lambda self, name, seed, _: {
            "accessIpV4": "",
            "powerState": "active",
        },
        "tls:index/privateKey:PrivateKey": lambda self, name, seed, inputs: self.pki.key_outputs(
            self.pki.key(seed, inputs.get("algorithm", "RSA"))
        ),
        "tls:index/selfSignedCert:SelfSignedCert": lambda self, name, seed, inputs: {
            "certPem": self.pki.self_signed(seed, inputs)
        },
        "tls:index/certRequest:CertRequest": lambda self, name, seed, inputs: {
            "certRequestPem": self.pki.request(inputs)
        },
        "tls:index/locallySignedCert:LocallySignedCert": lambda self, name, seed, inputs: {
            "certPem": self.pki.locally_signed(seed, inputs)
        },
        "random:index/randomPassword:RandomPassword": _password,
        "random:index/randomBytes:RandomBytes": _bytes,
        "openstack:identity/applicationCredential:ApplicationCredential": (
            lambda self, name, seed, _: {"secret": _digest("app-credential-secret", seed).hex()}
        ),
        "command:remote:Command": lambda self, name, seed, _: {
            "stdout": self._stdout(name, seed),
            "stderr": "",
        },
    }

    def _stdout(self, name: str, seed: str) -> str:
        if role_of(name) is Role.TOKEN:
            d = _digest("token", seed).hex()
            return f"{d[:6]}.{d[6:22]}\n"
        return ""

    def call(self, args: mocks.MockCallArgs):
        if args.token == "openstack:networking/getNetwork:getNetwork":
            given = args.args.get("networkId") or _id("network", args.args.get("name", ""))
            return {
                "id": given,
                "name": args.args.get("name"),
                "external": bool(args.args.get("external")),
            }, []
        if args.token == "openstack:networking/getSubnet:getSubnet":
            # An existing subnet: the range the mock hands addresses out of.
            given = args.args.get("subnetId") or _id("subnet", args.args.get("name", ""))
            return {
                "id": given,
                "name": args.args.get("name"),
                "cidr": str(self.subnet),
                "ipVersion": 4,
            }, []
        if args.token == "openstack:images/getImage:getImage":
            return {
                "id": _id("image", args.args.get("name", "")),
                "name": args.args.get("name"),
            }, []
        if args.token == "openstack:identity/getAuthScope:getAuthScope":
            return {
                "id": _id("scope", "current"),
                "name": "current",
                "region": "RegionOne",
                "projectId": _id("project", self.stack),
                "projectName": self.stack,
                "userId": _id("user", "operator"),
                "serviceCatalogs": [
                    {
                        "id": _id("service", "keystone"),
                        "name": "keystone",
                        "type": "identity",
                        "endpoints": [
                            {
                                "id": _id("endpoint", "keystone"),
                                "interface": "public",
                                "region": "RegionOne",
                                "regionId": "RegionOne",
                                "url": "https://identity.example.test:5000/v3",
                            }
                        ],
                    }
                ],
            }, []
        return {}, []


_OPTION_DEFAULTS = {
    "protect": False,
    "ignoreChanges": [],
    "replaceOnChanges": [],
    "deleteBeforeReplace": False,
    "additionalSecretOutputs": [],
    "retainOnDelete": False,
}


@dataclass
class Registration:
    urn: str
    type: str
    name: str
    parent: str
    custom: bool
    dependencies: list[str]
    inputs: dict
    raw_inputs: dict
    options: dict
    id: str | None = None  # what the mock cloud answered (custom resources)
    op: str = "create"  # the engine's step against the previous plan (CloudMocks.register)


class Recorder(mocks.MockMonitor):
    """The mock monitor, keeping every registration as the engine would receive it."""

    def __init__(self, mocks_: mocks.Mocks):
        super().__init__(mocks_)
        self.registrations: list[Registration] = []

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        # The SDK's mock keeps only the direct parent's type (and the stack's): `pulumi up
        # --replace <urn>` with such a URN would match nothing.
        from pulumi.runtime.settings import get_project, get_stack

        return urns.make(get_stack(), get_project(), parent, type_, name)

    def RegisterResource(self, request):
        # The SDK's mock monitor hands the mocks type, name and inputs; answering like the
        # engine over a previous plan's state needs the URN and the options too.
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == urns.STACK_TYPE:
            return resource_pb2.RegisterResourceResponse(urn=urn)
        _ensure_event_loop()  # deserializing resource references needs one on this thread
        inputs = rpc.deserialize_properties(request.object)
        deps = set(request.dependencies)
        for prop in request.propertyDependencies.values():
            deps.update(prop.urns)
        options = {
            "protect": request.protect,
            "ignoreChanges": sorted(request.ignoreChanges),
            "replaceOnChanges": sorted(request.replaceOnChanges),
            "deleteBeforeReplace": request.deleteBeforeReplace,
            "additionalSecretOutputs": sorted(request.additionalSecretOutputs),
            "retainOnDelete": request.retainOnDelete,
        }
        options = {k: v for k, v in options.items() if v != _OPTION_DEFAULTS[k]}
        timeouts = request.customTimeouts
        if timeouts.create or timeouts.update or timeouts.delete:
            options["customTimeouts"] = {
                k: getattr(timeouts, k)
                for k in ("create", "update", "delete")
                if getattr(timeouts, k)
            }
        reg = Registration(
            urn=urn,
            type=request.type,
            name=request.name,
            parent=request.parent,
            custom=request.custom,
            dependencies=sorted(deps),
            inputs=_redacted(inputs),
            raw_inputs=_plain(inputs),
            options=options,
        )
        reg.id, state, reg.op = self.mocks.register(reg)
        self.registrations.append(reg)
        self.resources[urn] = mocks.MockMonitor.ResourceRegistration(urn, reg.id, state)
        # The real engine marks these outputs secret; do it here as it would.
        for key in request.additionalSecretOutputs:
            if key in state:
                state[key] = rpc.wrap_rpc_secret(state[key])
        obj = _sync_await(rpc.serialize_properties(state, {}))
        return resource_pb2.RegisterResourceResponse(urn=urn, id=reg.id or "", object=obj)


@dataclass
class Evaluation:
    registrations: list[Registration]
    outputs: dict  # name -> (value, is_secret)


def evaluate(
    config: dict[str, str],
    *,
    stack: str,
    subnet: str,
    project: str = "openstack-k8s",
    prior: dict[str, dict] | None = None,
) -> Evaluation:
    """Run the program (__main__.py) for one stack's config under the mock engine; `prior`:
    a previous plan's resources by URN, the state it answers over (CloudMocks)."""
    return run(
        lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__"),
        config,
        stack=stack,
        subnet=subnet,
        project=project,
        prior=prior,
    )


def run(
    program,
    config: dict[str, str] | None = None,
    *,
    stack: str = "dev",
    subnet: str = "10.0.0.0/24",
    project: str = "openstack-k8s",
    prior: dict[str, dict] | None = None,
) -> Evaluation:
    """Run `program` (a function that registers resources: the whole program, or one
    component on its own) under the mock engine, in this process. Each run starts from a
    fresh root stack and clears what an earlier run left in Pulumi's runtime, so runs can
    follow one another in one process (not run side by side: the runtime is global)."""
    from pulumi.runtime import config as runtime_config
    from pulumi.runtime.settings import SETTINGS
    from pulumi.runtime.stack import run_pulumi_func

    runtime_config.set_all_config(dict(config or {}), [])
    # A fresh root stack per evaluation: outputs of an earlier run must not leak into this one.
    pulumi.runtime.settings.ROOT.set(None)
    recorder = Recorder(CloudMocks(subnet, stack, prior))
    mocks.set_mocks(recorder.mocks, project=project, stack=stack, preview=False, monitor=recorder)
    SETTINGS.rpc_manager.clear()
    SETTINGS.outputs.clear()
    _sync_await(run_pulumi_func(program))

    root = pulumi.runtime.settings.get_root_resource()

    async def resolve() -> dict:
        out = {}
        for key, value in sorted(root.outputs.items()):
            o = pulumi.Output.from_input(value)
            out[key] = (await o.future(), await o.is_secret())
        return out

    return Evaluation(recorder.registrations, _sync_await(resolve()))
