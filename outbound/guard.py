"""The one way out for URLs that come through the API (alert destinations; reliability.md S5).
History imports call the vendor URL the operator gives on the command line, not through here.

A URL must be https, unless its host is on the operator's allow-list (OUTBOUND_ALLOWED_HOSTS,
which is how tests reach a receiver on 127.0.0.1). Its host is resolved once, every address is
checked against the refused ranges (loopback, private, link-local with the cloud metadata address,
CGNAT, multicast, IPv6 ULA and link-local, unspecified, reserved, and the IPv4-mapped, -compatible,
6to4, NAT64 and Teredo forms that carry them), and the socket is opened to one of those checked
addresses: the HTTP library never resolves the name again, so DNS rebinding has no window.
Redirects are never followed. Every socket operation times out after 5 s, the whole call after
15 s, and at most 64 KiB of a response is read.

The resolver and the connector are injected so tests can answer DNS themselves and refuse to open
any socket outside loopback.
"""

from __future__ import annotations

import http.client
import ipaddress
import re
import socket
import ssl
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
Connector = Callable[[str, int, float], socket.socket]

TIMEOUT_S = 5.0
DEADLINE_S = 15.0  # the whole call: a server dripping a byte every 4 s never trips TIMEOUT_S alone
MAX_RESPONSE_BYTES = 64 * 1024

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
# Named so a refusal says why. Anything else that is not globally routable is refused below.
_REFUSED_V4: tuple[tuple[ipaddress.IPv4Network, str], ...] = (
    (_V4("169.254.169.254/32"), "the cloud metadata address"),
    (_V4("0.0.0.0/8"), "an unspecified ('this network') address"),
    (_V4("127.0.0.0/8"), "a loopback address"),
    (_V4("10.0.0.0/8"), "a private address"),
    (_V4("172.16.0.0/12"), "a private address"),
    (_V4("192.168.0.0/16"), "a private address"),
    (_V4("169.254.0.0/16"), "a link-local address"),
    (_V4("100.64.0.0/10"), "a carrier-grade NAT (shared) address"),
    (_V4("224.0.0.0/4"), "a multicast address"),
    (_V4("240.0.0.0/4"), "a reserved address"),
)
_REFUSED_V6: tuple[tuple[ipaddress.IPv6Network, str], ...] = (
    (_V6("::/128"), "an unspecified address"),
    (_V6("::1/128"), "a loopback address"),
    (_V6("fc00::/7"), "an IPv6 unique local address"),
    (_V6("fe80::/10"), "an IPv6 link-local address"),
    (_V6("fec0::/10"), "an IPv6 site-local address"),
    (_V6("ff00::/8"), "a multicast address"),
    (_V6("64:ff9b:1::/48"), "a local-use NAT64 address"),
    (_V6("2001::/32"), "a Teredo tunnel address"),
)
_COMPATIBLE = _V6("::/96")
_NAT64 = _V6("64:ff9b::/96")
# Hosts that inet_aton would read as an address in another spelling (2130706433, 0x7f.1, 017.0.0.1).
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]*|[0-9]+)(\.(0x[0-9a-f]*|[0-9]+))*$")


