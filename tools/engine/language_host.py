"""Our `pulumi-language-python`: the Pulumi CLI's Python language host, for this test environment.

The real host is a Go binary that the Go module proxy does not serve. The Python SDK implements
the same gRPC service for its Automation API (`pulumi.automation._server.LanguageServer`, a
module it marks private: tests/engine/test_language_host.py pins it). This serves that class,
with `Run` executing the project's `__main__.py` in this process, so every command stays a plain
`pulumi ...` in the project directory. tools/real-engine.sh puts a `pulumi-language-python`
wrapper that execs this file (with the project's venv Python) next to `pulumi`.

Protocol: print the port on stdout, serve until the CLI stops us (SIGINT/SIGTERM), exit 0.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import threading
from concurrent import futures

import grpc
from pulumi.automation._server import LanguageServer
from pulumi.errors import RunError
from pulumi.runtime._grpc_settings import _GRPC_CHANNEL_OPTIONS
from pulumi.runtime.proto import language_pb2, language_pb2_grpc


class ProjectLanguageServer(LanguageServer):
    """The SDK's LanguageServer, running `<program directory>/__main__.py` instead of a function."""

    def __init__(self) -> None:
        super().__init__(program=self._run_main)
        self._main: str = ""
        self._bailed = False

    def _run_main(self) -> None:
        try:
            runpy.run_path(self._main, run_name="__main__")
        except RunError:
            # The SDK's Run logs a RunError's message as one error diagnostic; the flag makes
            # the response a `bail`, so the CLI does not print the same line a second time.
            self._bailed = True
            raise

    def Run(self, request, context):
        directory = request.info.program_directory or request.pwd
        self._main = os.path.join(directory, "__main__.py")
        self._bailed = False
        # The program imports its own modules (settings, components) by bare name, as it does
        # under the real host, which runs it with its directory first on sys.path.
        os.chdir(request.pwd or directory)
        if directory not in sys.path:
            sys.path.insert(0, directory)
        # The real host hands the program its config and the names of its secret keys in these
        # two variables too; the program reads the second to refuse a secret kept in plain text.
        os.environ["PULUMI_CONFIG"] = json.dumps(dict(request.config))
        os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(list(request.configSecretKeys))
        try:
            result = super().Run(request, context)
        except Exception as exn:  # noqa: BLE001 one line instead of gRPC's "Exception calling application"
            # The SDK's Run has logged the failure with its traceback by then; its clean-up
            # re-raises the failed task (a data source the cloud refused, say) on its way out.
            return language_pb2.RunResponse(error=str(exn))
        if self._bailed:
            return language_pb2.RunResponse(bail=True)
        return result


def main() -> int:
    stop = threading.Event()
    # The CLI stops a plugin with SIGINT: a quiet exit, not a KeyboardInterrupt traceback.
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=_GRPC_CHANNEL_OPTIONS)
    language_pb2_grpc.add_LanguageRuntimeServicer_to_server(ProjectLanguageServer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    stop.wait()
    server.stop(0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
