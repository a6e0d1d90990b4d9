"""labapp.patches.wsread, wssend and wsclose: gevent-websocket's reader, writer and close frames,
compared with the stock ones on the same frames, over a real socket pair; the writer's deadline
(close 1008) and cap (close 1009)."""

from __future__ import annotations

import array
import fcntl
import io
import os
import struct
import termios
import time
import zlib
from types import SimpleNamespace

import gevent
import pytest
from gevent import socket
from gevent.event import Event
from geventwebsocket.exceptions import ProtocolError, WebSocketError
from geventwebsocket.websocket import Header, WebSocket

from labapp import patches
from labapp import wssend as labwssend
from labapp.patches import wsclose, wsdeflate, wsread, wssend

TEXT, BINARY, CONT, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10
patches.install(patches.all_patches())  # as create_app does; the stock attributes stay known
STOCK_READ = patches.stock("geventwebsocket.websocket:WebSocket.read_message")
STOCK_VALID = patches.stock("geventwebsocket.websocket:WebSocket._is_valid_close_code")
STOCK_SEND = patches.stock("geventwebsocket.websocket:WebSocket.send_frame")
STOCK_CLOSE = patches.stock("geventwebsocket.websocket:WebSocket.close")


def frame(
    opcode: int, payload: bytes, fin: bool = True, rsv: int = 0, mask: bytes = b"\x37\xfa\x21\x3d"
) -> bytes:
    """One client frame (masked, as a client must send it)."""
    head = bytes([(0x80 if fin else 0) | rsv | opcode])
    size = len(payload)
    if size < 126:
        head += bytes([0x80 | size])
    elif size <= 0xFFFF:
        head += bytes([0x80 | 126]) + struct.pack("!H", size)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", size)
    return head + mask + wsread.unmask(payload, mask)


class Peer:
    """The client's end of the socket pair under a WebSocket: a greenlet reads whatever the server
    side sends (``reading`` clear: it stops reading, as a client that does not read)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = bytearray()
        self.reading = Event()
        self.reading.set()
        self.reader = gevent.spawn(self._read)

    def _read(self) -> None:
        while self.reading.wait() and (chunk := self.sock.recv(1 << 16)):
            self.data.extend(chunk)

    def sent(self) -> bytes:
        """Everything sent so far (once the socket pair holds nothing unread), taken."""
        self.reading.set()
        waiting = array.array("i", [0])
        while fcntl.ioctl(self.sock.fileno(), termios.FIONREAD, waiting) == 0 and waiting[0]:
            gevent.sleep(0.001)  # a timer: the loop polls the sockets (sleep(0) may not)
        data, self.data = bytes(self.data), bytearray()
        return data


def websocket(data: bytes = b"") -> tuple[WebSocket, Peer]:
    """A WebSocket reading ``data`` and sending to a real socket, the peer's end to read from."""
    ours, theirs = socket.socketpair()
    rfile = io.BufferedReader(io.BytesIO(data), 1024)
    handler = SimpleNamespace(
        socket=ours,
        rfile=rfile,
        server=SimpleNamespace(application=None),
        logger=SimpleNamespace(debug=lambda *_: None),
    )
    stream = SimpleNamespace(read=rfile.read, write=ours.sendall, handler=handler)
    return WebSocket({}, stream, handler), Peer(theirs)


def outcome(read, data: bytes) -> tuple[object, bytes]:
    """What one read_message makes of ``data``: the message or the exception's type, and the sends."""
    ws, peer = websocket(data)
    try:
        result: object = read(ws)
    except (WebSocketError, UnicodeError) as error:
        result = type(error) if not isinstance(error, UnicodeError) else UnicodeError
    return result, peer.sent()


def frames_of(data: bytes) -> list[tuple[int, int, bytes]]:
    """(flags, opcode, payload) of each unmasked server frame in ``data``."""
    frames = []
    at = 0
    while at < len(data):
        first, size = data[at], data[at + 1] & 0x7F
        at += 2
        if size == 126:
            (size,) = struct.unpack("!H", data[at : at + 2])
            at += 2
        elif size == 127:
            (size,) = struct.unpack("!Q", data[at : at + 8])
            at += 8
        frames.append((first & 0xF0, first & 0x0F, data[at : at + size]))
        at += size
    return frames


