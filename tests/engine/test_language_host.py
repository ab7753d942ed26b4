"""Our `pulumi-language-python` (tools/engine/language_host.py) leans on a module the Python SDK
marks private, `pulumi.automation._server.LanguageServer`: these pin it, so an SDK upgrade that
changes it fails here, loudly, instead of in a `pulumi up`. They also run the host as the CLI
does: it prints its port, answers over gRPC, and a SIGINT stops it quietly."""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
import re
import signal
import subprocess
import sys

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.automation import _server
from pulumi.runtime.proto import language_pb2, language_pb2_grpc

from real import ROOT
from tools.engine import language_host

pytestmark = pytest.mark.engine

# sha256 of pulumi/automation/_server.py in the pinned SDK. When the SDK is upgraded and this
# fails: read the new _server.py, check that LanguageServer.Run still configures the runtime from
# the RunRequest and runs `self.program` in the stack, that a RunError is logged as one line,
# and that tools/engine/language_host.py still fits; then record the new hash here.
SERVER_SHA256 = "ee4c4b3f22700dadb4a96c3d19bad78f6987a881ddc1c968be9027c17d7617d3"


def test_the_sdk_is_the_pinned_one():
    pinned = re.search(r"^pulumi==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    assert pinned, "requirements.txt pins no pulumi"
    assert importlib.metadata.version("pulumi") == pinned[1] == "3.272.0"


def test_the_private_language_server_is_unchanged():
    digest = hashlib.sha256(open(_server.__file__, "rb").read()).hexdigest()
    assert digest == SERVER_SHA256, (
        f"{_server.__file__} changed (sha256 {digest}): the SDK's private LanguageServer that "
        "tools/engine/language_host.py serves must be re-read (see SERVER_SHA256)"
    )
    # What the host uses of it, by name: a changed signature fails here with a clear message.
    assert list(inspect.signature(_server.LanguageServer.__init__).parameters) == [
        "self",
        "program",
    ]
    assert issubclass(
        language_host.ProjectLanguageServer, language_pb2_grpc.LanguageRuntimeServicer
    )
    assert "run_in_stack(self.program)" in inspect.getsource(_server.LanguageServer.Run)


@pytest.fixture
def host():
    proc = subprocess.Popen(
        [sys.executable, "-m", "tools.engine.language_host", "127.0.0.1:1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_the_host_prints_its_port_serves_and_stops_quietly_on_sigint(host):
    port = int(host.stdout.readline())
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = language_pb2_grpc.LanguageRuntimeStub(channel)
        about = stub.About(language_pb2.AboutRequest(), timeout=10)
        stub.GetPluginInfo(empty_pb2.Empty(), timeout=10)
    # The program runs in the host's own process: the Python it reports is this venv's.
    assert about.executable == sys.executable
    host.send_signal(signal.SIGINT)
    out, err = host.communicate(timeout=10)
    assert (host.returncode, out, err) == (0, "", "")
