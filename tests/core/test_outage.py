"""A database outage is a 503 problem with Retry-After, not a 500, and the HTTP connection stays usable."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.core.config import Settings
from app.main import create_app
from tests.conftest import TEST_SECRET, _free_port


def unreachable_url(database_url: str, tmp_path: Path) -> str:
    """The same kind of database, somewhere it cannot be reached: a port nobody listens on, a missing folder."""
    if database_url.startswith("postgresql"):
        return make_url(database_url).set(host="127.0.0.1", port=_free_port()).render_as_string(hide_password=False)
    return f"sqlite:///{tmp_path / 'no-such-folder' / 'rekisteri.db'}"


def assert_503(r: httpx.Response) -> None:
    """The outage answer."""
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert int(r.headers["retry-after"]) > 0
    assert r.json()["type"] == "urn:rekisteri:problem:service-unavailable"


@pytest.fixture
async def outage_app(database_url, tmp_path) -> AsyncIterator:
    """The app pointed at a database that refuses connections."""
    settings = Settings(database_url=unreachable_url(database_url, tmp_path), jwt_secret=TEST_SECRET,
                        jwt_secret_file=tmp_path / "unused", worker_in_process=False)
    application = create_app(settings)
    yield application
    await application.state.db.engine.dispose()


class TestRefusedDatabase:
    async def test_every_kind_of_request_is_503(self, outage_app, controller):
        transport = httpx.ASGITransport(app=outage_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://rekisteri.test") as http:
            assert_503(await http.get("/v1/registrants", headers=controller.headers))
            assert_503(await http.post("/v1/auth/token", data={"grant_type": "password",
                                                                "username": "a@example.com", "password": "x"}))
            assert_503(await http.post("/v1/registrants", headers=controller.headers, json={
                "kind": "person", "given_name": "A", "family_name": "B"}))
            assert (await http.get("/healthz")).status_code == 200

    def test_the_keep_alive_connection_survives(self, database_url, tmp_path):
        """Two requests on one TCP connection to `rekisteri serve`: both 503, the socket still open."""
        port = _free_port()
        env = {**os.environ, "REKISTERI_DATABASE_URL": unreachable_url(database_url, tmp_path),
               "REKISTERI_JWT_SECRET": TEST_SECRET, "REKISTERI_WORKER_IN_PROCESS": "false"}
        rekisteri = Path(sys.executable).with_name("rekisteri")
        proc = subprocess.Popen([str(rekisteri), "serve", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(port)
            body = b"grant_type=password&username=a@example.com&password=xy"
            request = (b"POST /v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                       b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                for _ in range(2):
                    sock.sendall(request)
                    head = _read_response(sock)
                    assert head.startswith(b"HTTP/1.1 503"), head
                    assert b"retry-after: 5" in head.lower()
                    assert b"connection: close" not in head.lower()
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def _read_response(sock: socket.socket) -> bytes:
    """One HTTP/1.1 response (head and a Content-Length body); the head."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
    while len(body) < length:
        chunk = sock.recv(4096)
        assert chunk, "the server closed the connection"
        body += chunk
    return head


class Proxy:
    """A TCP proxy to PostgreSQL that the test can cut and restore: a real outage of only this test's path."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = _free_port()
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def cut(self) -> None:
        """Stop listening and drop every open connection, as a crashed server or a broken network would."""
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        for writer in list(self.pipes):
            writer.transport.abort()
        self.pipes.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self.pipes.update({writer, up_writer})
        await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.transport.abort()
        self.pipes.discard(writer)


@pytest.fixture
def postgres_only(is_postgres) -> Iterator[None]:
    if not is_postgres:
        pytest.skip("the proxy cuts a TCP connection; SQLite has none (the refused-database tests cover it)")
    yield


class TestOutageWhileRunning:
    async def test_503_during_the_outage_and_served_again_after(self, postgres_only, database_url, controller,
                                                                tmp_path):
        url = make_url(database_url)
        proxy = Proxy((url.host or "127.0.0.1", url.port or 5432))
        await proxy.start()
        settings = Settings(database_url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(
            hide_password=False), jwt_secret=TEST_SECRET, jwt_secret_file=tmp_path / "unused",
            worker_in_process=False)
        application = create_app(settings)
        transport = httpx.ASGITransport(app=application)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://rekisteri.test") as http:
                assert (await http.get("/v1/registrants", headers=controller.headers)).status_code == 200
                await proxy.cut()
                for _ in range(2):  # the pooled connection that broke, then a new one that is refused
                    assert_503(await http.get("/v1/registrants", headers=controller.headers))
                await proxy.start()
                r = await http.get("/v1/registrants", headers=controller.headers)
                if r.status_code == 503:  # at most one more pooled connection from before the cut
                    r = await http.get("/v1/registrants", headers=controller.headers)
                assert r.status_code == 200, r.text
        finally:
            await application.state.db.engine.dispose()
            await proxy.cut()
