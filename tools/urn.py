"""Pulumi URNs as the engine makes them, and their parts.

    urn:pulumi:<stack>::<project>::<qualified type>::<name>

The qualified type of a child is its parent's qualified type, `$`, and its own type
(pulumi/pulumi sdk/go/common/resource/urn.go, NewURN, given the parent URN's whole
qualified type): the chain of every component from the top down. The root stack's type is
left out of it, so a resource whose parent is the stack has its own type alone, as has the
stack itself (`urn:pulumi:dev::openstack-k8s::pulumi:pulumi:Stack::openstack-k8s-dev`).
These are the URNs `pulumi up --replace` and `--target` take.
"""

from __future__ import annotations

STACK_TYPE = "pulumi:pulumi:Stack"


def make(stack: str, project: str, parent: str | None, type_: str, name: str) -> str:
    """The engine's URN for a resource of type_ named name under parent (a URN, or none)."""
    if parent:
        chain = qualified_type(parent)
        if chain != STACK_TYPE:
            type_ = f"{chain}${type_}"
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


def qualified_type(urn: str) -> str:
    """`A$B$C`: the resource's type after every parent type."""
    parts = urn.split("::", 3)
    return parts[2] if len(parts) == 4 else ""


def type_of(urn: str) -> str:
    """The resource's own type: the last of the qualified type."""
    return qualified_type(urn).rsplit("$", 1)[-1]


def name_of(urn: str) -> str:
    return urn.split("::", 3)[-1] if urn.count("::") >= 3 else urn


def is_legacy(urn: str) -> bool:
    """A URN as Pulumi's mock monitor (and tools/plan before it followed the engine) made
    it: the stack's type kept in front of its children's."""
    return qualified_type(urn).startswith(STACK_TYPE + "$")
