"""Kubernetes label and taint rules, as the API server and the kubelet apply them.

- A label key (and a taint key) is a qualified name: an optional DNS-1123 subdomain prefix of
  at most 253 characters and a '/', then a name of at most 63 characters
  (k8s.io/apimachinery/pkg/util/validation: IsQualifiedName).
- A label value (and a taint value) is empty or a name of at most 63 characters
  (IsValidLabelValue).
- The kubelet refuses to start with --node-labels in the kubernetes.io or k8s.io namespaces
  (or their subdomains), except the labels and namespaces it may set on its own Node
  (cmd/kubelet/app/options: isKubernetesLabel; k8s.io/kubelet/pkg/apis: IsKubeletLabel).
- A Node's taints are unique by key and effect (core/v1 validation: validateNodeTaints).
- openstack-k8s.io (and its subdomains) is the program's own namespace: it labels every
  node with its pool (`openstack-k8s.io/pool`) and gateway pools with a label and a taint
  (`openstack-k8s.io/gateway`), and add-ons select on them. A pool's own labels and taints
  may not use it, or the program's promises about those keys would break.
"""

from __future__ import annotations

import re

NAME_MAX = 63
PREFIX_MAX = 253
_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")

# What the kubelet may set on its own Node although it lies in a restricted namespace.
KUBELET_LABELS = frozenset(
    {
        "kubernetes.io/hostname",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "topology.kubernetes.io/region",
        "topology.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
    }
)
KUBELET_LABEL_NAMESPACES = ("kubelet.kubernetes.io", "node.kubernetes.io")
RESTRICTED_NAMESPACES = ("kubernetes.io", "k8s.io")

TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")
PROGRAM_NAMESPACE = "openstack-k8s.io"


def _in_namespace(prefix: str, namespace: str) -> bool:
    # A subdomain of the namespace counts (node-role.kubernetes.io); a look-alike does not
    # (myk8s.io is not k8s.io).
    return prefix == namespace or prefix.endswith("." + namespace)


def qualified_name(key: str, what: str = "label key") -> str:
    """`key` if it is a valid label or taint key, else ValueError saying which part is wrong."""
    parts = key.split("/")
    if len(parts) > 2:
        raise ValueError(f"{what} {key!r} has more than one '/' (a key is [prefix/]name)")
    name = parts[-1]
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            raise ValueError(f"{what} {key!r} has an empty prefix before '/'")
        if len(prefix) > PREFIX_MAX or not _DNS1123_SUBDOMAIN.match(prefix):
            raise ValueError(
                f"{what} {key!r}: the prefix {prefix!r} must be a DNS subdomain (lowercase "
                f"letters, digits, '-' and '.', each part starting and ending alphanumeric, "
                f"at most {PREFIX_MAX} characters)"
            )
    if not name or len(name) > NAME_MAX or not _NAME.match(name):
        raise ValueError(
            f"{what} {key!r}: the name {name!r} must be 1 to {NAME_MAX} letters, digits, '-', "
            f"'_' or '.', starting and ending with a letter or digit"
        )
    return key


def label_value(value: str, key: str, what: str = "label") -> str:
    """`value` if it is a valid label (or taint) value."""
    if value and (len(value) > NAME_MAX or not _NAME.match(value)):
        raise ValueError(
            f"{what} {key!r}: the value {value!r} must be empty or 1 to {NAME_MAX} letters, "
            f"digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return value


def not_ours(key: str, what: str = "label") -> str:
    """`key` unless it lies in the program's own namespace (openstack-k8s.io)."""
    prefix = key.split("/", 1)[0] if "/" in key else ""
    if _in_namespace(prefix, PROGRAM_NAMESPACE):
        raise ValueError(
            f"{what} {key!r} is in the {PROGRAM_NAMESPACE} namespace, which the program sets "
            f"itself (the pool's name, gateway: true); use your own prefix"
        )
    return key


def pool_labels(labels: dict[str, str]) -> dict[str, str]:
    """A pool's own labels: what a node may be given, outside the program's namespace (the
    builders check the whole set, the program's labels with them, with node_labels)."""
    for key in node_labels(labels):
        not_ours(key)
    return labels


def kubelet_may_set(key: str) -> bool:
    """Whether the kubelet accepts `key` in --node-labels (it exits at start otherwise)."""
    prefix = key.split("/", 1)[0] if "/" in key else ""
    if not any(_in_namespace(prefix, ns) for ns in RESTRICTED_NAMESPACES):
        return True
    return key in KUBELET_LABELS or any(
        _in_namespace(prefix, ns) for ns in KUBELET_LABEL_NAMESPACES
    )


def node_labels(labels: dict[str, str]) -> dict[str, str]:
    """Labels a node can be given at registration (kubelet --node-labels)."""
    for key, value in labels.items():
        qualified_name(key)
        label_value(value, key)
        if not kubelet_may_set(key):
            prefix = key.split("/", 1)[0]
            raise ValueError(
                f"label {key!r} is reserved: the kubelet may not set labels in the {prefix} "
                f"namespace on its own Node (it may use {', '.join(KUBELET_LABEL_NAMESPACES)} "
                f"and the well-known topology/os/arch labels); use your own prefix, or label "
                f"the Node with kubectl after the join"
            )
    return labels


def taint(key: str, value: str, effect: str) -> None:
    """One taint's key, value and effect."""
    qualified_name(key, "taint key")
    label_value(value, key, "taint")
    if effect not in TAINT_EFFECTS:
        raise ValueError(
            f"taint {key!r}: effect {effect!r} is not one of {', '.join(TAINT_EFFECTS)}"
        )


def unique_taints(taints: list[tuple[str, str]]) -> None:
    """The API server refuses a Node with two taints of one key and effect."""
    seen = set()
    for key, effect in taints:
        if (key, effect) in seen:
            raise ValueError(
                f"taint {key!r} with effect {effect} is given twice (taints are unique by key and effect)"
            )
        seen.add((key, effect))
