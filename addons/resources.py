"""Turn add-on objects (dicts) into typed pulumi_kubernetes resources.

One typed resource per object (type token kubernetes:<group>/<version>:<Kind>), not a
yaml.v2.ConfigGroup: ConfigGroup is a remote component, so under Pulumi's mock engine (the
offline plan and the tests) it registers as one opaque node with no children, and nobody
could see, diff or check which objects a feature adds. Typed resources show every object in
`pulumi preview`, in tools/plan, and get pulumi-kubernetes' await logic (a DaemonSet or
Deployment is "created" once it rolled out).

Nested fields stay camelCase: pulumi_kubernetes passes dict inputs through unchanged, and the
provider receives exactly the manifest. Only top-level fields become constructor keywords.
"""

import re

import pulumi
import pulumi_kubernetes as k8s

from addons.manifests import object_key

_TOP_LEVEL_SKIP = ("apiVersion", "kind")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def resource_class(api_version: str, kind: str):
    """pulumi_kubernetes class for apiVersion/kind ('rbac.authorization.k8s.io/v1' -> rbac.v1)."""
    group, _, version = api_version.rpartition("/")
    module = group.split(".")[0] if group else "core"
    try:
        return getattr(getattr(getattr(k8s, module), version), kind)
    except AttributeError as err:
        raise ValueError(f"no pulumi_kubernetes resource for {api_version} {kind}") from err


def resource_name(prefix: str, obj: dict) -> str:
    """Stable, unique Pulumi name: <prefix>-<kind>-<metadata.name> (':' made '-')."""
    name = obj["metadata"]["name"].replace(":", "-")
    return f"{prefix}-{obj['kind'].lower()}-{name}"


def create(objects: list[dict], *, prefix: str,
           opts: pulumi.ResourceOptions | None = None) -> dict:
    """Create one resource per object; returns {object_key(obj): resource}.

    opts carries provider=<k8s.Provider from the kubeconfig>, parent and depends_on.
    A Secret's data/stringData are secret in state whatever its inputs are: the typed
    core.v1.Secret adds additional_secret_outputs itself (checked by the tests).
    """
    created = {}
    for obj in objects:
        cls = resource_class(obj["apiVersion"], obj["kind"])
        kwargs = {_snake(k): v for k, v in obj.items() if k not in _TOP_LEVEL_SKIP}
        key = object_key(obj)
        if key in created:
            raise ValueError(f"duplicate Kubernetes object {key}")
        created[key] = cls(resource_name(prefix, obj), opts=opts, **kwargs)
    return created
