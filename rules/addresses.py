"""Which IPv4 ranges and addresses can carry a cluster's traffic.

Python's `is_private` calls loopback, link-local and 0.0.0.0/8 private: none of them can be a
tenant network, a pod or a service range. 169.254.0.0/16 in particular holds the metadata
service (169.254.169.254) every node needs at boot.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

# Ranges no cluster range may overlap, and why.
UNUSABLE = (
    (IPv4Network("0.0.0.0/8"), "'this network' (0.0.0.0/8)"),
    (IPv4Network("127.0.0.0/8"), "loopback (127.0.0.0/8)"),
    (
        IPv4Network("169.254.0.0/16"),
        "link-local (169.254.0.0/16, where the metadata service lives)",
    ),
    (IPv4Network("224.0.0.0/4"), "multicast (224.0.0.0/4)"),
    (IPv4Network("240.0.0.0/4"), "reserved (240.0.0.0/4 and the broadcast address)"),
)


def cluster_range(net: IPv4Network) -> IPv4Network:
    """A range the cluster routes itself: the node subnet, pod or service CIDR."""
    for bad, what in UNUSABLE:
        if net.overlaps(bad):
            raise ValueError(f"{net} overlaps {what}; use a private range such as 10.0.0.0/8")
    return net


def private_range(net: IPv4Network) -> IPv4Network:
    """The node subnet: routable inside the cloud only (RFC 1918 and friends)."""
    cluster_range(net)
    if not net.is_private:
        raise ValueError(f"{net} is not a private range")
    return net


def resolver(address: IPv4Address) -> IPv4Address:
    """A DNS server the subnet hands to its nodes over DHCP: one the nodes can reach."""
    if address.is_unspecified or address.is_loopback or address.is_multicast or address.is_reserved:
        raise ValueError(
            f"{address} cannot be a DNS resolver for the nodes (unspecified, loopback, multicast "
            f"or reserved); give the address of a real resolver, or leave the list empty for the "
            f"cloud's own"
        )
    return address


def no_repeats(values: list) -> list:
    """A list given to the cloud as one rule or entry each: a repeat is a mistake."""
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{value} is listed twice")
        seen.add(value)
    return values
