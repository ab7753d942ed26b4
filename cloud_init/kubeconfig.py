"""The kubeconfig users get, built by the program from its own CA and an admin client
certificate it issues (so it is known at preview and renewed by `pulumi up`), and the CA pin
joins use.

Both work on data (YAML built from dicts, decoded DER), never on text substitution.
"""

import base64
import hashlib

import yaml

PUBLIC_KEY_BEGIN = "-----BEGIN PUBLIC KEY-----"
PUBLIC_KEY_END = "-----END PUBLIC KEY-----"
# kubeadm binds this group to cluster-admin at init (kubeadm:cluster-admins); unlike
# system:masters it can be unbound again, so the exported credential can be revoked
# without a new CA.
ADMIN_GROUP = "kubeadm:cluster-admins"
ADMIN_USER = "openstack-k8s-admin"


def admin_kubeconfig(*, server: str, name: str, ca_pem: str, cert_pem: str, key_pem: str) -> str:
    """A kubeconfig for `server` (https://<public endpoint>:<port>) whose cluster, user and
    context are all named `name`, that context current, with the client certificate inline."""

    def b64(pem: str) -> str:
        return base64.b64encode(pem.encode()).decode()

    for what, pem in (("ca", ca_pem), ("cert", cert_pem), ("key", key_pem)):
        if "-----BEGIN " not in pem:
            raise ValueError(f"kubeconfig: {what} is not PEM")
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": name,
                    "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
                }
            ],
            "users": [
                {
                    "name": name,
                    "user": {
                        "client-certificate-data": b64(cert_pem),
                        "client-key-data": b64(key_pem),
                    },
                }
            ],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
            "preferences": {},
        },
        sort_keys=False,
    )


def ca_cert_hash(ca_public_key_pem: str) -> str:
    """kubeadm's CA pin, `sha256:<hex>`: the SHA-256 of the CA key's DER SubjectPublicKeyInfo.

    A PEM "PUBLIC KEY" block (what pulumi-tls's `public_key_pem` holds) is that DER in base64,
    so no ASN.1 parsing is needed. Other PEM kinds (a certificate, PKCS#1 "RSA PUBLIC KEY")
    encode something else and are refused rather than hashed into a wrong pin.
    """
    text = ca_public_key_pem.strip()
    if not (text.startswith(PUBLIC_KEY_BEGIN) and text.endswith(PUBLIC_KEY_END)):
        raise ValueError("expected a PEM block of kind PUBLIC KEY (SubjectPublicKeyInfo)")
    body = text[len(PUBLIC_KEY_BEGIN) : -len(PUBLIC_KEY_END)]
    der = base64.b64decode("".join(body.split()), validate=True)
    return "sha256:" + hashlib.sha256(der).hexdigest()
