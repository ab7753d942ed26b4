"""`python -m tools.engine.standins <tls|random|command|kubernetes> [engine args]`: serve one
stand-in as a Pulumi resource provider plugin: print the port, serve until SIGINT/SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
from concurrent import futures

import grpc
from pulumi.runtime.proto import provider_pb2_grpc

from . import randomness, tls
from .provider import Provider
from .refusing import VERSIONS, Refusing

# The engine's own limit for plugin messages (large user-data passes through Check and Diff).
MAX_MESSAGE = 400 * 1024 * 1024


def servicer(name: str) -> provider_pb2_grpc.ResourceProviderServicer:
    if name == "tls":
        return Provider(tls.PACKAGE)
    if name == "random":
        return Provider(randomness.PACKAGE)
    return Refusing(name)


def serve(name: str) -> tuple[grpc.Server, int]:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ],
    )
    provider_pb2_grpc.add_ResourceProviderServicer_to_server(servicer(name), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def main(argv: list[str]) -> int:
    names = ("tls", "random", *VERSIONS)
    if not argv or argv[0] not in names:
        print(
            f"usage: python -m tools.engine.standins <{'|'.join(names)}> [engine args]",
            file=sys.stderr,
        )
        return 2
    # The rest (the engine's address, --logtostderr, -v=N, --tracing) needs no answer: the
    # stand-ins call nothing back on the engine.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    server, port = serve(argv[0])
    print(port, flush=True)
    stop.wait()
    server.stop(grace=None)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
