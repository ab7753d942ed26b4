"""The pulumirpc.ResourceProvider service over a Package of resource types.

Base answers what every stand-in answers alike (handshake, plugin info, configuration, read,
delete); Provider adds Check, Diff, Create and Update for packages implemented for real
(tls, random). The refusing stand-ins (command, kubernetes) are in refusing.py.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import plugin_pb2, provider_pb2, provider_pb2_grpc

from .schema import Clock, Package, Prop, ResourceType
from .values import UNKNOWN, from_struct, has_unknown, is_secret, plain, secret, to_struct

Diff = provider_pb2.DiffResponse
Kind = provider_pb2.PropertyDiff.Kind


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def config_diff(olds: dict[str, Any], news: dict[str, Any]) -> provider_pb2.DiffResponse:
    """A provider configuration change that never replaces the provider (tls, random, command:
    their configuration decides nothing about the resources already made)."""
    changed = sorted(k for k in set(olds) | set(news) if plain(olds.get(k)) != plain(news.get(k)))
    return Diff(changes=Diff.DIFF_SOME if changed else Diff.DIFF_NONE, diffs=changed)


class Base(provider_pb2_grpc.ResourceProviderServicer):
    def __init__(self, name: str, version: str) -> None:
        self.name = name
        self.version = version

    def Handshake(self, request, context):
        # Answering the handshake commits the engine to previews by this provider
        # (supportsPreview): Create and Update below honour `preview`.
        return provider_pb2.ProviderHandshakeResponse(accept_secrets=True, accept_resources=True)

    def GetPluginInfo(self, request, context):
        return plugin_pb2.PluginInfo(version=self.version)

    def GetSchema(self, request, context):
        # Honest and minimal: the engine asks for a schema only for code generation and
        # parameterized packages, neither of which this project does with a stand-in.
        schema = {
            "name": self.name,
            "version": self.version,
            "description": f"openstack-k8s stand-in for the {self.name} provider",
        }
        return provider_pb2.GetSchemaResponse(schema=json.dumps(schema))

    def CheckConfig(self, request, context):
        return provider_pb2.CheckResponse(inputs=request.news)

    def DiffConfig(self, request, context):
        return config_diff(from_struct(request.olds), from_struct(request.news))

    def Configure(self, request, context):
        return provider_pb2.ConfigureResponse(
            acceptSecrets=True, supportsPreview=True, acceptResources=True
        )

    def Read(self, request, context):
        # The state is what Create made: nothing outside the state can change it, so a
        # refresh finds exactly what is stored.
        return provider_pb2.ReadResponse(
            id=request.id, properties=request.properties, inputs=request.inputs
        )

    def Delete(self, request, context):
        return empty_pb2.Empty()

    def Cancel(self, request, context):
        return empty_pb2.Empty()

    def _unimplemented(self, request, context):
        # A clean status, where the generated base class would also log a traceback on the
        # plugin's stderr (which the engine shows).
        context.abort(
            grpc.StatusCode.UNIMPLEMENTED,
            f"not implemented by the openstack-k8s stand-in for {self.name}",
        )

    Parameterize = Invoke = Call = Construct = Attach = GetMapping = GetMappings = _unimplemented


def check(rtype: ResourceType, news: dict[str, Any]) -> tuple[dict[str, Any], list[tuple]]:
    """(inputs with defaults filled in, [(property, reason)]): secret and unknown values stay
    as they came; only known values are validated."""
    inputs = {k: v for k, v in news.items() if v is not None}
    failures = [
        (k, f"{k} is not an input of {rtype.token}")
        for k in inputs
        if k not in rtype.by_name and not k.startswith("__")
    ]
    for prop in rtype.props:
        if prop.name not in inputs:
            if prop.required:
                failures.append((prop.name, f"missing required property {prop.name}"))
            elif prop.default is not None:
                inputs[prop.name] = prop.default
        elif not has_unknown(inputs[prop.name]):
            problem = prop.problem(plain(inputs[prop.name]))
            if problem:
                failures.append((prop.name, problem))
    if not failures:
        known = {k: plain(v) for k, v in inputs.items() if not has_unknown(v)}
        failures = rtype.rules(known)
    return inputs, failures


def _kind(prop_replace: bool, old: Any, new: Any) -> int:
    if old is None:
        return Kind.ADD_REPLACE if prop_replace else Kind.ADD
    if new is None:
        return Kind.DELETE_REPLACE if prop_replace else Kind.DELETE
    return Kind.UPDATE_REPLACE if prop_replace else Kind.UPDATE


def changed_props(props: tuple[Prop, ...], olds: dict, news: dict) -> dict[str, int]:
    """{property: PropertyDiff kind} of every input that differs (unknown counts as changed)."""
    changes = {}
    for prop in props:
        old, new = olds.get(prop.name), news.get(prop.name)
        if old is None and new is None:
            continue
        if has_unknown(new) or not prop.same(plain(old), plain(new)):
            changes[prop.name] = _kind(prop.replace, old, new)
    return changes


def diff_response(changes: dict[str, int], replacing: set[str]) -> provider_pb2.DiffResponse:
    if not changes:
        return Diff(changes=Diff.DIFF_NONE)
    return Diff(
        changes=Diff.DIFF_SOME,
        replaces=sorted(replacing),
        diffs=sorted(changes),
        detailedDiff={
            k: provider_pb2.PropertyDiff(kind=kind, inputDiff=not k.startswith("ready"))
            for k, kind in changes.items()
        },
        hasDetailedDiff=True,
        deleteBeforeReplace=False,
    )


class Provider(Base):
    """A package implemented for real: every resource computes its outputs in Create."""

    def __init__(self, package: Package, clock: Clock = utc_now) -> None:
        super().__init__(package.name, package.version)
        self.package = package
        self.clock = clock

    def _type(self, token: str, context) -> ResourceType:
        rtype = self.package.resources.get(token)
        if rtype is None:
            known = ", ".join(sorted(self.package.resources))
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"{token}: not implemented by the openstack-k8s stand-in for {self.name} "
                f"(it implements {known})",
            )
        return rtype

    def Check(self, request, context):
        rtype = self._type(request.type or _token(request.urn), context)
        inputs, failures = check(rtype, from_struct(request.news))
        return provider_pb2.CheckResponse(
            inputs=to_struct(inputs),
            failures=[provider_pb2.CheckFailure(property=p, reason=r) for p, r in failures],
        )

    def Diff(self, request, context):
        rtype = self._type(request.type or _token(request.urn), context)
        state = from_struct(request.olds)
        olds = from_struct(request.old_inputs) if request.HasField("old_inputs") else state
        news = from_struct(request.news)
        changes = changed_props(rtype.props, olds, news)
        for key in rtype.due(plain(state), plain(news), self.clock()):
            changes[key] = Kind.UPDATE_REPLACE
        replacing = {k for k, kind in changes.items() if kind in _REPLACING}
        return diff_response(changes, replacing)

    def Create(self, request, context):
        rtype = self._type(request.type or _token(request.urn), context)
        inputs = from_struct(request.properties)
        if request.preview:
            return provider_pb2.CreateResponse(
                id="", properties=to_struct({**inputs, **dict.fromkeys(rtype.outputs, UNKNOWN)})
            )
        try:
            rid, computed = rtype.create(plain(inputs), self.clock())
        except (ValueError, TypeError) as err:  # inputs Check could not judge (bad PEM)
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"{rtype.token}: {err}")
        outputs = {k: secret(v) if k in rtype.secret_outputs else v for k, v in computed.items()}
        return provider_pb2.CreateResponse(id=rid, properties=to_struct({**inputs, **outputs}))

    def Update(self, request, context):
        # Only inputs that do not replace get here (a certificate's earlyRenewalHours).
        rtype = self._type(request.type or _token(request.urn), context)
        state = from_struct(request.olds)
        news = from_struct(request.news)
        state.update({k: v for k, v in news.items() if k in rtype.by_name})
        for key, value in rtype.recompute(plain(state), self.clock()).items():
            state[key] = secret(value) if is_secret(state.get(key)) else value
        return provider_pb2.UpdateResponse(properties=to_struct(state))


_REPLACING = {Kind.ADD_REPLACE, Kind.DELETE_REPLACE, Kind.UPDATE_REPLACE}


def _token(urn: str) -> str:
    # urn:pulumi:stack::project::parent$type::name -> type
    return urn.split("::")[2].split("$")[-1] if urn.count("::") >= 3 else urn
