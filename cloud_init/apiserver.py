"""What kube-apiserver is told beyond kubeadm's defaults, as data: Secrets encrypted at rest,
an audit log, OIDC sign-in. kubeadm's ClusterConfiguration carries the flags and the host
paths (apiServer.extraArgs and extraVolumes); the files themselves reach every master with
its PKI (a command, never user-data: the encryption key must not be readable from the
metadata service)."""

from __future__ import annotations

import yaml

KUBERNETES_DIR = "/etc/kubernetes"
# Paths under KUBERNETES_DIR in the files a master receives, and where the API server sees them.
ENCRYPTION_FILE = "encryption/config.yaml"
AUDIT_POLICY_FILE = "audit/policy.yaml"
AUDIT_LOG_DIR = "/var/log/kubernetes/audit"
# The resources whose contents are encrypted in etcd.
ENCRYPTED_RESOURCES = ["secrets"]


def encryption_config(provider: str, keys: list[tuple[str, str]]) -> str:
    """An EncryptionConfiguration: `keys` as (name, base64 32-byte key), the first one
    writes, all of them read; `identity` last, so Secrets written before encryption was on
    (or during a rotation) still read."""
    if not keys:
        raise ValueError("encryption: at least one key")
    for name, key in keys:
        if not name or "\n" in key:
            raise ValueError(f"encryption: bad key {name!r}")
    return yaml.safe_dump(
        {
            "apiVersion": "apiserver.config.k8s.io/v1",
            "kind": "EncryptionConfiguration",
            "resources": [
                {
                    "resources": ENCRYPTED_RESOURCES,
                    "providers": [
                        {provider: {"keys": [{"name": name, "secret": key} for name, key in keys]}},
                        {"identity": {}},
                    ],
                }
            ],
        },
        sort_keys=False,
    )


def default_audit_policy() -> str:
    """Metadata for most requests; never a request or response body of a Secret, ConfigMap or
    token review (they carry credentials); no noise from health checks and watches."""
    return yaml.safe_dump(
        {
            "apiVersion": "audit.k8s.io/v1",
            "kind": "Policy",
            "omitStages": ["RequestReceived"],
            "rules": [
                {
                    "level": "None",
                    "nonResourceURLs": ["/healthz*", "/livez*", "/readyz*", "/version", "/metrics"],
                },
                {"level": "None", "verbs": ["watch"]},
                {"level": "None", "users": ["system:kube-proxy"], "verbs": ["get", "list"]},
                {
                    "level": "Metadata",
                    "resources": [
                        {
                            "group": "",
                            "resources": ["secrets", "configmaps", "serviceaccounts/token"],
                        },
                        {"group": "authentication.k8s.io", "resources": ["tokenreviews"]},
                    ],
                },
                {
                    "level": "RequestResponse",
                    "verbs": ["create", "update", "patch", "delete", "deletecollection"],
                    "resources": [{"group": "rbac.authorization.k8s.io"}],
                },
                {"level": "Metadata"},
            ],
        },
        sort_keys=False,
    )


def extra_args(*, encryption: bool, audit: dict | None, oidc: dict | None) -> list[dict]:
    """kube-apiserver flags, as kubeadm v1beta4 takes them (name/value pairs, in order)."""
    args = []
    if encryption:
        args.append(("encryption-provider-config", f"{KUBERNETES_DIR}/{ENCRYPTION_FILE}"))
    if audit is not None:
        args += [
            ("audit-policy-file", f"{KUBERNETES_DIR}/{AUDIT_POLICY_FILE}"),
            ("audit-log-path", f"{AUDIT_LOG_DIR}/audit.log"),
            ("audit-log-maxage", str(audit["max_age_days"])),
            ("audit-log-maxbackup", str(audit["max_backups"])),
            ("audit-log-maxsize", str(audit["max_size_mb"])),
        ]
    if oidc is not None:
        args += [
            ("oidc-issuer-url", oidc["issuer_url"]),
            ("oidc-client-id", oidc["client_id"]),
            ("oidc-username-claim", oidc["username_claim"]),
        ]
        # Prefixed, so an OIDC user can never be mistaken for a system: or kubeadm: one.
        args.append(("oidc-username-prefix", "oidc:"))
        if oidc.get("groups_claim"):
            args += [("oidc-groups-claim", oidc["groups_claim"]), ("oidc-groups-prefix", "oidc:")]
        if oidc.get("ca_file"):
            args.append(("oidc-ca-file", oidc["ca_file"]))
    return [{"name": n, "value": v} for n, v in args]


def extra_volumes(*, encryption: bool, audit: bool) -> list[dict]:
    """Host paths the API server's static pod mounts for the files the flags name."""
    volumes = []
    if encryption:
        volumes.append(
            {
                "name": "encryption",
                "hostPath": f"{KUBERNETES_DIR}/encryption",
                "mountPath": f"{KUBERNETES_DIR}/encryption",
                "readOnly": True,
                "pathType": "DirectoryOrCreate",
            }
        )
    if audit:
        volumes += [
            {
                "name": "audit-policy",
                "hostPath": f"{KUBERNETES_DIR}/audit",
                "mountPath": f"{KUBERNETES_DIR}/audit",
                "readOnly": True,
                "pathType": "DirectoryOrCreate",
            },
            {
                "name": "audit-log",
                "hostPath": AUDIT_LOG_DIR,
                "mountPath": AUDIT_LOG_DIR,
                "readOnly": False,
                "pathType": "DirectoryOrCreate",
            },
        ]
    return volumes
