"""Stand-ins for pulumi-command 1.2.1 and pulumi-kubernetes 4.34.2, which cannot be built here.

Their resources need booted machines (remote commands) or a running cluster (Kubernetes
objects), so the real engine runs this project's stacks with them excluded
(`pulumi up --exclude <urn> --exclude-dependents`). The engine still loads a plugin for
every package a program registers, and configures the explicit kubernetes provider; these
stand-ins answer that (configuration, check, diff, preview, read) as the real providers
would, and refuse, with one line, anything that would have to act: create, update, delete.
"""

from __future__ import annotations

from typing import Any

import grpc
from pulumi.runtime.proto import provider_pb2

from .provider import Base, Diff, Kind, _token, config_diff, diff_response
from .values import from_struct, has_unknown, plain

VERSIONS = {"command": "1.2.1", "kubernetes": "4.34.2"}

# The identity of a Kubernetes object: a change replaces it, as the provider does.
K8S_IDENTITY = (("apiVersion",), ("kind",), ("metadata", "name"), ("metadata", "namespace"))
# The kubernetes provider's settings that name the cluster it talks to.
K8S_CLUSTER = ("kubeconfig", "context", "cluster")


def refusal(package: str, action: str, urn: str) -> str:
    # The engine prints it under the resource's name: the URN is there for the command line.
    return (
        f"cannot {action}: the {package} provider here is openstack-k8s's stand-in "
        f"(tools/engine/standins), which acts on nothing; run with this provider's resources "
        f"excluded: pulumi up --exclude '{urn}' --exclude-dependents"
    )


def _at(value: dict[str, Any], path: tuple[str, ...]) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


# What pulumi-command 1.2.1 replaces is decided by its code, not by the schema's description of
# `triggers` (which says an `update` command runs instead). Its resources are pulumi-go-provider
# v1.3.0 `infer` resources without a Diff of their own: infer's Diff (infer/resource.go,
# derivedResourceController.Diff) replaces on a change of an input tagged replaceOnChanges when
# the resource has an Update, and on every change when it has none. `triggers` has that tag
# (provider/pkg/provider/common/inputs.go; remote/copy.go for CopyToRemote), and local and remote
# Command and CopyToRemote have an Update: a changed `triggers` replaces them, `update` or not.
COMMAND_REPLACE_ON_CHANGES = frozenset({"triggers"})
# remote:CopyFile (deprecated) alone has no Update: any change replaces it.
COMMAND_WITHOUT_UPDATE = frozenset({"command:remote:CopyFile"})


def command_replaces(token: str, olds: dict, news: dict, changed: set[str]) -> set[str]:
    # Every other change updates in place: Command runs `update`, or `create` again.
    if token in COMMAND_WITHOUT_UPDATE:
        return set(changed)
    return changed & COMMAND_REPLACE_ON_CHANGES


def kubernetes_replaces(token: str, olds: dict, news: dict, changed: set[str]) -> set[str]:
    return {
        ".".join(path)
        for path in K8S_IDENTITY
        if has_unknown(_at(news, path)) or plain(_at(olds, path)) != plain(_at(news, path))
    }


REPLACES = {"command": command_replaces, "kubernetes": kubernetes_replaces}


def kubernetes_config_diff(olds: dict[str, Any], news: dict[str, Any]) -> provider_pb2.DiffResponse:
    """As pulumi-kubernetes decides it: with a clusterIdentifier, only a new identifier
    replaces the provider (and with it every object it made); without one, so does a
    different kubeconfig, context or cluster. Other changes update it."""
    response = config_diff(olds, news)
    if response.changes != Diff.DIFF_SOME:
        return response
    if "clusterIdentifier" in olds or "clusterIdentifier" in news:
        keys = ("clusterIdentifier",)
    else:
        keys = K8S_CLUSTER
    replaces = [
        k for k in keys if has_unknown(news.get(k)) or plain(olds.get(k)) != plain(news.get(k))
    ]
    return Diff(changes=Diff.DIFF_SOME, diffs=response.diffs, replaces=replaces)


class Refusing(Base):
    def __init__(self, name: str) -> None:
        super().__init__(name, VERSIONS[name])

    def _refuse(self, action: str, urn: str, context) -> None:
        context.abort(grpc.StatusCode.FAILED_PRECONDITION, refusal(self.name, action, urn))

    def DiffConfig(self, request, context):
        olds, news = from_struct(request.olds), from_struct(request.news)
        if self.name == "kubernetes":
            return kubernetes_config_diff(olds, news)
        return config_diff(olds, news)

    def Check(self, request, context):
        return provider_pb2.CheckResponse(inputs=request.news)

    def Diff(self, request, context):
        token = request.type or _token(request.urn)
        olds = from_struct(request.old_inputs if request.HasField("old_inputs") else request.olds)
        news = from_struct(request.news)
        changed = {
            k
            for k in set(olds) | set(news)
            if has_unknown(news.get(k)) or plain(olds.get(k)) != plain(news.get(k))
        }
        replacing = REPLACES[self.name](token, olds, news, changed)
        changes = {k: Kind.UPDATE for k in changed}
        for key in replacing:
            changes[key] = Kind.UPDATE_REPLACE
        return diff_response(changes, replacing)

    def Create(self, request, context):
        if request.preview:
            # What a create would look like is harmless to show; only doing it is refused.
            return provider_pb2.CreateResponse(id="", properties=request.properties)
        self._refuse("create", request.urn, context)

    def Update(self, request, context):
        if request.preview:
            return provider_pb2.UpdateResponse(properties=request.news)
        self._refuse("update", request.urn, context)

    def Delete(self, request, context):
        self._refuse("delete", request.urn, context)
