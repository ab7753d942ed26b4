"""Credentials the program creates for software on the nodes: OpenStack application
credentials, each limited to what one job needs, instead of the operator's own account."""

from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Sequence

import pulumi
import pulumi_openstack as openstack


@dataclass(frozen=True)
class CloudCredential:
    """An application credential and where to use it (secret is a Pulumi secret)."""

    id: pulumi.Output[str]
    secret: pulumi.Output[str]
    auth_url: pulumi.Output[str]
    region: pulumi.Output[str]


def identity_endpoint(scope) -> str:
    """Keystone's public URL from the token's service catalog: the cloud the program runs against."""
    for service in scope.service_catalogs:
        if service.type == "identity":
            for endpoint in service.endpoints:
                if endpoint.interface == "public":
                    return endpoint.url
    raise ValueError("the service catalog has no public identity endpoint")


def application_credential(
    name: str,
    *,
    description: str,
    parent: pulumi.Resource,
    access_rules: Sequence[openstack.identity.ApplicationCredentialAccessRuleArgs] | None = None,
) -> CloudCredential:
    credential = openstack.identity.ApplicationCredential(
        name,
        # Keystone wants names unique per user: two stacks with one cluster name, run by one
        # operator, must not collide, so the stack's name is in it. Every field is ForceNew,
        # so the name is kept as it was at creation: a `pulumi stack rename` must not replace
        # the credential (the in-cluster integration would lose its login until the new one
        # reached it).
        name=f"{pulumi.get_project()}-{pulumi.get_stack()}-{name}",
        description=description,
        access_rules=list(access_rules) if access_rules else None,
        # The old one must go first: a replacement keeps the name (409).
        opts=pulumi.ResourceOptions(
            parent=parent, delete_before_replace=True, ignore_changes=["name"]
        ),
    )
    scope = openstack.identity.get_auth_scope_output(name="current")
    return CloudCredential(
        id=credential.id,
        secret=pulumi.Output.secret(credential.secret),
        auth_url=scope.apply(identity_endpoint),
        region=scope.region,
    )


def given_credential(credential_id: str, secret: str) -> CloudCredential:
    """An application credential the operator made (config), used where the program would
    make one: against the cloud the program runs against."""
    scope = openstack.identity.get_auth_scope_output(name="current")
    return CloudCredential(
        id=pulumi.Output.from_input(credential_id),
        secret=pulumi.Output.secret(secret),
        auth_url=scope.apply(identity_endpoint),
        region=scope.region,
    )


def swift_writer_rules(
    container: str,
) -> list[openstack.identity.ApplicationCredentialAccessRuleArgs]:
    """Enough to put objects into one container, nothing else."""
    return [
        openstack.identity.ApplicationCredentialAccessRuleArgs(
            service="object-store", method=method, path=f"/v1/*/{container}{suffix}"
        )
        for method, suffix in (("HEAD", ""), ("PUT", "/**"), ("HEAD", "/**"))
    ]
