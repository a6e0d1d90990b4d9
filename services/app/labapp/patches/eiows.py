"""Engine.IO's websocket sessions on gevent-websocket without a writer greenlet or a ping
greenlet each: what a Socket.IO client costs the worker, and what a broadcast costs per client.

python-engineio's ``Socket`` keeps, for every websocket session, three greenlets for its life:
the handler's reader, a writer parked on the session's queue (every packet sent is put there,
then the writer wakes, encodes it and sends it: a greenlet switch and an encode per packet per
client), and a pinger parked in ``sleep(pingInterval)``. Each parked greenlet keeps its saved
C stack. Measured on two workers with 1,000 clients (docs/BENCHMARKS.md, "Socket.IO"): 56 KiB of
the workers per Socket.IO client against 30 for a raw /ws/chat socket, and a broadcast twice
the raw chat's time per client.

1. ``_websocket_handler``: the stock handler (the probe/upgrade exchange and the reader loop
   unchanged), with the writer greenlet replaced by direct sends. Once the session is on the
   websocket, what was queued before (the open packet, a poll's leftovers) is sent in order,
   then the session sends each packet as it is sent (``send``), and its queue is dropped (a
   shared no-op stands in for what close still puts there). Sessions on another websocket
   implementation than gevent-websocket keep the stock handler.
2. ``send``: on such a session, the packet goes out at once, bounded as every websocket send
   (patches/wssend.py: the cap, close 1009; the deadline, close 1008 and the reason; then its
   reader ends the session). A text packet of one fragment as one frame through
   ``labapp.wssend.send_frame_within`` (one non-blocking ``send`` while the socket has room; the
   socket's lock otherwise), the frame built once per packet object and kept on it, as Engine.IO
   keeps the encoded packet (``Packet.encode_cache``): a broadcast's one packet goes to every
   client as the same bytes, which is how the raw chat's relay sends. A binary or larger packet
   through ``ws.send`` (the writer's fragments). Other sessions: stock.
3. ``close``: nothing waits in the queue of such a session (``wait`` would join a queue no one
   reads): the stock close without waiting, then the websocket's close frame, which the stock
   writer sent on its way out.
4. ``schedule_ping``: the next ping as a timer that starts a greenlet when it fires, not a
   greenlet sleeping for pingInterval.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import gevent
from engineio import exceptions, packet
from engineio.socket import Socket
from geventwebsocket.exceptions import WebSocketError

import labsettings

from .. import wssend
from . import Patch, stock
from .wsclose import Close
from .wssend import FRAGMENT

log = logging.getLogger("labapp.patches.eiows")

_DIRECT = "_lab_websocket"  # on a Socket: the gevent-websocket socket it sends to directly
_FRAME = "_lab_frame"  # on a Packet: its text frame, built once


def _stock(name: str) -> Any:
    return stock(f"engineio.socket:Socket.{name}")


def _websocket_of(ws: Any) -> Any:
    """The gevent-websocket socket under Engine.IO's wrapper (the lab's BoundedSocket holds it as
    ``websocket``); None for another implementation."""
    sock = getattr(ws, "_sock", None)
    sock = getattr(sock, "websocket", sock)
    return sock if getattr(sock, "handler", None) is not None else None


def _send_packet(websocket: Any, pkt: packet.Packet) -> None:
    encoded = pkt.encode()
    if not isinstance(encoded, str) or len(encoded) > FRAGMENT:
        # Binary, or more than one fragment: the patched writer's fragments (a binary packet: a
        # binary frame, as the stock writer sends it). Not sent whole: closed with the reason, or cut.
        with contextlib.suppress(WebSocketError):
            websocket.send(encoded)
        return
    frame = getattr(pkt, _FRAME, None)
    if frame is None:
        frame = wssend.text_frame(encoded)
        setattr(pkt, _FRAME, frame)
    wssend.send_frame_within(websocket, frame)


class _Sent:
    """The queue of a session that sends directly: what Engine.IO still does with one (close's
    None for a writer that is not there; a poll on an upgraded session never reads it) is a no-op."""

    def put(self, _item: Any) -> None:
        pass

    def join(self) -> None:
        pass

    def qsize(self) -> int:
        return 0


_SENT = _Sent()


def _go_direct(self: Socket, websocket: Any) -> bool:
    """What the session queued before the websocket, sent in order; then every packet is sent as
    it comes (False: the session closed meanwhile, and the websocket was closed)."""
    empty = self.server.get_queue_empty_exception()
    while True:
        try:
            pkt = self.queue.get(block=False)
        except empty:
            break
        self.queue.task_done()
        if pkt is None:  # closed before the upgrade finished: as the stock writer, close
            websocket.close(Close.NORMAL)
            return False
        _send_packet(websocket, pkt)
    setattr(self, _DIRECT, websocket)  # the queue was empty, with no switch since the last look
    self.queue = _SENT  # nothing is queued any more: 2.5 KiB a client less (tracemalloc)
    return True


def _websocket_handler(self: Socket, ws: Any) -> list[Any]:
    """Engine.IO handler for websocket transport (stock, less the writer greenlet)."""
    websocket = _websocket_of(ws)
    if websocket is None:
        return _stock("_websocket_handler")(self, ws)

    def websocket_wait() -> Any:
        data = ws.wait()
        if data and len(data) > self.server.max_http_buffer_size:
            raise ValueError("packet is too large")
        return data

    # try to set a socket timeout matching the configured ping interval and timeout
    for attr in ["_sock", "socket"]:
        if hasattr(ws, attr) and hasattr(getattr(ws, attr), "settimeout"):
            getattr(ws, attr).settimeout(self.server.ping_interval + self.server.ping_timeout)

    if self.connected:
        # the socket was already connected, so this is an upgrade
        self.upgrading = True  # hold packet sends during the upgrade
        pkt = websocket_wait()
        decoded_pkt = packet.Packet(encoded_packet=pkt)
        if decoded_pkt.packet_type != packet.PING or decoded_pkt.data != "probe":
            self.server.logger.info("%s: Failed websocket upgrade, no PING packet", self.sid)
            self.upgrading = False
            return []
        ws.send(packet.Packet(packet.PONG, data="probe").encode())
        self.queue.put(packet.Packet(packet.NOOP))  # end poll
        pkt = websocket_wait()
        decoded_pkt = packet.Packet(encoded_packet=pkt)
        if decoded_pkt.packet_type != packet.UPGRADE:
            self.upgraded = False
            self.server.logger.info(
                "%s: Failed websocket upgrade, expected UPGRADE packet, received %s instead.",
                self.sid,
                pkt,
            )
            self.upgrading = False
            return []
        self.upgraded = True
        self.upgrading = False
    else:
        self.connected = True
        self.upgraded = True

    if not _go_direct(self, websocket):
        return []
    self.server.logger.info("%s: Upgrade to websocket successful", self.sid)

    while True:
        p = None
        try:
            p = websocket_wait()
        except Exception as e:  # noqa: BLE001 (the stock handler's: any error ends the session)
            # if the socket is already closed, we can assume this is a downstream error of that
            if not self.closed:
                self.server.logger.info('%s: Unexpected error "%s", closing connection', self.sid, str(e))
            break
        if p is None:
            # connection closed by client
            break
        pkt = packet.Packet(encoded_packet=p)
        try:
            self.receive(pkt)
        except exceptions.UnknownPacketError:
            pass
        except exceptions.SocketIsClosedError:
            self.server.logger.info("Receive error -- socket is closed")
            break
        except Exception:  # the stock handler's: logged, and the session ends
            # if we get an unexpected exception we log the error and exit the connection properly
            self.server.logger.exception("Unknown receive error")
            break

    self.close(wait=False, abort=True, reason=self.server.reason.TRANSPORT_CLOSE)
    return []


def send(self: Socket, pkt: packet.Packet) -> None:
    """Send a packet to the client."""
    websocket = getattr(self, _DIRECT, None)
    if websocket is None:
        _stock("send")(self, pkt)
        return
    if not self.check_ping_timeout():
        return
    _send_packet(websocket, pkt)


def close(self: Socket, wait: bool = True, abort: bool = False, reason: Any = None) -> None:
    """Close the socket connection."""
    websocket = getattr(self, _DIRECT, None)
    if websocket is None:
        _stock("close")(self, wait, abort, reason)
        return
    _stock("close")(self, False, abort, reason)  # every packet already went out as it was sent
    if not websocket.closed:
        websocket.close(Close.NORMAL)


def _ping(self: Socket) -> None:
    """The stock ``_send_ping`` after its sleep."""
    if not self.closing and not self.closed:
        self.last_ping = time.time()
        self.send(packet.Packet(packet.PING))


def schedule_ping(self: Socket) -> None:
    # only schedule a new ping if the previous ping wait cycle completed
    if self.last_ping:
        self.last_ping = None
        # A bare timer (an active one keeps itself alive), not gevent.spawn_later: a Greenlet
        # waiting to start cost 4 KiB a client (tracemalloc), with its spawning stack recorded.
        # The callback runs in the hub, which must not block: the ping is sent from a greenlet.
        gevent.get_hub().loop.timer(self.server.ping_interval).start(gevent.spawn, _ping, self)


_WHY = "each Engine.IO websocket kept a writer and a pinger greenlet parked for life (56 KiB per client)"
_UPSTREAM = (
    "python-engineio (miguelgrinberg/python-engineio): write websocket packets from the sender "
    "instead of a writer task per client, and schedule pings with a timer"
)


def _patch(name: str, replacement: Any, digest: str, why: str) -> Patch:
    return Patch(
        target=f"engineio.socket:Socket.{name}",
        replacement=replacement,
        why=why,
        upstream=_UPSTREAM,
        distribution="python-engineio",
        version="4.15.1",
        digest=digest,
        setting=labsettings.FIX_SOCKETIO_SEND,
    )


PATCHES = (
    _patch("_websocket_handler", _websocket_handler, "58afe1227192", _WHY),
    _patch("send", send, "f8b2738ee5d4", _WHY + "; a broadcast woke each client's writer to encode it"),
    _patch("close", close, "05fac5583199", "close(wait=True) would join a queue no writer reads"),
    _patch("schedule_ping", schedule_ping, "fe316639159c", _WHY),
)
