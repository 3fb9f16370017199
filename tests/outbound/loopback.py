"""Test plumbing for outbound calls: a DNS answered from a dict, a connector that opens sockets to
loopback only, a real HTTP receiver and a real SMTP server (aiosmtpd) on 127.0.0.1.

tests/conftest.py installs LoopbackNet for every test, in place of the guard's system resolver and
socket opener, so no test can send a packet (not even a DNS query) anywhere but 127.0.0.0/8 or ::1,
whatever the guard decides. A refused attempt is recorded and fails the test at teardown unless the
test took it (`net.take_refused()`).
"""

from __future__ import annotations

import email
import email.message
import ipaddress
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller

from embedded.stores import free_port
from outbound.guard import OutboundError


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv4Address):
        return ip in ipaddress.IPv4Network("127.0.0.0/8")
    return ip == ipaddress.IPv6Address("::1")


class LoopbackNet:
    def __init__(self) -> None:
        self.dns: dict[str, list[list[str]]] = {"localhost": [["127.0.0.1"]]}
        self.lookups: list[str] = []
        self.opened: list[tuple[str, int]] = []
        self.refused: list[str] = []

    def answer(self, host: str, *answers: list[str]) -> None:
        """Successive lookups of `host` get successive answers (the last one repeats)."""
        self.dns[host] = list(answers)

    def resolve(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        answers = self.dns.get(host)
        if not answers:
            raise OutboundError(f"{host} does not resolve (test DNS)")
        return answers.pop(0) if len(answers) > 1 else answers[0]

    def connect(self, address: str, port: int, timeout: float) -> socket.socket:
        if not is_loopback(address):
            self.refused.append(address)
            raise ConnectionRefusedError(f"test connector: no packet leaves loopback (asked for {address})")
        self.opened.append((address, port))
        return socket.create_connection((address, port), timeout=timeout)

    def take_refused(self) -> list[str]:
        taken, self.refused = self.refused, []
        return taken


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 that records each POST and answers with `status`/`reply`."""

    status: int = 200
    reply: bytes = b"ok"
    reply_headers: dict[str, str] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.server_address[1]

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                receiver.received.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(receiver.status)
                for name, value in receiver.reply_headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(receiver.reply)))
                self.end_headers()
                self.wfile.write(receiver.reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class Mailbox:
    """What the SMTP server received."""

    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.content))
        return "250 OK"


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on 127.0.0.1 (plain, no TLS); yields its mailbox and port."""
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, port
    finally:
        controller.stop()
