"""labapp.patches.eiows: Engine.IO websocket sessions that send directly (no writer greenlet) and
ping from a timer, compared with python-engineio's stock Socket on the same session, over a
real socket pair: the client must read the same frames."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import engineio
import gevent
import pytest
from engineio import packet
from engineio.socket import Socket
from gevent import queue, socket
from geventwebsocket.websocket import WebSocket

from labapp import patches, wssend
from labapp.patches import eiows
from labctl import wsclient

patches.install(patches.all_patches())  # as create_app does
STOCK_HANDLER = patches.stock("engineio.socket:Socket._websocket_handler")
STOCK_PING = patches.stock("engineio.socket:Socket.schedule_ping")
PING_S = 0.05


class Wrapper:
    """Engine.IO's gevent WebSocketWSGI as its handler sees it, over the lab's BoundedSocket
    (``_sock.websocket``); what the client sends comes from ``incoming`` (None: it closed)."""

    def __init__(self, websocket: WebSocket) -> None:
        self._sock = SimpleNamespace(websocket=websocket)
        self.incoming: queue.Queue[str | None] = queue.Queue()

    def wait(self) -> str | None:
        return self.incoming.get()

    def send(self, message: str) -> None:
        self._sock.websocket.send(message)

    def close(self) -> None:
        self._sock.websocket.close()


def _session(sock: socket.socket) -> tuple[Socket, Wrapper]:
    server = engineio.Server(async_mode="gevent", ping_interval=PING_S, monitor_clients=False)
    session = Socket(server, "sid1")
    server.sockets["sid1"] = session
    session.send(packet.Packet(packet.OPEN, {"sid": "sid1", "upgrades": []}))  # queued, as on connect
    handler = SimpleNamespace(socket=sock, logger=SimpleNamespace(debug=lambda *_: None))
    stream = SimpleNamespace(read=sock.recv, write=sock.sendall, handler=handler)
    return session, Wrapper(WebSocket({}, stream, handler))


def _frames(stock: bool, act: Callable[[Socket, Wrapper], Any]) -> list[tuple[int, bytes]]:
    """What the client reads of one websocket session (open, ``act``, the end), with the stock
    handler or the patched one."""
    ours, theirs = socket.socketpair()
    session, wrapper = _session(ours)
    handler = STOCK_HANDLER if stock else eiows._websocket_handler
    running = gevent.spawn(handler, session, wrapper)
    try:
        gevent.sleep(0.01)
        act(session, wrapper)
        wrapper.incoming.put(None)
        running.join(5)
        assert running.dead
        ours.shutdown(socket.SHUT_WR)
        client = wsclient.WebSocket(theirs, None)  # type: ignore[arg-type]
        frames = []
        while True:
            opcode, payload = client.recv()
            frames.append((opcode, payload))
            if opcode == wsclient.OP_CLOSE:
                return frames
    finally:
        ours.close()
        theirs.close()


def _messages(session: Socket, _wrapper: Wrapper) -> None:
    session.send(packet.Packet(packet.MESSAGE, '2["chat",{"msg":"h\u00e9llo"}]'))
    session.send(packet.Packet(packet.MESSAGE, b"\x00\x01binary"))
    session.send(packet.Packet(packet.NOOP))


def _server_close(session: Socket, _wrapper: Wrapper) -> None:
    with gevent.Timeout(2):  # the stock close waits for its writer; the patched one has none
        session.close()


def _client_close(_session: Socket, wrapper: Wrapper) -> None:
    wrapper.incoming.put("1")  # Engine.IO's CLOSE packet from the client
    gevent.sleep(0.01)


def _ping(stock: bool) -> Callable[[Socket, Wrapper], None]:
    def act(session: Socket, _wrapper: Wrapper) -> None:
        session.last_ping = 1.0  # a pong came back: the next ping is due in ping_interval
        (STOCK_PING if stock else eiows.schedule_ping)(session)
        gevent.sleep(PING_S * 4)

    return act


@pytest.mark.parametrize("act", [_messages, _server_close, _client_close])
def test_the_client_reads_what_the_stock_writer_sends(act):
    frames = _frames(False, act)
    assert frames == _frames(True, act)
    assert frames[0][1].startswith(b'0{"sid":"sid1"')


def test_a_ping_comes_after_the_interval_as_from_the_stock_pinger():
    frames = _frames(False, _ping(False))
    assert frames == _frames(True, _ping(True))
    assert (wsclient.OP_TEXT, b"2") in frames


def test_a_broadcast_packet_is_framed_once_for_every_client():
    pkt = packet.Packet(packet.MESSAGE, '2["chat",{"msg":"to all"}]')
    sent: list[bytes] = []

    def send_all(session: Socket, _wrapper: Wrapper) -> None:
        session.send(pkt)
        sent.append(getattr(pkt, eiows._FRAME))

    first = _frames(False, send_all)
    second = _frames(False, send_all)
    assert first == second
    assert sent[0] is sent[1] and sent[0] == wssend.text_frame('42["chat",{"msg":"to all"}]')


def test_a_session_sends_without_a_writer_greenlet():
    ours, theirs = socket.socketpair()
    session, wrapper = _session(ours)
    try:
        running = gevent.spawn(eiows._websocket_handler, session, wrapper)
        gevent.sleep(0.01)
        assert getattr(session, eiows._DIRECT) is wrapper._sock.websocket
        assert session.queue.qsize() == 0  # the open packet went out, nothing waits for a writer
        wrapper.incoming.put(None)
        running.join(5)
        assert session.closed
    finally:
        ours.close()
        theirs.close()
