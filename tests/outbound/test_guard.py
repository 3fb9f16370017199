"""The SSRF guard (reliability.md S5): its decision on every address form, and what it does at
connect time. The `net` fixture (tests/conftest.py) refuses any socket outside loopback."""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterator

import pytest

from outbound.guard import Outbound, OutboundError, Refused, address_refusal, check_url
from tests.outbound.loopback import LoopbackNet, Receiver

REFUSED = [
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "metadata"),
    ("169.254.10.1", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("224.0.0.251", "multicast"),
    ("239.255.255.250", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("255.255.255.255", "reserved"),
    ("240.0.0.1", "reserved"),
    ("192.0.2.10", "not a globally routable"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("fd00::1", "unique local"),
    ("fc12:3456::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("2001:db8::1", "not a globally routable"),
    ("::ffff:127.0.0.1", "IPv4-mapped form of a loopback"),
    ("::ffff:10.0.0.1", "IPv4-mapped form of a private"),
    ("::ffff:169.254.169.254", "IPv4-mapped form of the cloud metadata"),
    ("::ffff:100.64.1.1", "IPv4-mapped form of a carrier-grade NAT"),
    ("::ffff:224.0.0.1", "IPv4-mapped form of a multicast"),
    ("::127.0.0.1", "IPv4-compatible form of a loopback"),
    ("::10.0.0.1", "IPv4-compatible form of a private"),
    ("::169.254.169.254", "IPv4-compatible form of the cloud metadata"),
    ("2002:7f00:1::", "6to4 form of a loopback"),
    ("2002:a9fe:a9fe::1", "6to4 form of the cloud metadata"),
    ("2002:c0a8:0101::1", "6to4 form of a private"),
    ("64:ff9b::7f00:1", "NAT64 form of a loopback"),
    ("64:ff9b::a00:1", "NAT64 form of a private"),
    ("64:ff9b::a9fe:a9fe", "NAT64 form of the cloud metadata"),
    ("64:ff9b:1::a00:1", "local-use NAT64"),
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo"),
]
PUBLIC = ["93.184.216.34", "1.1.1.1", "2606:4700:4700::1111", "::ffff:93.184.216.34", "64:ff9b::5db8:d822"]


@pytest.mark.parametrize(("address", "reason"), REFUSED)
def test_refused_address_forms_say_why(address: str, reason: str) -> None:
    refusal = address_refusal(ipaddress.ip_address(address))
    assert refusal is not None and reason in refusal


@pytest.mark.parametrize("address", PUBLIC)
def test_public_unicast_addresses_pass(address: str) -> None:
    assert address_refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "only https"),
        ("ftp://hooks.example.com/x", "only https"),
        ("file:///etc/passwd", "only https"),
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https:///nohost", "no host"),
        ("https://hooks.example.com:99999/", "malformed"),
        ("https://169.254.169.254/latest/meta-data", "metadata"),
        ("https://[::ffff:127.0.0.1]/", "IPv4-mapped"),
        ("https://10.0.0.1/", "private"),
        ("http://127.0.0.1:5432/", "only https"),
        ("https://2130706433/", "non-standard spelling"),
        ("https://0x7f.1/", "non-standard spelling"),
        ("https://017.0.0.1/", "non-standard spelling"),
        ("https://hooks.example.com/a b", "whitespace"),
    ],
)
def test_urls_refused_before_any_lookup(url: str, reason: str, net: LoopbackNet) -> None:
    with pytest.raises(Refused, match=reason):
        check_url(url)
    with pytest.raises(Refused):
        Outbound().post(url, b"{}", {})
    assert net.lookups == [] and net.opened == []


def test_allow_list_admits_http_and_a_private_host() -> None:
    target = check_url("http://127.0.0.1:8025/hook?x=1", ["127.0.0.1"])
    assert (target.host, target.port, target.path, target.is_allowed_host) == ("127.0.0.1", 8025, "/hook?x=1", True)
    assert check_url("http://127.0.0.1:8025/", ["127.0.0.1:8025"]).is_allowed_host
    with pytest.raises(Refused):
        check_url("http://127.0.0.1:8026/", ["127.0.0.1:8025"])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def sentinel() -> Iterator[Receiver]:
    """A listener on loopback that must never be reached."""
    r = Receiver().start()
    yield r
    r.stop()


