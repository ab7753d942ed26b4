"""Names the cloud looks things up by (images, flavors, networks) and names the program makes."""

from __future__ import annotations

import re

# Resource names are <name>-<role>-<pool>-<index> and must stay a DNS label (hostnames);
# 20 leaves room for the rest within 63.
CLUSTER_NAME_MAX = 20
_DNS_LABEL = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def not_blank(value: str) -> str:
    """A name given to the cloud: blank matches nothing, edge spaces match nothing either."""
    if not value.strip():
        raise ValueError("must not be empty or blank")
    if value != value.strip():
        raise ValueError(
            f"{value!r} starts or ends with spaces (the cloud would look for them too)"
        )
    return value


def is_id(value: str) -> bool:
    """Whether a name the stack gives for a cloud object (image, network, subnet) is its
    OpenStack id, to be used as it is, rather than a name to look up."""
    return bool(_UUID.match(value))


def dns_label(value: str, most: int = CLUSTER_NAME_MAX) -> str:
    if len(value) > most or not _DNS_LABEL.match(value):
        raise ValueError(
            f"must be a DNS label: lowercase letters, digits and '-', starting with a letter, "
            f"at most {most} characters (got {value!r})"
        )
    return value


def suggest_dns_label(text: str, most: int = CLUSTER_NAME_MAX) -> str:
    """A valid name close to `text` (a stack name like My_Stack -> my-stack), for error hints."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    name = re.sub(r"^[^a-z]+", "", name)[:most].rstrip("-")
    return name or "k8s"
