"""Socket.IO clients of the scenario checks and the suites: python-socketio's client through
nginx, TLS verified against the lab's CA, each knowing the worker that holds its session (the
``info`` ack's served_by).

Its asyncio client (aiohttp), run on one loop in a thread of its own, behind blocking calls. Not
its threaded client: that one reads its websocket in one thread and writes it from another, and
one TLS connection used by two threads at once breaks now and then (measured here through
nginx: 7 of 100 websocket clients lost their connection, the same with websocket-client alone
on /ws/echo: OpenSSL's objects are not to be shared by threads).
"""

from __future__ import annotations

import asyncio
import queue
import threading
import time
from collections.abc import Callable, Coroutine, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import socketio

from .endpoints import Endpoint

TIMEOUT_S = 10
# Each transport as the client asks for it: polling only, websocket only, or the default
# (polling first, then the upgrade to a websocket).
TRANSPORTS = {"polling": ["polling"], "websocket": ["websocket"], "default": ["polling", "websocket"]}
# Clients to open at most while looking for every worker: nginx hashes each new session's cookie
# to one worker's port, so with W workers the chance that 40 miss one is W * (1 - 1/W)**40
# (6 workers, compose's 3 replicas x 2: 0.04 %).
MAX_CLIENTS = 40


T = TypeVar("T")
_loop = asyncio.new_event_loop()
threading.Thread(target=_loop.run_forever, name="socketio-clients", daemon=True).start()


def _run(coro: Coroutine[Any, Any, T], timeout: float = TIMEOUT_S * 2) -> T:
    return asyncio.run_coroutine_threadsafe(coro, _loop).result(timeout)


@dataclass
class SioClient:
    sio: socketio.AsyncClient
    transport: str  # the kind asked for (TRANSPORTS)
    worker: tuple[str, int] = ("", 0)  # (host, pid) holding the session
    chat: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    broker: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    disconnects: queue.Queue[str] = field(default_factory=queue.Queue)
    connects: queue.Queue[str] = field(default_factory=queue.Queue)  # a sid per (re)connection
    # Each connect and disconnect as it came: (time.monotonic(), "connect" or "disconnect").
    history: list[tuple[float, str]] = field(default_factory=list)

    def call(self, event: str, data: Any = None) -> Any:
        return _run(self.sio.call(event, data, timeout=TIMEOUT_S))

    def emit(self, event: str, data: Any = None) -> None:
        _run(self.sio.emit(event, data))

    def current_transport(self) -> str:
        return str(self.sio.eio.current_transport)

    @property
    def connected(self) -> bool:
        return bool(self.sio.connected)

    @property
    def sid(self) -> str | None:
        return self.sio.get_sid()

    def on_connect(self) -> None:
        self.history.append((time.monotonic(), "connect"))
        self.connects.put(self.sio.get_sid())

    def on_disconnect(self, reason: str = "") -> None:
        self.history.append((time.monotonic(), "disconnect"))
        self.disconnects.put(str(reason))

    def reconnect_seconds(self) -> list[float]:
        """How long each disconnect lasted: from it to the next connect (the client's own backoff
        included); a disconnect not followed by a connect is left out."""
        gaps, down = [], None
        for at, kind in self.history:
            if kind == "disconnect" and down is None:
                down = at
            elif kind == "connect" and down is not None:
                gaps.append(at - down)
                down = None
        return gaps

    def info(self) -> dict[str, Any]:
        info: dict[str, Any] = self.call("info")
        return info

    def close(self) -> None:
        _run(self._close())

    async def _close(self) -> None:
        # shutdown, not disconnect: it also stops a reconnection under way (``reconnect``).
        await self.sio.shutdown()
        await self.sio.eio.http.close()