def message_of(frames: list[tuple[int, int, bytes]]) -> tuple[int, bytes]:
    """The first message's opcode and payload, its fragments joined."""
    return frames[0][1], b"".join(payload for _, opcode, payload in frames if opcode != CLOSE)


SNOWMAN = "\u2603 caf\u00e9 \U0001f600".encode()
CASES = {
    "a text message": frame(TEXT, b"hello"),
    "an empty text message": frame(TEXT, b""),
    "a binary message": frame(BINARY, bytes(range(256)) * 3),
    "a 1 MiB binary message": frame(BINARY, os.urandom(1024 * 1024)),
    "a 300 KiB text message": frame(TEXT, SNOWMAN * 20_000),
    "fragments splitting a character": frame(TEXT, SNOWMAN[:2], fin=False) + frame(CONT, SNOWMAN[2:]),
    "a ping between fragments": frame(TEXT, b"a", fin=False) + frame(PING, b"hi") + frame(CONT, b"b"),
    "a pong, then a message": frame(PONG, b"x") + frame(BINARY, b"y"),
    "a close with a code and reason": frame(CLOSE, struct.pack("!H", 1000) + b"bye"),
    "an empty close": frame(CLOSE, b""),
    "invalid UTF-8": frame(TEXT, b"ok\xff\xfe"),
    "a surrogate in UTF-8": frame(TEXT, b"\xed\xa0\x80"),
    "UTF-8 cut off at the message end": frame(TEXT, SNOWMAN[:1]),
    "invalid UTF-8 across fragments": frame(TEXT, b"\xce", fin=False) + frame(CONT, b"\x41"),
    "a reserved bit": frame(TEXT, b"x", rsv=0x40),
    "a reserved opcode": frame(3, b"x"),
    "a continuation with no message": frame(CONT, b"x"),
    "a new message inside a fragmented one": frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"),
    "a fragmented ping": frame(PING, b"x", fin=False),
    "a control frame over 125 bytes": frame(PING, b"x" * 126),
    "a payload cut off": frame(BINARY, b"x" * 5000)[:3000],
    "a header cut off": frame(BINARY, b"x")[:1],
}


@pytest.mark.parametrize("data", CASES.values(), ids=CASES.keys())
def test_reads_what_gevent_websocket_reads(data):
    assert outcome(wsread.read_message, data) == outcome(STOCK_READ, data)


@pytest.mark.parametrize("offset", range(5))
def test_unmasks_as_gevent_websocket_does(offset):
    payload, mask = os.urandom(1001), os.urandom(4)
    stock = Header()
    stock.mask, stock.length = mask, len(payload)
    whole = bytes(stock.unmask_payload(payload))
    assert wsread.unmask(payload[offset:], mask, offset) == whole[offset:]


def test_invalid_utf8_is_refused_before_the_rest_of_the_frame():
    """Autobahn 6.4.3/6.4.4: the first part of a frame holds a bad sequence and the rest never
    comes; the stock reader waits for the whole frame (here: hits the end of the stream)."""
    first_part = frame(TEXT, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80" + b"x" * 1000)[
        :30
    ]
    assert outcome(wsread.read_message, first_part)[0] is UnicodeError
    assert outcome(STOCK_READ, first_part)[0] is WebSocketError


def test_a_message_over_the_cap_is_refused_from_its_header():
    announced = frame(CONT, b"x" * 70_000)[:14]  # the header only: nothing of the payload is sent
    ws, _ = websocket(frame(BINARY, b"a" * 10, fin=False) + announced)
    wsread.limit_messages(ws, 65_536)
    with pytest.raises(wsread.MessageTooBig):
        wsread.read_message(ws)