def test_a_name_resolving_to_a_private_address_is_refused_without_a_socket(net: LoopbackNet) -> None:
    net.answer("intranet.test", ["10.0.0.1"])
    with pytest.raises(Refused, match="resolves to 10.0.0.1, a private address"):
        Outbound().post("https://intranet.test/hook", b"{}", {})
    assert net.opened == [] and net.refused == []


def test_every_resolved_address_is_checked(net: LoopbackNet, sentinel: Receiver) -> None:
    net.answer("mixed.test", ["93.184.216.34", "127.0.0.1"])
    with pytest.raises(Refused, match="127.0.0.1, a loopback"):
        Outbound().post(f"https://mixed.test:{sentinel.port}/", b"{}", {})
    assert net.opened == [] and sentinel.received == []


def test_dns_rebinding_has_no_window(net: LoopbackNet, sentinel: Receiver) -> None:
    """The name answers public at the check and loopback afterwards: the socket goes to the checked
    address (which the test connector refuses), never to a second lookup's answer."""
    net.answer("rebind.test", ["93.184.216.34"], ["127.0.0.1"])
    with pytest.raises(OutboundError):
        Outbound().post(f"https://rebind.test:{sentinel.port}/", b"{}", {})
    assert net.lookups == ["rebind.test"]
    assert net.take_refused() == ["93.184.216.34"]
    assert sentinel.received == []


def test_allowed_name_connects_to_the_checked_address_and_keeps_its_host_header(
    net: LoopbackNet, receiver: Receiver
) -> None:
    net.answer("hooks.test", ["127.0.0.1"])
    guard = Outbound(allowed_hosts=frozenset({"hooks.test"}))
    response = guard.post(f"http://hooks.test:{receiver.port}/in", b'{"a": 1}', {"Content-Type": "application/json"})
    assert response.is_success and response.body == b"ok"
    assert net.opened == [("127.0.0.1", receiver.port)]
    assert receiver.received[0].headers["host"] == f"hooks.test:{receiver.port}"
    assert receiver.received[0].json() == {"a": 1}


def test_redirects_are_not_followed(receiver: Receiver, sentinel: Receiver) -> None:
    receiver.status = 302
    receiver.reply_headers = {"Location": sentinel.url("/")}
    response = Outbound(allowed_hosts=frozenset({"127.0.0.1"})).post(receiver.url(), b"{}", {})
    assert response.status == 302 and not response.is_success
    assert len(receiver.received) == 1 and sentinel.received == []


def test_response_is_capped_at_64_kib(receiver: Receiver) -> None:
    receiver.reply = b"x" * (200 * 1024)
    response = Outbound(allowed_hosts=frozenset({"127.0.0.1"})).post(receiver.url(), b"{}", {})
    assert len(response.body) == 64 * 1024 and response.is_truncated


def test_a_silent_server_times_out() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    try:
        guard = Outbound(allowed_hosts=frozenset({"127.0.0.1"}), timeout_s=0.3)
        with pytest.raises(OutboundError, match="timed out"):
            guard.post(f"http://127.0.0.1:{listener.getsockname()[1]}/", b"{}", {})
    finally:
        thread.join(timeout=5)
        for s in accepted:
            s.close()
        listener.close()


def test_the_default_connector_is_the_tests_loopback_only_one(net: LoopbackNet) -> None:
    """The guard's own plumbing is replaced in every test: a broken guard still sends nothing out."""
    net.answer("public.test", ["93.184.216.34"])
    with pytest.raises(OutboundError):
        Outbound().post("https://public.test/", b"{}", {})
    assert net.take_refused() == ["93.184.216.34"]


def test_a_server_dripping_its_answer_is_cut_at_the_deadline() -> None:
    """Each byte comes well inside the socket timeout; the whole answer never does."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def drip() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 300:  # bounded: ~30 s at most
                if stop.is_set():
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return
                stop.wait(0.1)

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        guard = Outbound(allowed_hosts=frozenset({"127.0.0.1"}), timeout_s=1.0, deadline_s=0.5)
        with pytest.raises(OutboundError, match="no complete answer within 0.5 s"):
            guard.post(f"http://127.0.0.1:{listener.getsockname()[1]}/", b"{}", {})
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()
