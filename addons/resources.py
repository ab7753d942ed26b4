"""Turn add-on objects (dicts) into typed pulumi_kubernetes resources.

One typed resource per object (type token kubernetes:<group>/<version>:<Kind>), not a
yaml.v2.ConfigGroup: ConfigGroup is a remote component, so under Pulumi's mock engine (the
offline plan and the tests) it registers as one opaque node with no children, and nobody
could see, diff or check which objects a feature adds. Typed resources show every object in
`pulumi preview`, in tools/plan, and get pulumi-kubernetes' await logic (a DaemonSet or
Deployment is "created" once it rolled out).

Nested fields stay camelCase: pulumi_kubernetes passes dict inputs through unchanged, and the
provider receives exactly the manifest. Only top-level fields become constructor keywords.

Objects of a group pulumi_kubernetes has no module for (Calico's crd.projectcalico.org) are
k8s.apiextensions.CustomResource (type kubernetes:<group>/<version>:<Kind> all the same), and
depend on the CustomResourceDefinition of their kind among the objects (the provider waits
for a CRD to be Established before it counts as created); a Calico policy also depends on its
tier, which must exist before felix applies it.
"""

import re

import pulumi
import pulumi_kubernetes as k8s

from addons.manifests import object_key

_TOP_LEVEL_SKIP = ("apiVersion", "kind")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


# Groups served only by CRDs: their objects are CustomResources, never a typed class (a
# module of the same first label, such as a future pulumi_kubernetes "crd", must not match).
CUSTOM_GROUPS = ("crd.projectcalico.org",)


def is_custom(api_version: str) -> bool:
    return api_version.rpartition("/")[0] in CUSTOM_GROUPS


def resource_class(api_version: str, kind: str):
    """pulumi_kubernetes class for apiVersion/kind ('rbac.authorization.k8s.io/v1' -> rbac.v1)."""
    group, _, version = api_version.rpartition("/")
    module = group.split(".")[0] if group else "core"
    try:
        return getattr(getattr(getattr(k8s, module), version), kind)
    except AttributeError as err:
        raise ValueError(f"no pulumi_kubernetes resource for {api_version} {kind}") from err


def _crd_kinds(objects: list[dict]) -> dict:
    """(group, kind) -> object_key of the CRD among the objects that defines it."""
    return {
        (o["spec"]["group"], o["spec"]["names"]["kind"]): object_key(o)
        for o in objects
        if o["apiVersion"] == "apiextensions.k8s.io/v1" and o["kind"] == "CustomResourceDefinition"
    }


def custom_dependencies(obj: dict, objects: list[dict]) -> list[str]:
    """object_keys a custom object waits for: its kind's CRD, and a policy's tier."""
    group = obj["apiVersion"].rpartition("/")[0]
    crd = _crd_kinds(objects).get((group, obj["kind"]))
    if crd is None:
        raise ValueError(
            f"{object_key(obj)}: no CustomResourceDefinition for {obj['kind']}.{group} among the objects"
        )
    wants = [crd]
    tier = (obj.get("spec") or {}).get("tier")
    if tier:
        tiers = [
            object_key(o)
            for o in objects
            if o["kind"] == "Tier"
            and o["apiVersion"] == obj["apiVersion"]
            and o["metadata"]["name"] == tier
        ]
        wants += tiers
    return wants


def pod_images(obj: dict) -> set[str]:
    """Every image the object's pods run (containers and init containers of its pod
    template); nothing for an object without one."""
    pod = ((obj.get("spec") or {}).get("template") or {}).get("spec") or {}
    return {
        c["image"]
        for key in ("initContainers", "containers")
        for c in pod.get(key) or ()
        if "image" in c
    }


def resource_name(prefix: str, obj: dict) -> str:
    """Stable, unique Pulumi name: <prefix>-<kind>-<metadata.name> (':' made '-')."""
    name = obj["metadata"]["name"].replace(":", "-")
    return f"{prefix}-{obj['kind'].lower()}-{name}"


def create(objects: list[dict], *, prefix: str, opts: pulumi.ResourceOptions | None = None) -> dict:
    """Create one resource per object; returns {object_key(obj): resource}.

    opts carries provider=<k8s.Provider from the kubeconfig>, parent and depends_on.
    A Secret's data/stringData are secret in state whatever its inputs are: the typed
    core.v1.Secret adds additional_secret_outputs itself (checked by the tests).
    """
    created = {}
    # Custom objects last: what they depend on is then created already.
    for obj in sorted(objects, key=lambda o: is_custom(o["apiVersion"])):
        key = object_key(obj)
        if key in created:
            raise ValueError(f"duplicate Kubernetes object {key}")
        if is_custom(obj["apiVersion"]):
            wants = [created[k] for k in custom_dependencies(obj, objects)]
            created[key] = k8s.apiextensions.CustomResource(
                resource_name(prefix, obj),
                api_version=obj["apiVersion"],
                kind=obj["kind"],
                metadata=obj["metadata"],
                spec=obj.get("spec"),
                opts=(opts or pulumi.ResourceOptions()).merge(
                    pulumi.ResourceOptions(depends_on=wants)
                ),
            )
            continue
        cls = resource_class(obj["apiVersion"], obj["kind"])
        kwargs = {_snake(k): v for k, v in obj.items() if k not in _TOP_LEVEL_SKIP}
        created[key] = cls(resource_name(prefix, obj), opts=opts, **kwargs)
    return created
