"""The fault proxy itself, in front of a tiny echo server (no stores, a second or two)."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tests.faults.proxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(4096):
                self.request.sendall(data)
        except ConnectionResetError:
            pass  # reset_peer() and down() tests


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with FaultProxy(server.server_address[1]) as proxy:
            yield proxy
    finally:
        server.shutdown()
        server.server_close()


def _connect(proxy: FaultProxy, timeout: float = 2.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)


def _echo(sock: socket.socket, payload: bytes = b"ping") -> bytes:
    sock.sendall(payload)
    return sock.recv(4096)


def test_a_restored_proxy_is_a_plain_pipe(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        assert _echo(sock) == b"ping"


def test_latency_delays_each_round_trip(proxy: FaultProxy) -> None:
    proxy.latency(200)
    with _connect(proxy) as sock:
        started = time.monotonic()
        assert _echo(sock) == b"ping"
        assert time.monotonic() - started >= 0.2
    proxy.restore()
    with _connect(proxy) as sock:
        started = time.monotonic()
        assert _echo(sock) == b"ping"
        assert time.monotonic() - started < 0.2


def test_down_closes_open_connections_and_refuses_new_ones(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        assert _echo(sock) == b"ping"
        proxy.down()
        with pytest.raises(OSError):  # EOF (b"") or a reset, depending on timing
            if _echo(sock) == b"":
                raise ConnectionResetError
    with pytest.raises(ConnectionRefusedError):
        _connect(proxy)
    proxy.restore()
    with _connect(proxy) as sock:
        assert _echo(sock) == b"ping"


def test_blackhole_accepts_but_never_answers_until_restore(proxy: FaultProxy) -> None:
    with _connect(proxy, timeout=0.5) as before:
        assert _echo(before) == b"ping"
        proxy.blackhole()
        with pytest.raises(TimeoutError):
            _echo(before, b"held")
        with _connect(proxy, timeout=0.5) as during:  # accepted
            with pytest.raises(TimeoutError):
                _echo(during)
            assert proxy.connections == 2
            proxy.restore()
            during.settimeout(2.0)
            assert during.recv(4096) == b"ping"  # held bytes delivered after the partition heals
        before.settimeout(2.0)
        assert before.recv(4096) == b"held"


def test_reset_peer_resets_open_connections_only(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        assert _echo(sock) == b"ping"
        proxy.reset_peer()
        time.sleep(0.1)
        with pytest.raises(ConnectionResetError):
            _echo(sock)
    with _connect(proxy) as sock:
        assert _echo(sock) == b"ping"
