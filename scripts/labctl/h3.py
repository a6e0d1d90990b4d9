"""HTTP/3 requests over QUIC, the way the lab's diagnostics make them: TLS verified against the
endpoint's CA, redirects never followed, request bodies streamed (never held whole in memory).

Built on aioquic (pinned in requirements-dev.txt), so this module runs in .venv only: callers
that also run before the virtualenv exists (the doctor's probes) import it where they use it,
once ``importlib.util.find_spec("aioquic")`` has found it. Whether a site offers HTTP/3 at all
(its Alt-Svc) is probe.alt_svc_h3's.

    reply = h3.request(endpoint, "GET", "/debug/request")          # one request, one connection
    async with h3.connect(endpoint) as client:                     # many, on one connection
        replies = await asyncio.gather(*(client.request("GET", "/healthz") for _ in range(10)))
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aioquic.asyncio.client import connect as quic_connect
from aioquic.asyncio.protocol import QuicConnectionProtocol
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, QuicEvent, StreamReset

from .endpoints import LOOPBACK, Endpoint
from .probe import TIMEOUT, Reply

USER_AGENT = "proxylab-h3/aioquic"


@dataclass
class _Exchange:
    """One request stream: the answer as it arrives, and who waits for its end."""

    done: asyncio.Future[None]
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    body: bytearray = field(default_factory=bytearray)


class _Protocol(QuicConnectionProtocol):
    """aioquic's QUIC connection with an HTTP/3 layer on top and one _Exchange per request."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.http = H3Connection(self._quic)
        self.exchanges: dict[int, _Exchange] = {}
        self.closed_because = ""
        self._sent = asyncio.Event()

    def transmit(self) -> None:
        super().transmit()
        self._sent.set()  # a request body waiting for its send buffer to drain looks again

    def quic_event_received(self, event: QuicEvent) -> None:
        if isinstance(event, ConnectionTerminated):
            self.closed_because = event.reason_phrase or f"error code {event.error_code:#x}"
            for exchange in self.exchanges.values():
                if not exchange.done.done():
                    exchange.done.set_exception(
                        ConnectionError(f"the QUIC connection closed: {self.closed_because}")
                    )
        elif isinstance(event, StreamReset) and event.stream_id in self.exchanges:
            exchange = self.exchanges[event.stream_id]
            if not exchange.done.done():
                exchange.done.set_exception(
                    ConnectionResetError(f"the server reset the stream (error {event.error_code:#x})")
                )
        for h3_event in self.http.handle_event(event):
            self._h3_event(h3_event)

    def _h3_event(self, event: H3Event) -> None:
        if not isinstance(event, HeadersReceived | DataReceived):
            return
        exchange = self.exchanges.get(event.stream_id)
        if exchange is None or exchange.done.done():
            return
        if isinstance(event, HeadersReceived):
            for name, value in event.headers:
                key, text = name.decode().lower(), value.decode("latin-1")
                if key == ":status":
                    exchange.status = int(text)
                elif not key.startswith(":"):
                    exchange.headers[key] = (
                        f"{exchange.headers[key]}, {text}" if key in exchange.headers else text
                    )
        else:
            exchange.body += event.data
        if event.stream_ended:
            exchange.done.set_result(None)

    async def wait_sent(self, stream_id: int) -> None:
        """Until every byte queued on the stream has gone out once: the body's next piece is
        generated only then, so an upload holds about one piece plus what is in flight."""
        sender = self._quic._streams[stream_id].sender  # aioquic has no public send-buffer level
        while not sender.buffer_is_empty and not self.closed_because:
            self._sent.clear()
            await self._sent.wait()