class Refused(Exception):
    """The guard will not call this URL; `reason` says why, for the 422 or the delivery record."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class OutboundError(Exception):
    """The call was allowed but failed: timeout, connection refused, TLS, malformed response."""


def address_refusal(ip: IPAddress) -> str | None:
    """Why this address may not be called, or None if it is a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded: tuple[str, ipaddress.IPv4Address] | None = None
        if ip.ipv4_mapped is not None:
            embedded = ("IPv4-mapped", ip.ipv4_mapped)
        elif ip in _COMPATIBLE and int(ip) > 1:
            embedded = ("IPv4-compatible", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        elif ip.sixtofour is not None:
            embedded = ("6to4", ip.sixtofour)
        elif ip in _NAT64:
            embedded = ("NAT64", ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        if embedded is not None:
            form, v4 = embedded
            inner = address_refusal(v4)
            return f"{form} form of {inner}" if inner else None
        for v6net, reason in _REFUSED_V6:
            if ip in v6net:
                return reason
    else:
        for v4net, reason in _REFUSED_V4:
            if ip in v4net:
                return reason
    if not ip.is_global:
        return "not a globally routable address"
    return None


@dataclass(frozen=True)
class Target:
    """A URL the guard accepted: where to connect and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str
    is_allowed_host: bool


def _host_allowed(host: str, port: int, allowed_hosts: Iterable[str]) -> bool:
    return any(entry in (host, f"{host}:{port}") for entry in allowed_hosts)


def check_url(url: str, allowed_hosts: Iterable[str] = ()) -> Target:
    """Parse and check a URL without touching the network; raises Refused with the reason."""
    if len(url) > 2048:
        raise Refused("the URL is longer than 2048 characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"the URL is malformed: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise Refused("only https URLs are allowed")
    if parts.username is not None or parts.password is not None:
        raise Refused("URLs with credentials (user@host) are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise Refused("the URL has no host")
    if any(c.isspace() or ord(c) < 0x21 for c in url):
        raise Refused("the URL contains whitespace or control characters")
    port = port or (443 if scheme == "https" else 80)
    allowed = _host_allowed(host, port, allowed_hosts)
    if scheme == "http" and not allowed:
        raise Refused("only https URLs are allowed")
    literal = _literal_address(host)
    if literal is None and _NUMERIC_HOST.match(host):
        raise Refused(f"host {host!r} is an address in a non-standard spelling")
    if literal is not None and not allowed:
        reason = address_refusal(literal)
        if reason:
            raise Refused(f"{literal} is {reason}")
    if literal is None:
        try:
            host.encode("idna")
        except UnicodeError:
            raise Refused(f"host {host!r} is not a valid domain name") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=scheme, host=host, port=port, path=path, is_allowed_host=allowed)


def _literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def system_resolver(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise OutboundError(f"{host} does not resolve: {exc.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def open_socket(address: str, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((address, port), timeout=timeout)


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    is_truncated: bool

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class Outbound:
    """The policy and the plumbing of outbound HTTP calls."""

    allowed_hosts: frozenset[str] = frozenset()
    # None: the module's system_resolver / open_socket, looked up at call time (tests replace them).
    resolver: Resolver | None = None
    connector: Connector | None = None
    timeout_s: float = TIMEOUT_S
    deadline_s: float = DEADLINE_S
    max_response_bytes: int = MAX_RESPONSE_BYTES

    def checked_addresses(self, target: Target) -> list[str]:
        """Resolve once and check every address; a host with any refused address is refused."""
        literal = _literal_address(target.host)
        resolve = self.resolver or system_resolver
        addresses = [str(literal)] if literal is not None else resolve(target.host, target.port)
        if not addresses:
            raise OutboundError(f"{target.host} has no address")
        if not target.is_allowed_host:
            for address in addresses:
                reason = address_refusal(ipaddress.ip_address(address))
                if reason:
                    raise Refused(f"{target.host} resolves to {address}, {reason}")
        return addresses

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> Response:
        """POST `body` to `url` through the guard; no redirect is followed (a 3xx is the answer)."""
        target = check_url(url, self.allowed_hosts)
        addresses = self.checked_addresses(target)
        last: OSError | None = None
        for address in addresses:
            try:
                return self._post_to(target, address, body, headers)
            except ConnectionError as exc:  # refused/reset on this address: try the next checked one
                last = exc
        raise OutboundError(f"could not connect to {target.host}:{target.port}: {last}")

    def _post_to(self, target: Target, address: str, body: bytes, headers: Mapping[str, str]) -> Response:
        conn: http.client.HTTPConnection
        if target.scheme == "https":
            conn = http.client.HTTPSConnection(
                target.host, target.port, timeout=self.timeout_s, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(target.host, target.port, timeout=self.timeout_s)
        # http.client opens its socket through this hook: the checked address, never the name.
        # (TLS still verifies the certificate against the host name.)
        connector = self.connector or open_socket
        opened: list[socket.socket] = []

        def create_connection(_addr: object, timeout: float, _src: object = None) -> socket.socket:
            opened.append(connector(address, target.port, timeout))
            return opened[-1]

        expired = threading.Event()

        def cut() -> None:
            expired.set()
            for sock in opened:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

        conn._create_connection = create_connection  # type: ignore[attr-defined]
        timer = threading.Timer(self.deadline_s, cut)
        timer.daemon = True
        timer.start()
        try:
            conn.request("POST", target.path, body=body, headers={"Content-Length": str(len(body)), **headers})
            resp = conn.getresponse()
            data = resp.read(self.max_response_bytes + 1)
            if expired.is_set():  # cut mid-body: what was read is not the answer
                raise OutboundError(f"no complete answer within {self.deadline_s:g} s")
            return Response(
                status=resp.status,
                body=data[: self.max_response_bytes],
                is_truncated=len(data) > self.max_response_bytes,
            )
        except ConnectionError:
            if expired.is_set():
                raise OutboundError(f"no complete answer within {self.deadline_s:g} s") from None
            raise
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set():
                raise OutboundError(f"no complete answer within {self.deadline_s:g} s") from None
            raise OutboundError(f"{type(exc).__name__}: {exc}") from None
        finally:
            timer.cancel()
            conn.close()
