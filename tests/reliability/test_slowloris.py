"""Slowloris (issue 19): connections that never finish their headers were kept forever, and
~20,000 of them took the server's file limit and /healthz with them. The server's protocol
(studio.rest.connections) closes them after the header timeout and closes connections beyond the
cap at once, while /healthz keeps answering within 1 s. Here on a real uvicorn in this process
with a short timeout; test_hostile_app.py repeats it against `python app.py`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import urllib.request
from typing import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from studio.rest.connections import bounded_protocol
from tests.app_process import free_port

HEADER_TIMEOUT_S = 0.5
HEALTH_S = 1.0


@contextlib.contextmanager
def serve(max_connections: int = 1000, header_timeout_s: float = HEADER_TIMEOUT_S) -> Iterator[str]:
    app = FastAPI()

    @app.get("/healthz")
    def healthz():
        return {"ok": True}

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error", timeout_keep_alive=5,
                            http=bounded_protocol(header_timeout_s, max_connections), lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        server.should_exit = True
        thread.join(10)


def partial_sockets(url: str, count: int) -> list[socket.socket]:
    port = int(url.rsplit(":", 1)[1].strip("/"))
    sockets = []
    for _ in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # never finished
        sockets.append(sock)
    return sockets


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def health_seconds(url: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(url + "healthz", timeout=HEALTH_S) as response:
        assert response.status == 200
    return time.perf_counter() - started


def test_unfinished_headers_are_closed_after_the_timeout_and_health_answers(figures):
    with serve() as url:
        sockets = partial_sockets(url, 200)
        try:
            assert health_seconds(url) < HEALTH_S
            deadline = time.monotonic() + HEADER_TIMEOUT_S + 3.0  # one deadline for all: fails fast when kept open
            closed = [closed_by_server(sock, max(0.05, deadline - time.monotonic())) for sock in sockets]
            assert all(closed), f"{closed.count(False)} of {len(closed)} still open"
            assert health_seconds(url) < HEALTH_S
        finally:
            for sock in sockets:
                sock.close()
    figures.put("bad_inputs", "slowloris x 200 (in process)", "closed after the header timeout")


def test_a_finished_request_on_a_slow_start_is_not_cut():
    with serve() as url:
        [sock] = partial_sockets(url, 1)
        time.sleep(HEADER_TIMEOUT_S / 3)
        sock.sendall(b"1\r\n\r\n")  # the headers end in time
        sock.settimeout(5)
        assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        sock.close()


def test_an_idle_kept_alive_connection_is_left_to_the_keep_alive_timeout():
    """Between requests a pooled connection sits idle; the header timer must not close it under a client
    that is about to reuse it (that race reset one request of the 200-submission flood). A slow request
    started later on the same connection still gets the header timeout."""
    with serve() as url:
        port = int(url.rsplit(":", 1)[1].strip("/"))
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        try:
            for _ in range(2):  # kept alive across twice the header timeout, then reused
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert sock.recv(4096).startswith(b"HTTP/1.1 200")
                assert not closed_by_server(sock, HEADER_TIMEOUT_S * 2.5)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")  # a slowloris on a kept-alive connection
            assert closed_by_server(sock, HEADER_TIMEOUT_S + 3.0)
        finally:
            sock.close()


def test_connections_beyond_the_cap_are_closed_at_once():
    with serve(max_connections=20, header_timeout_s=60) as url:
        sockets = partial_sockets(url, 30)
        try:
            time.sleep(0.2)
            closed = [closed_by_server(sock, 0.05) for sock in sockets]
            assert closed.count(True) >= 10 and not any(closed[:20])
            for sock in sockets[:20]:
                sock.close()
            time.sleep(0.2)
            assert health_seconds(url) < HEALTH_S  # the cap frees up as connections go
        finally:
            for sock in sockets:
                sock.close()


@pytest.mark.parametrize("env,needle", [({"F5_HEADER_TIMEOUT_S": "0"}, "from 0.1 to 3600"),
                                        ({"F5_MAX_CONNECTIONS": "x"}, "not a whole number")])
def test_connection_settings_are_checked(env, needle):
    from studio.settings import SettingsError, connection_limits

    with pytest.raises(SettingsError, match=needle):
        connection_limits(env)
    assert connection_limits({}) == (10.0, 1000)
