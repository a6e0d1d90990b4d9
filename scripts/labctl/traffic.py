"""A bounded load through nginx while something happens to the stack (a deploy, a replica killed):
GETs on keep-alive connections and websockets that reconnect when the server closes them, each
outcome stamped with its time, so a timeline can say what was served and what failed per 250 ms.

Standard library only (``make deploy`` runs it before anything else is installed): HTTP over
verified TLS with ``http.client``, websockets with the lab's own client (``labctl.wsclient``).
Bounded twice: at most ``max_requests`` GETs and ``max_seconds`` of everything, whichever comes
first; the websocket clients stop with it.
"""

from __future__ import annotations

import http.client
import random
import select
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from . import wsclient
from .endpoints import Endpoint

BIN_S = 0.25
# /slow keeps requests in flight inside the app when it is told to stop; /healthz is the quick path.
DEFAULT_PATHS = ("/healthz", "/slow?seconds=0.5")
WS_PATH = "/ws/echo"
WS_PING_S = 1.0  # each websocket client sends a message this often and waits for its echo
WS_ECHO_TIMEOUT_S = 5.0
ABNORMAL = 1006  # RFC 6455 7.1.5: the connection closed without a close frame (cut)
# Closed by the server on purpose and said so: going away (1001), service restart (1012).
GRACEFUL_CLOSES = frozenset({1001, 1012})

SERVED, FAILED, WS_CLOSED, WS_RECONNECTED, NOTE = "served", "failed", "ws closed", "ws reconnected", "note"
# A failure of its own kind: the response had started (status and headers forwarded) when the
# server behind nginx died, so nginx could not send the request elsewhere; only a kill does that.
CUT_AFTER_HEADERS = "cut after its headers"


@dataclass(frozen=True)
class Event:
    t: float  # seconds since the load started
    kind: str  # SERVED, FAILED, WS_CLOSED, WS_RECONNECTED or NOTE
    detail: str = ""  # the failure, the close code, the note's text


@dataclass(frozen=True)
class Bin:
    start: float
    served: int
    failed: int
    closed: Counter
    reconnected: int
    notes: tuple[str, ...]