@dataclass
class Client:
    """One QUIC connection to the endpoint; requests on it run as concurrent streams."""

    endpoint: Endpoint
    protocol: _Protocol

    async def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str] | None = None,
        body: bytes | Iterable[bytes] | None = None,
    ) -> Reply:
        """One request; ``body`` as bytes or as pieces (each sent once the previous one has)."""
        protocol = self.protocol
        if protocol.closed_because:  # a stream on a closed connection would wait forever
            raise ConnectionError(f"the QUIC connection closed: {protocol.closed_because}")
        stream_id = protocol._quic.get_next_available_stream_id()
        exchange = _Exchange(asyncio.get_running_loop().create_future())
        protocol.exchanges[stream_id] = exchange
        fields = [
            (b":method", method.encode()),
            (b":scheme", b"https"),
            (b":authority", self.endpoint.host.encode()),
            (b":path", (self.endpoint.prefix + path).encode()),
            (b"user-agent", USER_AGENT.encode()),
            *((name.lower().encode(), value.encode()) for name, value in (headers or {}).items()),
        ]
        try:
            protocol.http.send_headers(stream_id, fields, end_stream=body is None)
            protocol.transmit()
            if body is not None:
                for piece in [body] if isinstance(body, bytes) else body:
                    protocol.http.send_data(stream_id, piece, end_stream=False)
                    protocol.transmit()
                    await protocol.wait_sent(stream_id)
                    if exchange.done.done():
                        break  # answered (or reset) before the whole body went: a 413 says so
                else:
                    protocol.http.send_data(stream_id, b"", end_stream=True)
                    protocol.transmit()
            await exchange.done
        finally:
            del protocol.exchanges[stream_id]
        return Reply(exchange.status, exchange.headers, bytes(exchange.body))


def configuration(endpoint: Endpoint) -> QuicConfiguration:
    """HTTP/3 over QUIC, the certificate verified against the endpoint's CA for its host name."""
    config = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=endpoint.hostname)
    config.verify_mode = ssl.CERT_REQUIRED
    if endpoint.ca is not None:
        config.load_verify_locations(cafile=str(endpoint.ca))
    return config


def quic_address(endpoint: Endpoint, port: int | None = None) -> tuple[str, int]:
    """Where the QUIC packets go: the endpoint's address for the advertised port (through its
    connect_to, as TCP's: `lab check` runs a config's :443 on the lab's port). A loopback name
    goes to 127.0.0.1: Docker publishes the UDP port there only, and a datagram sent to ::1 is
    lost without an error (the handshake would just time out)."""
    wanted = port or endpoint.port
    host, mapped = dict(endpoint.connect_to).get(wanted, (endpoint.address()[0], wanted))
    return ("127.0.0.1" if host in LOOPBACK else host), mapped


@asynccontextmanager
async def connect(
    endpoint: Endpoint, port: int | None = None, timeout: float = TIMEOUT
) -> AsyncIterator[Client]:
    """A QUIC connection (handshake done within ``timeout``) to the endpoint's host on ``port``
    (default: the HTTPS port, where the lab advertises h3); closed on exit."""
    host, quic_port = quic_address(endpoint, port)
    async with quic_connect(
        host,
        quic_port,
        configuration=configuration(endpoint),
        create_protocol=_Protocol,
        wait_connected=False,
    ) as protocol:
        assert isinstance(protocol, _Protocol)
        protocol.transmit()  # the Initial packet: aioquic sends it itself only with wait_connected
        try:
            await asyncio.wait_for(protocol.wait_connected(), timeout)
        except ConnectionError:
            raise ConnectionError(f"the QUIC handshake failed: {protocol.closed_because}") from None
        yield Client(endpoint, protocol)


def request(
    endpoint: Endpoint,
    method: str,
    path: str,
    headers: Mapping[str, str] | None = None,
    body: bytes | Iterable[bytes] | None = None,
    port: int | None = None,
    timeout: float = TIMEOUT,
) -> Reply:
    """One HTTP/3 request on a connection of its own; TimeoutError when the handshake or the
    answer takes longer than ``timeout``, ConnectionError when QUIC closes (a bad certificate)."""

    async def exchange() -> Reply:
        async with connect(endpoint, port, timeout) as client:
            async with asyncio.timeout(timeout):
                return await client.request(method, path, headers, body)

    return asyncio.run(exchange())