async def _connect(endpoint: Endpoint, transport: str, headers: dict[str, str], reconnect: bool) -> SioClient:
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=endpoint.ssl_context()))
    sio = socketio.AsyncClient(reconnection=reconnect, http_session=http, request_timeout=TIMEOUT_S)
    client = SioClient(sio, transport)
    sio.on("chat", client.chat.put)
    sio.on("broker", client.broker.put)
    sio.on("disconnect", client.on_disconnect)
    sio.on("connect", client.on_connect)
    refusals: list[object] = []
    sio.on("connect_error", refusals.append)
    try:
        await sio.connect(
            endpoint.url, transports=TRANSPORTS[transport], headers=headers, wait_timeout=TIMEOUT_S
        )
    except socketio.exceptions.ConnectionError as error:
        await http.close()
        # The client's own message names no reason; the server's refusal (connect_error) does.
        raise socketio.exceptions.ConnectionError(
            f"{error} {refusals}" if refusals else str(error)
        ) from error
    except BaseException:
        await http.close()
        raise
    return client


def connect(
    endpoint: Endpoint,
    transport: str = "default",
    headers: dict[str, str] | None = None,
    upgraded: bool = True,
    reconnect: bool = False,
) -> SioClient:
    """A connected client (raises socketio.exceptions.ConnectionError when refused). The default
    transport returns once the upgrade is done (unless ``upgraded`` is False), so the websocket is
    what a test then uses. ``reconnect``: the client's own reconnection (backoff with jitter)."""
    client = _run(_connect(endpoint, transport, headers or {}, reconnect))
    try:
        if transport == "default" and upgraded:
            wait_for(
                lambda: client.current_transport() == "websocket",
                f"{endpoint.url}: the polling client never upgraded",
            )
        served = client.info()["served_by"]
        client.worker = (served["host"], served["pid"])
    except BaseException:
        client.close()
        raise
    return client


def wait_for(done: Any, failure: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(failure)
        time.sleep(0.05)


def workers(clients: list[SioClient]) -> set[tuple[str, int]]:
    return {client.worker for client in clients}


# Clients connected at once: one after another, an idle machine's first worker accepts them all
# (its accept loop is back first); connections in flight together reach the others too.
BATCH = 4


def connect_batch(
    endpoint: Endpoint, transport: str, count: int = BATCH, reconnect: bool = False
) -> list[SioClient]:
    """``count`` clients connected at the same time (all of them, or none: the first error raised)."""
    with ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(connect, endpoint, transport, reconnect=reconnect) for _ in range(count)]
    clients, errors = [], []
    for future in futures:
        try:
            clients.append(future.result())
        except BaseException as error:  # noqa: BLE001 (raised below, once the others are closed)
            errors.append(error)
    if errors:
        close_all(clients)
        raise errors[0]
    return clients


def spread(
    endpoint: Endpoint,
    transport: str,
    over: set[Hashable] | int,
    at_least: int = 2,
    key: Callable[[SioClient], Hashable] = lambda client: client.worker,
) -> list[SioClient]:
    """Clients of ``transport`` until they sit on every place of ``over`` (a set), or on ``over``
    places (a count), and number at least ``at_least``; MAX_CLIENTS at most, BATCH at a time. A
    client's place is its ``key``: by default its worker (host, pid); a swarm test's, its task's host."""

    def covered() -> bool:
        found = {key(client) for client in clients}
        return over <= found if isinstance(over, set) else len(found) >= over

    clients: list[SioClient] = []
    try:
        while len(clients) < at_least or (not covered() and len(clients) < MAX_CLIENTS):
            clients.extend(connect_batch(endpoint, transport))
    except BaseException:
        close_all(clients)
        raise
    return clients


def chat_relayed(sender: SioClient, receivers: list[SioClient], text: str) -> list[tuple[SioClient, Any]]:
    """``sender`` chats ``text`` (its ack must be ok); what each of ``receivers`` then got (None:
    nothing within TIMEOUT_S)."""
    acked = sender.call("chat", {"msg": text})
    if acked != {"ok": True}:
        raise AssertionError(f"chat from {sender.worker}: ack {acked!r}, not {{'ok': True}}")
    got: list[tuple[SioClient, Any]] = []
    for client in receivers:
        try:
            got.append((client, client.chat.get(timeout=TIMEOUT_S)))
        except queue.Empty:
            got.append((client, None))
    return got


def close_all(clients: list[SioClient]) -> None:
    for client in clients:
        client.close()