@dataclass
class Recording:
    """Everything one load saw, in the order it happened."""

    events: list[Event] = field(default_factory=list)
    seconds: float = 0.0
    http_threads: int = 0
    websockets: int = 0
    client_retries: int = 0  # GETs sent again after a keep-alive close (RFC 9112 9.3.1)

    def of(self, kind: str) -> list[Event]:
        return [event for event in self.events if event.kind == kind]

    @property
    def served(self) -> int:
        return len(self.of(SERVED))

    @property
    def failed(self) -> int:
        return len(self.of(FAILED))

    def close_codes(self) -> Counter:
        return Counter(int(event.detail) for event in self.of(WS_CLOSED))

    @property
    def cut_websockets(self) -> int:
        """Websockets that ended any other way than a graceful close by the server."""
        return sum(n for code, n in self.close_codes().items() if code not in GRACEFUL_CLOSES)

    @property
    def reconnected(self) -> int:
        return len(self.of(WS_RECONNECTED))

    def failures(self, cut: bool = True) -> list[str]:
        """Each failed GET, stamped with its time; ``cut=False``: less those cut after their headers."""
        return [
            f"{event.t:.2f}s {event.detail}"
            for event in self.of(FAILED)
            if cut or CUT_AFTER_HEADERS not in event.detail
        ]

    @property
    def cut_after_headers(self) -> int:
        return sum(CUT_AFTER_HEADERS in event.detail for event in self.of(FAILED))

    def bins(self, bin_s: float = BIN_S) -> list[Bin]:
        count = int(self.seconds // bin_s) + 1
        served, failed, reconnected = [0] * count, [0] * count, [0] * count
        closed: list[Counter] = [Counter() for _ in range(count)]
        notes: list[list[str]] = [[] for _ in range(count)]
        for event in self.events:
            index = min(int(event.t // bin_s), count - 1)
            if event.kind == SERVED:
                served[index] += 1
            elif event.kind == FAILED:
                failed[index] += 1
            elif event.kind == WS_CLOSED:
                closed[index][int(event.detail)] += 1
            elif event.kind == WS_RECONNECTED:
                reconnected[index] += 1
            else:
                notes[index].append(f"{event.t:.2f}s {event.detail}")
        return [
            Bin(i * bin_s, served[i], failed[i], closed[i], reconnected[i], tuple(notes[i]))
            for i in range(count)
        ]

    def summary(self) -> str:
        codes = ", ".join(f"{code} x{n}" for code, n in sorted(self.close_codes().items())) or "none"
        return (
            f"{self.served + self.failed} GETs in {self.seconds:.1f}s: {self.served} served, "
            f"{self.failed} failed ({self.cut_after_headers} cut after their headers), "
            f"{self.client_retries} client retries after a keep-alive close; "
            f"{self.websockets} websockets: closed by the server {codes}, reconnected {self.reconnected}"
        )

    def timeline(self, bin_s: float = BIN_S) -> str:
        """One line per bin (the notes of what happened, between them)."""
        lines = [f"{'time':>7}  {'served':>6}  {'failed':>6}  {'ws closed':<16}  ws reconnected"]
        for row in self.bins(bin_s):
            lines.extend(f"  -- {note}" for note in row.notes)
            closed = ", ".join(f"{code} x{n}" for code, n in sorted(row.closed.items()))
            lines.append(
                f"{row.start:>6.2f}s  {row.served:>6}  {row.failed:>6}  {closed:<16}  "
                + (str(row.reconnected) if row.reconnected else "")
            )
        return "\n".join(lines)


class Load:
    """``with Load(endpoint) as load: ...; load.note("x")``; then ``load.recording``."""

    def __init__(
        self,
        endpoint: Endpoint,
        http_threads: int = 4,
        websockets: int = 4,
        paths: tuple[str, ...] = DEFAULT_PATHS,
        max_requests: int = 20_000,
        max_seconds: float = 120,
        pause_s: float = 0.01,
    ) -> None:
        self.endpoint = endpoint
        self.paths = paths
        self.pause_s = pause_s
        self.recording = Recording(http_threads=http_threads, websockets=websockets)
        self._context = endpoint.ssl_context()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._budget = max_requests
        self._max_seconds = max_seconds
        self._started = 0.0
        self._threads = [
            threading.Thread(target=self._get_loop, args=(i,), daemon=True) for i in range(http_threads)
        ] + [threading.Thread(target=self._ws_loop, daemon=True) for _ in range(websockets)]

    def __enter__(self) -> Load:
        self._started = time.monotonic()
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=WS_ECHO_TIMEOUT_S + 35)
        self.recording.seconds = self._now()
        self.recording.events.sort(key=lambda event: event.t)

    def _now(self) -> float:
        return time.monotonic() - self._started

    def _record(self, kind: str, detail: str = "") -> None:
        with self._lock:
            self.recording.events.append(Event(self._now(), kind, detail))

    def note(self, text: str) -> None:
        """Mark a moment of the timeline (what the deploy is doing)."""
        self._record(NOTE, text)

    def _running(self) -> bool:
        return not self._stop.is_set() and self._now() < self._max_seconds

    def _take(self) -> bool:
        with self._lock:
            if self._budget <= 0 or not self._running():
                return False
            self._budget -= 1
            return True

    def _connection(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection(
            self.endpoint.hostname, self.endpoint.port, context=self._context, timeout=30
        )

    def _get_loop(self, index: int) -> None:
        path = self.endpoint.prefix + self.paths[index % len(self.paths)]
        connection = self._connection()
        try:
            while self._take():
                connection = self._get(connection, path)
                self._stop.wait(self.pause_s)
        finally:
            connection.close()

    def _get(self, connection: http.client.HTTPSConnection, path: str) -> http.client.HTTPSConnection:
        for attempt in (1, 2):
            try:
                connection.request("GET", path, headers={"Host": self.endpoint.host})
                response = connection.getresponse()
                response.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as error:
                # The server closed this keep-alive connection as the request went out: an
                # idempotent request may be sent again (RFC 9112 9.3.1), as browsers do.
                connection.close()
                connection = self._connection()
                if attempt == 1:
                    with self._lock:
                        self.recording.client_retries += 1
                    continue
                self._record(FAILED, f"GET {path}: {type(error).__name__}")
            except http.client.IncompleteRead as error:
                connection.close()
                connection = self._connection()
                self._record(FAILED, f"GET {path}: {CUT_AFTER_HEADERS}: {error}"[:200])
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = self._connection()
                self._record(FAILED, f"GET {path}: {type(error).__name__}: {error}"[:200])
            else:
                if response.status == 200:
                    self._record(SERVED)
                else:
                    request_id = response.getheader("X-Request-ID", "")
                    self._record(FAILED, f"GET {path}: {response.status} {request_id}")
            return connection
        return connection

    def _ws_loop(self) -> None:
        failures_in_a_row = 0
        opened_before = False
        while self._running():
            try:
                _, ws = wsclient.connect(
                    self.endpoint.address(),
                    self.endpoint.prefix + WS_PATH,
                    self.endpoint.host,
                    self._context if self.endpoint.tls else None,
                    self.endpoint.hostname,
                )
            except (OSError, wsclient.HandshakeError):
                ws = None
            if ws is None:
                failures_in_a_row += 1
                self._backoff(failures_in_a_row)
                continue
            failures_in_a_row = 0
            if opened_before:
                self._record(WS_RECONNECTED)
            opened_before = True
            code = self._echo_until_closed(ws)
            if code is not None:
                self._record(WS_CLOSED, str(code))
                self._backoff(1)

    def _backoff(self, attempt: int) -> None:
        """Exponential backoff with full jitter, as lab.js reconnects: a closed replica's clients
        must not all come back in the same instant."""
        self._stop.wait(random.uniform(0, min(2.0, 0.1 * 2**attempt)))

    def _echo_until_closed(self, ws: wsclient.WebSocket) -> int | None:
        """Echo a message every WS_PING_S until the server closes: its close code (ABNORMAL when
        the connection just dropped), or None when the load stopped first."""
        with ws:
            ws.settimeout(WS_ECHO_TIMEOUT_S)
            next_ping = 0.0
            waiting: str | None = None
            while self._running():
                try:
                    if waiting is None and self._now() >= next_ping:
                        waiting = uuid.uuid4().hex
                        ws.send_text(waiting)
                        next_ping = self._now() + WS_PING_S
                    if not _readable(ws, 0.1):
                        continue
                    opcode, payload = ws.recv()
                except (OSError, ConnectionError):
                    return ABNORMAL
                if opcode == wsclient.OP_CLOSE:
                    return wsclient.close_code(payload)
                if opcode == wsclient.OP_TEXT and payload.decode() == waiting:
                    waiting = None
        return None


def _readable(ws: wsclient.WebSocket, timeout: float) -> bool:
    """A frame (or the end of the connection) is waiting: TLS may hold decrypted bytes already."""
    sock = ws.sock
    pending = getattr(sock, "pending", None)
    if pending is not None and pending():
        return True
    return bool(select.select([sock], [], [], timeout)[0])


def under_load(
    action: Callable[[Callable[[str], None]], None], load: Load, lead_s: float = 1.0, tail_s: float = 2.0
) -> tuple[Recording, float]:
    """Run ``action(note)`` (a deploy) inside ``load``, started ``lead_s`` before it and going on
    ``tail_s`` after (websockets reconnect): the recording and the action's own seconds."""
    with load:
        time.sleep(lead_s)
        load.note("start")
        started = time.monotonic()
        try:
            action(load.note)
        finally:
            took = time.monotonic() - started
            load.note(f"done in {took:.1f}s")
            time.sleep(tail_s)
    return load.recording, took
