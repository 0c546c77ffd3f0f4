"""A real SCIM 2.0 server (``scim2-server`` from PyPI) on a free loopback port, for the tests.

It runs as its own process, as an operator would run it, with syncd's extension schema
loaded beside the RFC 7643 defaults (``--schema`` and ``--resource-type`` take the full
lists to serve) or, with ``extension=None``, as a plain SCIM server that never heard of
it. Users live in memory: a stopped server forgets them, a restarted one starts empty.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from scim2_client import BaseSyncSCIMClient
from scim2_server.utils import load_json_resource

from connectors.scim.config import DEFAULT_EXTENSION
from connectors.scim.schema import extension_schema
from tests.smtp_server import free_port

TOKEN = "Scim-Test-Token-7Qx2"  # noqa: S105 - the test server's credential, nothing real
START_TIMEOUT_S = 20.0


@dataclass
class ScimServer:
    """A running ``scim2-server`` process and how to reach it."""

    url: str  # the SCIM base URL, e.g. http://127.0.0.1:PORT/v2
    port: int
    process: subprocess.Popen[bytes]
    token: str = TOKEN

    def section(self, **extra: Any) -> dict[str, Any]:
        """The YAML ``portal`` section that reaches this server."""
        return {"kind": "scim", "url": self.url, "token": self.token, **extra}

    def get(self, path: str, **params: Any) -> Any:
        """A GET as a second client would do it (to look behind the connector's back)."""
        response = requests.get(
            f"{self.url}/{path.lstrip('/')}",
            params=params,
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def verify_password(self, login: str, password: str) -> bool:
        """Whether the server holds exactly this password for ``login``, compared by the
        server itself (a filter on ``password``, as scim2-server evaluates it)."""
        query = f"userName eq {json.dumps(login)} and password eq {json.dumps(password)}"
        return bool(self.get("Users", filter=query)["totalResults"] == 1)

    def scim_client(self) -> RequestsScimClient:
        """A scim2-client client of this server, which checks every payload it reads."""
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {self.token}"
        return RequestsScimClient(self.url, session)

    def stop(self) -> None:
        """Stop the process (the users are gone with it). Safe to call twice."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


class RequestsScimClient(BaseSyncSCIMClient):
    """scim2-client over ``requests`` (its own engines want httpx2 or an in-process app)."""

    def __init__(self, base_url: str, session: requests.Session) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")
        self.session = session

    def _stays_under_base_url(self, endpoint: str) -> bool:
        return "://" not in endpoint or endpoint.startswith(self.base_url + "/")

    def request(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        if "://" not in url:
            url = f"{self.base_url}/{url.lstrip('/')}"
        return self.session.request(method, url, timeout=10, **kwargs)


def start(
    directory: Path, *, extension: str | None = DEFAULT_EXTENSION, port: int | None = None
) -> ScimServer:
    """Start ``scim2-server`` on ``port`` (a free one by default) and wait until it answers.

    Its schema and resource-type files are written to ``directory``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    schemas = load_json_resource("default-schemas.json")
    types = load_json_resource("default-resource-types.json")
    if extension is not None:
        schemas.append(extension_schema(extension))
        user = next(t for t in types if t["id"] == "User")
        user["schemaExtensions"].append({"schema": extension, "required": False})
    (directory / "schemas.json").write_text(json.dumps(schemas), encoding="utf-8")
    (directory / "resource-types.json").write_text(json.dumps(types), encoding="utf-8")
    port = port or free_port()
    command = [
        sys.executable,
        "-m",
        "scim2_server.testserver.cli",
        "--schema",
        str(directory / "schemas.json"),
        "--resource-type",
        str(directory / "resource-types.json"),
        "--bearer-token",
        TOKEN,
        "--hostname",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    log = (directory / "server.log").open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603 - fixed argv
    log.close()
    server = ScimServer(f"http://127.0.0.1:{port}/v2", port, process)
    _wait_until_answering(server, directory / "server.log")
    return server


@contextmanager
def running(directory: Path, **kwargs: Any) -> Iterator[ScimServer]:
    """``start``, then stop whatever happens."""
    server = start(directory, **kwargs)
    try:
        yield server
    finally:
        server.stop()


def _wait_until_answering(server: ScimServer, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            output = log.read_text(errors="replace")
            message = f"scim2-server exited with {server.process.returncode}:\n{output}"
            raise RuntimeError(message)
        try:
            requests.get(f"{server.url}/ServiceProviderConfig", timeout=1)
        except requests.RequestException:
            time.sleep(0.05)
            continue
        return
    server.stop()
    message = f"scim2-server did not answer on port {server.port} within {START_TIMEOUT_S:g} s"
    raise RuntimeError(message)
