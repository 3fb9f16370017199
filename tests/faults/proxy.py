"""A small TCP fault proxy for the network-fault tests (reliability.md L3, harness in §8).

It listens on a free 127.0.0.1 port and forwards every connection to a Postgres or Redis port, so
an app whose DSN/URL names the proxy port can be given, at any moment:

- `latency(ms)`: every chunk from the store to the app is delivered `ms` later (Toxiproxy's
  latency toxic on its default downstream stream): each request/response round trip costs `ms`
  more; order is kept and the delays of back-to-back chunks do not add up;
- `down()`: open connections are closed and new ones are refused (the listener is closed);
- `blackhole()`: connections are accepted, open ones stay open, and nothing is delivered either
  way: a network partition. On `restore()` the held bytes flow again, as TCP retransmission
  would deliver them after a partition heals;
- `reset_peer()`: every open connection is reset (RST to both sides); new ones work as before;
- `restore()`: back to a plain pipe.

The proxy runs its own event loop in a daemon thread, so sync pytest code and async code on any
other loop drive it the same way; the app under test runs in other processes and only sees a
TCP port.

    with FaultProxy(upstream_port) as proxy:
        url = f"postgresql://postgres@127.0.0.1:{proxy.port}/tickets"
        proxy.blackhole()
        ...
        proxy.restore()
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

T = TypeVar("T")
Mode = Literal["up", "down", "blackhole"]
CHUNK = 64 * 1024


@dataclass(eq=False)
class _Link:
    """One client connection and its upstream connection, with a pump task per direction."""

    client: asyncio.StreamWriter
    upstream: asyncio.StreamWriter
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def close(self, *, reset: bool = False) -> None:
        for writer in (self.client, self.upstream):
            if reset:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    # Linger on with a zero timeout: close() sends RST instead of FIN.
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                writer.transport.abort()
            else:
                writer.close()
        for task in self.tasks:
            task.cancel()


class FaultProxy:
    """A loopback TCP proxy in front of `upstream_port`, on its own event loop thread."""

    def __init__(self, upstream_port: int, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.port = port  # 0: a free port, known once started
        self.mode: Mode = "up"
        self.latency_s = 0.0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"fault-proxy-{upstream_port}", daemon=True)
        self._server: asyncio.Server | None = None
        self._links: set[_Link] = set()
        self._open: asyncio.Event | None = None  # set while bytes may flow (not blackholed)

    # --- driven from any thread ---------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._start())
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self._loop.close()

    def latency(self, ms: float) -> None:
        """Delay every chunk from the store by `ms`, so each round trip by `ms` (0 turns it off)."""
        self.latency_s = ms / 1000

    def down(self) -> None:
        """Close every open connection (FIN) and refuse new ones."""
        self._call(self._down())

    def blackhole(self) -> None:
        """Accept connections and keep them open, but deliver nothing either way until restore()."""
        self._call(self._blackhole())

    def reset_peer(self) -> None:
        """Reset (RST) every open connection, to both peers; new connections are unaffected."""
        self._call(self._reset_peer())

    def restore(self) -> None:
        """A plain pipe again: listening, no latency, held bytes delivered."""
        self._call(self._restore())

    @property
    def connections(self) -> int:
        return len(self._links)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    # --- on the proxy's loop ------------------------------------------------------------------

    async def _start(self) -> None:
        self._open = asyncio.Event()
        self._open.set()
        await self._listen()

    async def _listen(self) -> None:
        # reuse_address: after down() the same port must be bound again at once.
        self._server = await asyncio.start_server(self._accept, self.host, self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _close_listener(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _stop(self) -> None:
        await self._close_listener()
        tasks = [task for link in self._links for task in link.tasks]
        await self._reset_peer()
        if tasks:  # let the cancelled pumps finish before the loop stops
            await asyncio.wait(tasks, timeout=2)

    async def _down(self) -> None:
        self.mode = "down"
        await self._close_listener()
        for link in list(self._links):
            link.close()
        self._links.clear()

    async def _blackhole(self) -> None:
        self.mode = "blackhole"
        assert self._open is not None
        self._open.clear()
        if self._server is None:
            await self._listen()

    async def _reset_peer(self) -> None:
        for link in list(self._links):
            link.close(reset=True)
        self._links.clear()

    async def _restore(self) -> None:
        self.mode = "up"
        self.latency_s = 0.0
        if self._server is None:
            await self._listen()
        assert self._open is not None
        self._open.set()

    async def _accept(self, client_reader: asyncio.StreamReader, client: asyncio.StreamWriter) -> None:
        if self.mode == "down":  # accepted just before the listener closed
            client.transport.abort()
            return
        try:
            upstream_reader, upstream = await asyncio.open_connection(self.host, self.upstream_port)
        except OSError:
            client.transport.abort()  # the store itself is down: the client sees a reset
            return
        link = _Link(client, upstream)
        self._links.add(link)
        link.tasks = [
            asyncio.create_task(self._pump(client_reader, upstream, link, delayed=False)),
            asyncio.create_task(self._pump(upstream_reader, client, link, delayed=True)),
        ]

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, link: _Link, *, delayed: bool
    ) -> None:
        """Read in one task, deliver in another, so latency delays each chunk without adding up."""
        chunks: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        deliver = asyncio.create_task(self._deliver(chunks, writer, link))
        try:
            while True:
                try:
                    data = await reader.read(CHUNK)
                except OSError:
                    data = b""
                chunks.put_nowait((time.monotonic() + (self.latency_s if delayed else 0.0), data))
                if not data:
                    break
            await deliver
        finally:
            deliver.cancel()

    async def _deliver(
        self, chunks: asyncio.Queue[tuple[float, bytes]], writer: asyncio.StreamWriter, link: _Link
    ) -> None:
        assert self._open is not None
        try:
            while True:
                due, data = await chunks.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                await self._open.wait()  # blackholed: hold the bytes (and the EOF) until restore()
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        # One side closed (or failed): close both, as a TCP proxy does.
        if link in self._links:
            self._links.discard(link)
            link.close()
