"""Talk to a guest's etcd from the host, over TLS, through a forwarded 127.0.0.1 port.

etcd's JSON gateway (``/health``, ``/v3/kv/*``) on the client port is used instead of
``etcdctl``: the connection goes to 127.0.0.1 but the server certificate is checked against
the node's private address (``server_name``), exactly what a client inside the cluster checks.
etcdctl has no way to connect to one address and verify another.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ClientTls:
    """CA to verify the server with, and the client certificate and key (None: no client cert)."""

    ca: Path
    cert: Path | None = None
    key: Path | None = None


class _Connection(http.client.HTTPSConnection):
    """HTTPS to 127.0.0.1:port, verifying the certificate for ``server_name``."""

    def __init__(
        self, port: int, server_name: str, context: ssl.SSLContext, timeout: float
    ) -> None:
        super().__init__(server_name, port, context=context, timeout=timeout)
        self._local_port = port
        self._server_name = server_name
        self._ctx = context

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self._local_port), timeout=self.timeout)
        self.sock = self._ctx.wrap_socket(raw, server_hostname=self._server_name)


def context(tls: ClientTls) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca))
    if tls.cert:
        ctx.load_cert_chain(str(tls.cert), str(tls.key))
    return ctx


def request(
    port: int,
    server_name: str,
    tls: ClientTls,
    path: str,
    body: dict | None = None,
    timeout: float = 15,
) -> dict:
    """GET (no body) or POST (JSON body) ``path``; returns the decoded JSON reply.

    Raises ``ssl.SSLError``/``OSError`` when the TLS handshake or connection is refused, and
    ``RuntimeError`` on a non-200 reply.
    """
    conn = _Connection(port, server_name, context(tls), timeout)
    try:
        if body is None:
            conn.request("GET", path)
        else:
            conn.request(
                "POST", path, body=json.dumps(body), headers={"Content-Type": "application/json"}
            )
        reply = conn.getresponse()
        data = reply.read()
        if reply.status != 200:
            raise RuntimeError(f"{path}: HTTP {reply.status}: {data[:300]!r}")
        return json.loads(data)
    finally:
        conn.close()


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def healthy(port: int, server_name: str, tls: ClientTls) -> bool:
    return request(port, server_name, tls, "/health").get("health") == "true"


def get(port: int, server_name: str, tls: ClientTls, key: str) -> str | None:
    """The value of ``key``, or None when it does not exist."""
    reply = request(port, server_name, tls, "/v3/kv/range", {"key": _b64(key)})
    kvs = reply.get("kvs") or []
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


def put(port: int, server_name: str, tls: ClientTls, key: str, value: str) -> None:
    request(port, server_name, tls, "/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
