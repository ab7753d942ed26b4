"""A test client for the stand-in provider plugins: one servicer served on 127.0.0.1 in this
process (so its clock can be a fake one), called through the real gRPC stubs the engine uses."""

from __future__ import annotations

import datetime
from concurrent import futures
from typing import Any

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import provider_pb2 as pb
from pulumi.runtime.proto import provider_pb2_grpc

from tools.engine.standins.values import from_struct, to_struct

START = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.UTC)


class FakeClock:
    """The time the provider sees; tests move it, nothing sleeps."""

    def __init__(self, now: datetime.datetime = START) -> None:
        self.now = now
        self.calls = 0

    def __call__(self) -> datetime.datetime:
        self.calls += 1
        return self.now

    def advance(self, hours: float) -> None:
        self.now += datetime.timedelta(hours=hours)


def urn(token: str, name: str = "r") -> str:
    return f"urn:pulumi:test::standins::{token}::{name}"


class Client:
    def __init__(self, servicer: provider_pb2_grpc.ResourceProviderServicer) -> None:
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        provider_pb2_grpc.add_ResourceProviderServicer_to_server(servicer, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        self.channel = grpc.insecure_channel(f"127.0.0.1:{port}")
        self.stub = provider_pb2_grpc.ResourceProviderStub(self.channel)

    def close(self) -> None:
        self.channel.close()
        self.server.stop(grace=None)

    def info(self) -> str:
        return self.stub.GetPluginInfo(empty_pb2.Empty()).version

    def check(self, token: str, news: dict[str, Any], olds: dict | None = None):
        """(inputs, [(property, reason)])"""
        response = self.stub.Check(
            pb.CheckRequest(
                urn=urn(token), type=token, news=to_struct(news), olds=to_struct(olds or {})
            )
        )
        return from_struct(response.inputs), [(f.property, f.reason) for f in response.failures]

    def checked(self, token: str, news: dict[str, Any]) -> dict[str, Any]:
        inputs, failures = self.check(token, news)
        assert failures == [], failures
        return inputs

    def create(self, token: str, inputs: dict[str, Any], preview: bool = False):
        """(id, outputs)"""
        response = self.stub.Create(
            pb.CreateRequest(
                urn=urn(token), type=token, properties=to_struct(inputs), preview=preview
            )
        )
        return response.id, from_struct(response.properties)

    def make(self, token: str, news: dict[str, Any]):
        """Check then create, as the engine does on an up: (inputs, id, outputs)."""
        inputs = self.checked(token, news)
        rid, outputs = self.create(token, inputs)
        return inputs, rid, outputs

    def diff(
        self, token: str, rid: str, state: dict, old_inputs: dict, news: dict
    ) -> pb.DiffResponse:
        return self.stub.Diff(
            pb.DiffRequest(
                id=rid,
                urn=urn(token),
                type=token,
                olds=to_struct(state),
                old_inputs=to_struct(old_inputs),
                news=to_struct(news),
            )
        )

    def read(self, token: str, rid: str, state: dict, inputs: dict):
        """(id, properties, inputs) as Read answers them."""
        response = self.stub.Read(
            pb.ReadRequest(
                id=rid,
                urn=urn(token),
                type=token,
                properties=to_struct(state),
                inputs=to_struct(inputs),
            )
        )
        return response.id, from_struct(response.properties), from_struct(response.inputs)

    def update(self, token: str, rid: str, state: dict, news: dict, preview: bool = False) -> dict:
        response = self.stub.Update(
            pb.UpdateRequest(
                id=rid,
                urn=urn(token),
                type=token,
                olds=to_struct(state),
                news=to_struct(news),
                preview=preview,
            )
        )
        return from_struct(response.properties)

    def delete(self, token: str, rid: str, state: dict) -> None:
        self.stub.Delete(
            pb.DeleteRequest(id=rid, urn=urn(token), type=token, properties=to_struct(state))
        )
