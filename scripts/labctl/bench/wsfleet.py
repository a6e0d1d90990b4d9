"""Thousands of wss clients in one bench process, cheap enough per frame not to be what a
broadcast measures.

Each client is opened by the lab's blocking client (``wsclient.connect``: TLS verified against the
lab's CA, the 101 checked), from a pool of threads (TLS handshakes release the GIL); then every
socket is switched to non-blocking and read from one selector, TLS decrypted in C by the ssl
module. asyncio's streams, which the bench used before, run TLS through a Python layer
(``asyncio.sslproto``): one message to 10,000 clients cost that client 774 ms of CPU, four
times what both gunicorn workers spent sending it.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import ssl
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from .. import endpoints, paths, wsclient

CONNECT_TIMEOUT_S = 15.0
RECV_SIZE = 65536


@dataclass(eq=False)
class Member:
    """One open client: its socket, where the server holds it, bytes of a frame not yet whole."""

    ws: wsclient.WebSocket
    worker: str = ""  # "host/pid" from the ?whoami=1 hello
    pending: bytearray = field(default_factory=bytearray)

    @property
    def sock(self) -> socket.socket:
        return self.ws.sock

    def frames(self) -> Iterator[tuple[int, bytes]]:
        """The frames that arrived whole since last asked, reading without blocking."""
        with contextlib.suppress(ssl.SSLWantReadError, BlockingIOError):
            while True:
                data = self.sock.recv(RECV_SIZE)
                if not data:
                    raise ConnectionError("the server closed the connection")
                self.pending += data
                if not isinstance(self.sock, ssl.SSLSocket) or not self.sock.pending():
                    break  # nothing decrypted left over: the selector says when more comes
        while len(self.pending) >= 2:
            head_size = 2 + wsclient.extra_header_size(self.pending[1])
            if len(self.pending) < head_size:
                return
            opcode, length, _mask = wsclient.parse_header(bytes(self.pending[:head_size]))
            if len(self.pending) < head_size + length:
                return
            payload = bytes(self.pending[head_size : head_size + length])
            del self.pending[: head_size + length]
            yield opcode, payload


def open_client(path: str, hello: bool, context: ssl.SSLContext) -> Member:
    """One wss client through nginx; with ``hello``, the ?whoami=1 answer read (it names the worker)."""
    port = endpoints.https_port()
    answer, ws = wsclient.connect(
        ("127.0.0.1", port), path, f"localhost:{port}", context, timeout=CONNECT_TIMEOUT_S
    )
    if ws is None:
        raise wsclient.HandshakeError(f"handshake answered {answer.status} {answer.reason}, not 101")
    member = Member(ws)
    if hello:
        try:
            _opcode, payload = ws.recv()
            served_by = json.loads(payload)["served_by"]
        except BaseException:
            ws.sock.close()
            raise
        member.worker = f"{served_by['host']}/{served_by['pid']}"
    return member


@dataclass
class Ramp:
    """What opening the fleet took: attempts, failures, the first error, seconds."""

    attempted: int = 0
    failures: int = 0
    first_error: str = ""
    seconds: float = 0.0


class Fleet:
    """Open clients on one selector (``with Fleet() as fleet``: every socket dropped after)."""

    def __init__(self) -> None:
        self.members: list[Member] = []
        self.selector = selectors.DefaultSelector()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_exc: object) -> None:
        for member in self.members:
            with contextlib.suppress(OSError):
                member.sock.close()  # no closing handshake: thousands go at once
        self.selector.close()

    def add(self, member: Member) -> None:
        member.sock.setblocking(False)
        self.selector.register(member.sock, selectors.EVENT_READ, member)
        self.members.append(member)

    def open(
        self,
        path: str,
        count: int,
        concurrency: int,
        deadline_s: float,
        max_failures: int,
        hello: bool,
        opener: Callable[[ssl.SSLContext], Member] | None = None,
    ) -> Ramp:
        """Up to ``count`` clients, ``concurrency`` handshakes at a time; stops at the deadline or
        after ``max_failures`` failed handshakes (a limit was hit: that is the finding). Each is
        opened by ``opener`` when given (a Socket.IO client), else by ``open_client``."""
        ramp = Ramp()
        context = ssl.create_default_context(cafile=str(paths.CA))  # one for all: threads share it
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            running: set[Future[Member]] = set()
            while True:
                full = ramp.attempted >= count or ramp.failures >= max_failures
                late = time.monotonic() - started > deadline_s
                if late and not full:
                    ramp.first_error = ramp.first_error or f"ramp deadline ({deadline_s:g} s) reached"
                while not (full or late) and len(running) < concurrency and ramp.attempted < count:
                    if opener is not None:
                        running.add(pool.submit(opener, context))
                    else:
                        running.add(pool.submit(open_client, path, hello, context))
                    ramp.attempted += 1
                if not running:
                    break
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    if (error := future.exception()) is not None:
                        ramp.failures += 1
                        ramp.first_error = ramp.first_error or f"{type(error).__name__}: {error}"
                    else:
                        self.add(future.result())
        ramp.seconds = round(time.monotonic() - started, 2)
        return ramp

    def broadcast(self, token: str, timeout_s: float, packet: str | None = None) -> tuple[float, int]:
        """Milliseconds from the first member sending ``token`` (inside ``packet`` when given: a
        Socket.IO event) until every other member got it (or the timeout), and how many did."""
        sender, *receivers = self.members
        waiting = set(receivers)
        started = time.perf_counter()
        last = started
        self._send(sender, packet or token)
        end = started + timeout_s
        wanted = token.encode()
        while waiting and (left := end - time.perf_counter()) > 0:
            for key, _events in self.selector.select(left):
                member: Member = key.data
                try:
                    payloads = [payload for _opcode, payload in member.frames()]
                except OSError:  # closed by the server (ConnectionError too): not reached
                    self.selector.unregister(member.sock)
                    continue
                if member in waiting and any(wanted in payload for payload in payloads):
                    waiting.discard(member)
                    last = time.perf_counter()
        return round((last - started) * 1000, 1), len(receivers) - len(waiting)

    def round_trips(self, messages: int, timeout_s: float) -> list[float]:
        """Milliseconds per echo: each member in turn sends a text and waits for it back."""
        samples = []
        for number in range(messages):
            for index, member in enumerate(self.members):
                text = f"echo {index}/{number}"
                started = time.perf_counter()
                self._send(member, text)
                if not self._await_text(member, text, started + timeout_s):
                    raise RuntimeError("/ws/echo did not answer with the message sent")
                samples.append((time.perf_counter() - started) * 1000)
        return samples

    def _await_text(self, member: Member, text: str, end: float) -> bool:
        wanted = text.encode()
        with selectors.DefaultSelector() as one:
            one.register(member.sock, selectors.EVENT_READ)
            while (left := end - time.perf_counter()) > 0:
                if one.select(left) and wanted in [payload for _opcode, payload in member.frames()]:
                    return True
        return False

    def answer(self, question: bytes, answer: str) -> int:
        """Reply ``answer`` to every ``question`` frame already there (Engine.IO's pings, while
        the ramp reads nothing); how many were answered."""
        answered = 0
        for key, _events in self.selector.select(0):
            member: Member = key.data
            try:
                asked = [payload for _opcode, payload in member.frames() if payload == question]
            except OSError:
                self.selector.unregister(member.sock)
                continue
            for _ in asked:
                self._send(member, answer)
                answered += 1
        return answered

    @staticmethod
    def _send(member: Member, text: str) -> None:
        member.sock.setblocking(True)  # one small frame: never waits long
        try:
            member.ws.send_text(text)
        finally:
            member.sock.setblocking(False)