def test_a_large_message_lets_the_worker_run_other_greenlets(monkeypatch):
    monkeypatch.setattr(wsread, "YIELD_EVERY_S", 0.0)
    data = frame(BINARY, os.urandom(4 * wsread.CHUNK))
    ticks = []

    def other_client() -> None:
        while True:
            ticks.append(1)
            gevent.sleep(0)

    for read, yields in ((STOCK_READ, False), (wsread.read_message, True)):
        ticks.clear()
        other = gevent.spawn(other_client)
        gevent.sleep(0)  # the other client runs once, then waits for its turn
        ws, _ = websocket(data)
        read(ws)
        assert (len(ticks) > 1) is yields
        other.kill()


SENDS = {
    "a text": ("h\u00e9llo", TEXT),
    "an empty text": ("", TEXT),
    "bytes sent as text": (b"raw", TEXT),
    "None sent as text": (None, TEXT),
    "a binary": (b"\x00\x01", BINARY),
    "a bytearray": (bytearray(b"abc"), BINARY),
    "an empty binary": (b"", BINARY),
    "a ping": ("p", PING),
    "a pong": (b"p", PONG),
    "a 64 KiB binary (one fragment)": (os.urandom(wssend.FRAGMENT), BINARY),
    "a 1 MiB text": ("\u2603" * (1024 * 1024 // 3), TEXT),
    "a 1 MiB binary": (os.urandom(1024 * 1024), BINARY),
}


@pytest.mark.parametrize("message, opcode", SENDS.values(), ids=SENDS.keys())
def test_messages_sent_are_gevent_websockets_in_fragments(message, opcode):
    """Up to FRAGMENT bytes the stock writer's very frame; a larger message the same once its
    fragments are joined (RFC 6455 5.4: FIN on the last, continuations after the first)."""
    wire = []
    for send in (STOCK_SEND, wssend.send_frame):
        ws, peer = websocket()
        send(ws, message, opcode)
        wire.append(peer.sent())
    stock, ours = frames_of(wire[0]), frames_of(wire[1])
    if len(stock[0][2]) <= wssend.FRAGMENT:
        assert wire[1] == wire[0]
    assert message_of(ours) == message_of(stock)
    assert [f[1] for f in ours] == [opcode] + [CONT] * (len(ours) - 1)
    assert [f[0] for f in ours] == [0] * (len(ours) - 1) + [0x80]
    assert all(len(f[2]) <= wssend.FRAGMENT for f in ours)


def test_a_large_message_is_sent_in_pieces_letting_the_worker_run(monkeypatch):
    monkeypatch.setattr(wsread, "YIELD_EVERY_S", 0.0)
    ticks = []
    other = gevent.spawn(lambda: [ticks.append(gevent.sleep(0)) for _ in iter(int, 1)])
    gevent.sleep(0)
    ws, peer = websocket()
    wssend.send_frame(ws, b"x" * (4 * wsread.CHUNK), BINARY)
    other.kill()
    fragments = 4 * wsread.CHUNK // wssend.FRAGMENT
    assert len(frames_of(peer.sent())) == fragments
    assert len(ticks) >= fragments - 1  # a turn for the other after each fragment


def test_a_compressed_message_is_fragmented_with_rsv1_on_its_first_frame_only():
    message = "h\u00e9llo " * 40_000 + os.urandom(150 * 1024).hex()
    ws, peer = websocket()
    wsdeflate.agree(ws.handler, wsdeflate.negotiate("permessage-deflate"))
    wssend.send_frame(ws, message, TEXT)
    frames = frames_of(peer.sent())
    assert len(frames) > 1 and frames[0][:2] == (wsdeflate.RSV1, TEXT)
    assert all(f[0] & wsdeflate.RSV1 == 0 for f in frames[1:])
    compressed = b"".join(f[2] for f in frames)
    assert zlib.decompressobj(-15).decompress(compressed + b"\x00\x00\xff\xff").decode() == message


DEADLINE_S = 0.3  # LAB_WS_SEND_TIMEOUT_S here
UNREAD = 4 * 1024 * 1024  # far more than a socket pair holds


@pytest.mark.parametrize("reads_later", [True, False], ids=["reads later", "never reads"])
def test_a_peer_that_does_not_read_gets_1008_and_the_reason_within_the_deadline(monkeypatch, reads_later):
    """Where the stock writer waits for as long as the peer stays: the message's fragment in flight
    is finished, 1008 with the reason follows (if the peer takes them within the deadline again),
    and the connection is ended, its reader woken (EOF)."""
    monkeypatch.setattr(wssend, "SEND_TIMEOUT_S", DEADLINE_S)
    stock_ws, stock_peer = websocket()
    stock_peer.reading.clear()
    with pytest.raises(gevent.Timeout), gevent.Timeout(3 * DEADLINE_S):
        STOCK_SEND(stock_ws, os.urandom(UNREAD), BINARY)

    ws, peer = websocket()
    peer.reading.clear()
    if reads_later:
        gevent.spawn_later(1.5 * DEADLINE_S, peer.reading.set)
    started = time.monotonic()
    with pytest.raises(WebSocketError, match=r"did not read a message within 0\.3 s"):
        wssend.send_frame(ws, os.urandom(UNREAD), BINARY)
    took = time.monotonic() - started
    data = peer.sent()  # reading again: what the kernel held, then the end of the connection
    peer.reader.join(1)
    assert ws.closed and peer.reader.dead, "the connection was not ended"
    assert took < 2 * DEADLINE_S + 0.2, f"the send took {took:.2f}s (deadline {DEADLINE_S}s)"
    assert len(data) < UNREAD
    if reads_later:
        frames = frames_of(data)
        assert [f[1] for f in frames[1:-1]] == [CONT] * (len(frames) - 2) and frames[-1][1] == CLOSE
        assert not any(f[0] & 0x80 for f in frames[:-1]), "the message was sent whole: it was not held up"
        code, reason = struct.unpack("!H", frames[-1][2][:2])[0], frames[-1][2][2:].decode()
        assert code == 1008 and "LAB_WS_SEND_TIMEOUT_S" in reason


def test_a_message_over_the_cap_is_not_sent_but_closed_1009(monkeypatch):
    monkeypatch.setattr(wssend, "SEND_MAX_BYTES", 1000)
    ws, peer = websocket()
    wssend.send_frame(ws, b"x" * 1000, BINARY)  # at the cap: sent
    with pytest.raises(WebSocketError, match="over the send cap"):
        wssend.send_frame(ws, b"x" * 1001, BINARY)
    frames = frames_of(peer.sent())
    assert [(f[1], f[2][:2]) for f in frames] == [(BINARY, b"xx"), (CLOSE, struct.pack("!H", 1009))]
    assert b"LAB_WS_SEND_MAX_BYTES" in frames[1][2] and ws.closed


def test_close_sends_the_status_code_where_stock_sends_the_reason():
    frames = []
    for close in (STOCK_CLOSE, wsclose.close):
        ws, peer = websocket()
        close(ws, 1001, b"going away")
        frames.append(peer.sent())
    assert frames == [b"\x88\x0db'going away'", b"\x88\x0c\x03\xe9going away"]


def test_a_close_reason_is_cut_to_fit_between_characters():
    assert wsclose.payload(1000, "\u00e9" * 100) == b"\x03\xe8" + ("\u00e9" * 61).encode()


SENDABLE = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999]
NOT_SENDABLE = [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]


@pytest.mark.parametrize("code", SENDABLE + NOT_SENDABLE)
def test_close_codes_are_the_sendable_ones(code):
    assert wsclose.is_valid_close_code(None, code) is (code in SENDABLE)


def test_close_codes_differ_from_stock_only_where_stock_was_wrong():
    differs = {
        code for code in range(0, 6000) if wsclose.is_valid_close_code(None, code) != STOCK_VALID(None, code)
    }
    # stock: 1012-1014 refused; 1017-1099, 1101-1999 and 5000+ accepted
    assert differs == {1012, 1013, 1014, *range(1017, 1100), *range(1101, 2000), *range(5000, 6000)}


def test_a_registered_close_code_is_echoed():
    ws, peer = websocket(frame(CLOSE, struct.pack("!H", 1013)))
    assert wsread.read_message(ws) is None
    assert peer.sent()[2:4] == struct.pack("!H", 1013)


def test_patches_are_written_for_the_installed_libraries():
    for patch in patches.all_patches():
        assert patch.check() is patches.stock(patch.target)


@pytest.mark.parametrize(
    "change, says",
    [
        ({"version": "0.9.5"}, "written for gevent-websocket 0.9.5, found 0.10.1"),
        ({"digest": "0123456789ab"}, "the stock code changed"),
        ({"target": "geventwebsocket.websocket:WebSocket.read_everything"}, "no such attribute"),
    ],
)
def test_a_patch_for_other_code_refuses_to_install(change, says):
    patch = wsclose.PATCHES[0]
    changed = patches.Patch(**{**patch.__dict__, **change})
    with pytest.raises(patches.PatchRefused, match=says):
        patches.install((changed,))
    assert WebSocket._is_valid_close_code is wsclose.is_valid_close_code  # nothing was changed


def test_a_patch_turned_off_leaves_the_stock_attribute(monkeypatch):
    monkeypatch.setenv("LAB_FIX_WS_CLOSE_CODES", "0")
    try:
        patches.install(wsclose.PATCHES)
        assert WebSocket._is_valid_close_code is STOCK_VALID
    finally:
        monkeypatch.delenv("LAB_FIX_WS_CLOSE_CODES")
        patches.install(wsclose.PATCHES)
    assert WebSocket._is_valid_close_code is wsclose.is_valid_close_code


OFFERS = {
    "plain": ("permessage-deflate", "permessage-deflate"),
    "client bits without a value": ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
    "no context takeover both ways": (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    ),
    "a smaller server window": (
        "permessage-deflate; server_max_window_bits=10",
        "permessage-deflate; server_max_window_bits=10",
    ),
    "8 bits (zlib cannot), then a plain fallback": (
        "permessage-deflate; server_max_window_bits=8, permessage-deflate",
        "permessage-deflate",
    ),
    "an unknown parameter": ("permessage-deflate; nonsense", None),
    "a repeated parameter": (
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        None,
    ),
    "a window out of range": ("permessage-deflate; client_max_window_bits=16", None),
    "a flag with a value": ("permessage-deflate; server_no_context_takeover=1", None),
    "another extension only": ("x-webkit-deflate-frame", None),
}


@pytest.mark.parametrize("offer, answer", OFFERS.values(), ids=OFFERS.keys())
def test_permessage_deflate_offers_and_answers(offer, answer):
    agreed = wsdeflate.negotiate(offer)
    assert (agreed.answer() if agreed else None) == answer


def deflated(payload: bytes) -> bytes:
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    return (compressor.compress(payload) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


def test_compressed_messages_are_inflated_only_once_agreed():
    body = SNOWMAN * 50_000
    data = frame(TEXT, deflated(body), rsv=0x40)
    assert outcome(wsread.read_message, data)[0] is ProtocolError  # RSV1 without the extension
    ws, _ = websocket(data + frame(BINARY, b"as is"))
    wsdeflate.agree(ws.handler, wsdeflate.negotiate("permessage-deflate"))
    assert wsread.read_message(ws) == body.decode()
    assert wsread.read_message(ws) == b"as is"  # RSV1 clear: not compressed


def test_a_deflate_bomb_stops_at_the_cap():
    ws, _ = websocket(frame(BINARY, deflated(b"\0" * 10_000_000), rsv=0x40))
    wsdeflate.agree(ws.handler, wsdeflate.negotiate("permessage-deflate"))
    wsread.limit_messages(ws, 1_000_000)
    with pytest.raises(wsread.MessageTooBig):
        wsread.read_message(ws)


@pytest.mark.parametrize("offer", ["permessage-deflate", "permessage-deflate; server_no_context_takeover"])
def test_sent_messages_are_compressed_and_decode(offer):
    ws, peer = websocket()
    wsdeflate.agree(ws.handler, wsdeflate.negotiate(offer))
    decompressor = zlib.decompressobj(-15)
    for message in ("h\u00e9llo " * 1000, "", "h\u00e9llo " * 1000):
        wssend.send_frame(ws, message, TEXT)
        wire = peer.sent()
        assert wire[0] == 0x80 | 0x40 | TEXT  # FIN, RSV1, text
        payload = wire[4:] if wire[1] == 126 else wire[2:]
        assert decompressor.decompress(payload + b"\x00\x00\xff\xff").decode() == message
    wssend.send_frame(ws, b"pong", PONG)
    assert peer.sent() == b"\x8a\x04pong"  # control frames are never compressed


def test_a_sender_that_ends_its_stream_starts_a_new_one_next_message():
    finished = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    ended = finished.compress(b"first") + finished.flush(zlib.Z_FINISH)  # a final block: no tail to add
    ws, _ = websocket(frame(BINARY, ended, rsv=0x40) + frame(BINARY, deflated(b"second"), rsv=0x40))
    wsdeflate.agree(ws.handler, wsdeflate.negotiate("permessage-deflate; client_no_context_takeover"))
    assert (wsread.read_message(ws), wsread.read_message(ws)) == (b"first", b"second")


def test_a_message_of_one_frame_the_socket_takes_makes_no_lock():
    """A Semaphore is 1.5 KiB a socket: made only once a frame was not taken at once."""
    ws, peer = websocket()
    wssend.send_frame(ws, "small", TEXT)
    wssend.send_frame(ws, b"p", PONG)
    assert wssend.made_lock(ws.handler) is None
    assert [f[1] for f in frames_of(peer.sent())] == [TEXT, PONG]
    wssend.send_frame(ws, os.urandom(2 * wssend.FRAGMENT), BINARY)  # fragments: under the lock
    assert wssend.made_lock(ws.handler) is not None


def test_frames_built_once_from_greenlets_at_once_to_a_peer_that_does_not_read_get_1008(monkeypatch):
    """As Socket.IO sends (patches/eiows.py: each event's greenlet): one greenlet holds the lock on
    a frame the peer does not take, others wait for it past their deadline; the holder's 1008 and
    reason still reach the peer once it reads (a waiter that gave up does not cut it)."""
    monkeypatch.setattr(wssend, "SEND_TIMEOUT_S", DEADLINE_S)
    ws, peer = websocket()
    peer.reading.clear()
    built = labwssend.text_frame("x" * (UNREAD // 4))
    senders = [gevent.spawn(labwssend.send_frame_within, ws, built) for _ in range(3)]
    gevent.spawn_later(1.5 * DEADLINE_S, peer.reading.set)
    gevent.joinall(senders, timeout=5)
    assert [sender.value for sender in senders] == [False] * 3
    frames = frames_of(peer.sent())
    code, reason = struct.unpack("!H", frames[-1][2][:2])[0], frames[-1][2][2:].decode()
    assert frames[-1][1] == CLOSE and code == 1008 and "LAB_WS_SEND_TIMEOUT_S" in reason


def test_a_frame_built_once_over_the_cap_is_closed_1009(monkeypatch):
    monkeypatch.setattr(wssend, "SEND_MAX_BYTES", 70_000)
    ws, peer = websocket()
    assert labwssend.send_frame_within(ws, labwssend.text_frame("x" * 70_000))  # at the cap: sent
    assert not labwssend.send_frame_within(ws, labwssend.text_frame("x" * 70_001))
    frames = frames_of(peer.sent())
    assert [(f[1], f[2][:2]) for f in frames] == [(TEXT, b"xx"), (CLOSE, struct.pack("!H", 1009))]
    assert b"LAB_WS_SEND_MAX_BYTES" in frames[1][2] and ws.closed
