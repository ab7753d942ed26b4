"""A read-only stub of the three OpenStack APIs a `pulumi preview` of this project calls.

A preview creates nothing; the program's data sources are its only calls to the cloud: a
Keystone token (and the auth scope read from it), the external network by name (Neutron) and
the image by name (Glance). This answers those, on 127.0.0.1, with whatever name is asked for,
so the engine tier can run a whole real preview without the local OpenStack (tools/openstack.sh,
the cloud tier, runs the same comparison against the real services). Anything else is a 404
that the test sees in `requests`.

    with OpenStackStub() as stub:
        stack = Stack.from_stack_file(engine, tmp_path, "prod", env=stub.env)
"""

from __future__ import annotations

import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PROJECT_ID = "0a1b2c3d4e5f40718293a4b5c6d7e8f9"
USER_ID = "9f8e7d6c5b4a40392817f6e5d4c3b2a1"
NETWORK_ID = "5e0f2b1a-7c3d-4e8f-9a0b-1c2d3e4f5a6b"
IMAGE_ID = "b6a5f4e3-d2c1-4b0a-9f8e-7d6c5b4a3f2e"
DOMAIN = {"id": "default", "name": "Default"}


class OpenStackStub:
    """Keystone v3 (tokens), Neutron v2.0 (networks) and Glance v2 (images), read-only."""

    def __init__(self) -> None:
        self.requests: list[str] = []  # "METHOD path?query", in arrival order
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def env(self) -> dict[str, str]:
        """OS_* variables for the OpenStack provider."""
        return {
            "OS_AUTH_URL": f"{self.url}/v3",
            "OS_USERNAME": "admin",
            "OS_PASSWORD": "stub",
            "OS_PROJECT_NAME": "admin",
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_REGION_NAME": "RegionOne",
        }

    def __enter__(self) -> OpenStackStub:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _token(self) -> dict:
        def service(kind: str, path: str) -> dict:
            endpoints = [
                {
                    "id": f"{kind}-{i}",
                    "interface": i,
                    "region": "RegionOne",
                    "region_id": "RegionOne",
                    "url": self.url + path,
                }
                for i in ("public", "internal", "admin")
            ]
            return {"id": kind, "type": kind, "name": kind, "endpoints": endpoints}

        return {
            "token": {
                "methods": ["password"],
                "user": {"id": USER_ID, "name": "admin", "domain": DOMAIN},
                "project": {"id": PROJECT_ID, "name": "admin", "domain": DOMAIN},
                "roles": [{"id": "admin-role", "name": "admin"}],
                "catalog": [
                    service("identity", "/v3"),
                    service("network", "/network"),
                    service("image", "/image"),
                ],
                "issued_at": "2026-01-01T00:00:00.000000Z",
                "expires_at": "2099-01-01T00:00:00.000000Z",
            }
        }

    def _network(self, name: str) -> dict:
        return {
            "id": NETWORK_ID,
            "name": name,
            "router:external": True,
            "status": "ACTIVE",
            "admin_state_up": True,
            "shared": False,
            "subnets": [],
            "mtu": 1500,
            "tenant_id": PROJECT_ID,
            "project_id": PROJECT_ID,
            "availability_zone_hints": [],
            "tags": [],
        }

    def _image(self, name: str) -> dict:
        return {
            "id": IMAGE_ID,
            "name": name,
            "status": "active",
            "visibility": "public",
            "container_format": "bare",
            "disk_format": "qcow2",
            "min_disk": 0,
            "min_ram": 0,
            "size": 1,
            "checksum": "0",
            "protected": False,
            "tags": [],
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "file": f"/v2/images/{IMAGE_ID}/file",
            "schema": "/v2/schemas/image",
        }

    def answer(self, method: str, path: str) -> tuple[int, dict, dict]:
        """(status, JSON body, extra headers) for one request."""
        url = urllib.parse.urlsplit(path)
        query = dict(urllib.parse.parse_qsl(url.query))
        if url.path == "/v3/auth/tokens" and method in ("POST", "GET"):
            return (
                (201 if method == "POST" else 200),
                self._token(),
                {"X-Subject-Token": "stub-token"},
            )
        if method == "GET" and url.path == "/network/v2.0/networks":
            return 200, {"networks": [self._network(query.get("name", "public"))]}, {}
        if method == "GET" and url.path == "/image/v2/images":
            return 200, {"images": [self._image(query.get("name", "image"))]}, {}
        return 404, {"error": f"the stub does not serve {method} {path}"}, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                stub.requests.append(f"{self.command} {self.path}")
                status, body, headers = stub.answer(self.command, self.path)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _reply

            def log_message(self, *args) -> None:  # requests are recorded, not printed
                pass

        return Handler
