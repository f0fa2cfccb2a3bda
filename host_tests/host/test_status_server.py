"""The status page server (stringcare_host/web.py) under slow and half-open clients:
bounded connections, a deadline per connection, localhost by default (issue 12)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from stringcare_host import web
from stringcare_host.errors import UserError


@pytest.fixture
def server() -> Iterator[web.StatusServer]:
    board = web.Board()
    board.publish({"site": "bench", "strings": []})
    s = web.serve(board, "127.0.0.1", 0, max_connections=32, timeout_s=2.0)
    yield s
    s.shutdown()


def get(address: tuple[str, int], path: str = "/api/status", timeout_s: float = 5.0) -> bytes:
    with socket.create_connection(address, timeout=timeout_s) as c:
        c.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
        data = b""
        while True:
            chunk = c.recv(65536)
            if not chunk:
                return data
            data += chunk


def wait_for(cond, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def test_it_answers_with_the_latest_snapshot(server: web.StatusServer) -> None:
    reply = get(server.server_address)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b'{"site": "bench", "strings": []}')
    assert b"<title>StringCare" in get(server.server_address, "/")
    assert get(server.server_address, "/nothing").startswith(b"HTTP/1.1 404")


def test_400_half_open_connections_do_not_starve_it(server: web.StatusServer) -> None:
    idle = []
    try:
        for i in range(400):
            c = socket.create_connection(server.server_address, timeout=5)
            if i % 2:
                c.sendall(b"GET /api/status HTTP/1.1\r\n")  # a request never finished
            idle.append(c)
        assert wait_for(lambda: server.evicted >= 400 - 32, 10), server.evicted
        assert server.open_connections() <= 32
        t0 = time.monotonic()
        reply = get(server.server_address, timeout_s=5)
        assert reply.startswith(b"HTTP/1.1 200 OK"), reply[:80]
        assert time.monotonic() - t0 < 2.0
    finally:
        for c in idle:
            c.close()


def test_a_silent_connection_is_closed_at_its_deadline(server: web.StatusServer) -> None:
    with socket.create_connection(server.server_address, timeout=10) as c:
        c.sendall(b"GET / HTTP/1.1\r\n")
        t0 = time.monotonic()
        assert c.recv(100) == b""  # closed by the server, no answer
        assert 1.5 <= time.monotonic() - t0 < 6, "timeout_s is 2"
    assert server.timed_out >= 1


def test_a_huge_request_is_refused(server: web.StatusServer) -> None:
    with socket.create_connection(server.server_address, timeout=5) as c:
        c.sendall(b"GET / HTTP/1.1\r\nX: " + b"a" * 10000)
        assert c.recv(100).startswith(b"HTTP/1.1 431")


def test_only_get_and_head() -> None:
    board = web.Board()
    s = web.serve(board, "127.0.0.1", 0)
    try:
        with socket.create_connection(s.server_address, timeout=5) as c:
            c.sendall(b"POST /api/status HTTP/1.1\r\n\r\n")
            assert c.recv(100).startswith(b"HTTP/1.1 405")
        with socket.create_connection(s.server_address, timeout=5) as c:
            c.sendall(b"HEAD /api/status HTTP/1.1\r\n\r\n")
            reply = c.recv(1000)
            assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"\r\n\r\n")
    finally:
        s.shutdown()


def test_it_binds_to_localhost_unless_told_and_warns_when_told() -> None:
    assert web.parse_hostport("8080") == ("127.0.0.1", 8080)
    assert web.parse_hostport("0") == ("127.0.0.1", 0)
    assert web.parse_hostport("192.168.1.5:80") == ("192.168.1.5", 80)
    for bad in ("", "x", "host:99999", ":80"):
        with pytest.raises(UserError, match="give PORT or HOST:PORT"):
            web.parse_hostport(bad)
    assert web.exposed_warning("127.0.0.1") is None
    warning = web.exposed_warning("0.0.0.0")
    assert warning is not None and "no authentication" in warning
