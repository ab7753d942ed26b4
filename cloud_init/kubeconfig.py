"""The kubeconfig users get, built from the admin.conf kubeadm wrote on the first master, and
the CA pin joins use.

Both work on data (parsed YAML, decoded DER), never on text substitution, so they do not
depend on how kubeadm happens to lay the files out.
"""
import base64
import hashlib

import yaml

PUBLIC_KEY_BEGIN = "-----BEGIN PUBLIC KEY-----"
PUBLIC_KEY_END = "-----END PUBLIC KEY-----"


def public_kubeconfig(admin_conf: str, server: str, name: str) -> str:
    """admin.conf with its cluster pointed at `server` (https://<public endpoint>:6443) and
    its cluster, user and context all named `name` (the stack), that context current.

    Only the admin.conf's current context (or its only one) is kept; credentials and CA data
    are carried over untouched.
    """
    config = yaml.safe_load(admin_conf)
    if not isinstance(config, dict) or config.get("kind") != "Config":
        raise ValueError("admin.conf is not a kubeconfig (kind: Config)")
    contexts = {c["name"]: c["context"] for c in config.get("contexts") or []}
    current = config.get("current-context") or (next(iter(contexts)) if len(contexts) == 1 else None)
    if current not in contexts:
        raise ValueError(f"admin.conf has no usable current context (current-context: {current!r})")
    context = contexts[current]
    cluster = _named(config, "clusters", context["cluster"])["cluster"]
    user = _named(config, "users", context["user"])["user"]
    return yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": name, "cluster": {**cluster, "server": server}}],
        "users": [{"name": name, "user": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }, sort_keys=False)


def _named(config: dict, section: str, name: str) -> dict:
    for entry in config.get(section) or []:
        if entry.get("name") == name:
            return entry
    raise ValueError(f"admin.conf: no entry named {name!r} under {section}")


def ca_cert_hash(ca_public_key_pem: str) -> str:
    """kubeadm's CA pin, `sha256:<hex>`: the SHA-256 of the CA key's DER SubjectPublicKeyInfo.

    A PEM "PUBLIC KEY" block (what pulumi-tls's `public_key_pem` holds) is that DER in base64,
    so no ASN.1 parsing is needed. Other PEM kinds (a certificate, PKCS#1 "RSA PUBLIC KEY")
    encode something else and are refused rather than hashed into a wrong pin.
    """
    text = ca_public_key_pem.strip()
    if not (text.startswith(PUBLIC_KEY_BEGIN) and text.endswith(PUBLIC_KEY_END)):
        raise ValueError("expected a PEM block of kind PUBLIC KEY (SubjectPublicKeyInfo)")
    body = text[len(PUBLIC_KEY_BEGIN):-len(PUBLIC_KEY_END)]
    der = base64.b64decode("".join(body.split()), validate=True)
    return "sha256:" + hashlib.sha256(der).hexdigest()
