"""labapp.chat without a broker or a network: who gets a message, who is cut, the backoff."""

from __future__ import annotations

import json
from types import SimpleNamespace

import gevent
import pytest
from gevent import socket as gsocket

from labapp import chat
from labapp.patches import wssend
from labapp.patches.wsclose import Close
from labctl import wsclient


class FakeSocket:
    """What the rooms use of a gevent-websocket connection (its handler's socket, close, closed),
    over a real socket pair: the frames the relay writes arrive at the other end."""

    def __init__(self, broken: bool = False) -> None:
        ours, self.peer = gsocket.socketpair()
        self.handler = SimpleNamespace(socket=ours)
        self.closes: list[tuple[int, str]] = []
        self.closed = False
        if broken:  # the client is gone: a send fails (EPIPE)
            self.peer.close()

    def close(self, code: int, reason: str) -> None:
        self.closes.append((code, reason))
        self.closed = True

    @property
    def frames(self) -> list[str]:
        """The text frames written to this socket so far."""
        self.peer.setblocking(False)
        data = b""
        try:
            while chunk := self.peer.recv(65536):
                data += chunk
        except BlockingIOError:
            pass
        texts = []
        while data:
            size = 2 + wsclient.extra_header_size(data[1])
            opcode, length, _mask = wsclient.parse_header(data[:size])
            assert opcode == wsclient.OP_TEXT and data[0] & 0x80, "a whole text frame"
            texts.append(data[size : size + length].decode())
            data = data[size + length :]
        return texts


def test_local_room_relays_to_every_other_member_never_the_sender():
    room = chat.LocalRoom()
    sockets = [FakeSocket() for _ in range(3)]
    ids = [room.join(ws) for ws in sockets]
    assert len(set(ids)) == 3
    room.publish(ids[0], "hello")
    assert sockets[0].frames == []
    for ws in sockets[1:]:
        assert [json.loads(f) for f in ws.frames] == [{"from": ids[0], "msg": "hello"}]
    assert room.state == chat.BROKER_OFF


def test_a_member_that_cannot_take_a_frame_is_cut_and_leaves():
    members = chat.Members()
    healthy, dead = FakeSocket(), FakeSocket(broken=True)
    members.add(1, healthy)
    members.add(2, dead)
    members.relay(3, chat.chat_frame(3, "first"))
    assert dead.closed and len(members) == 1
    members.relay(3, chat.chat_frame(3, "second"))
    assert [json.loads(f)["msg"] for f in healthy.frames] == ["first", "second"]


def test_a_member_that_stops_reading_is_cut_after_the_send_timeout(monkeypatch):
    monkeypatch.setattr(wssend, "SEND_TIMEOUT_S", 0.2)
    members = chat.Members()
    stuck = FakeSocket()  # never reads: the frame below overflows the socket's buffer
    members.add(1, stuck)
    with gevent.Timeout(5, AssertionError("the relay waited on the stuck member past its timeout")):
        members.relay(2, "x" * (8 * 1024 * 1024))
    assert stuck.closed and len(members) == 0


def test_close_all_tells_each_member_why():
    members = chat.Members()
    sockets = [FakeSocket(), FakeSocket()]
    for client_id, ws in enumerate(sockets):
        members.add(client_id, ws)
    members.close_all(Close.TRY_AGAIN_LATER, chat.BROKER_DOWN_REASON)
    assert all(ws.closes == [(1013, chat.BROKER_DOWN_REASON)] for ws in sockets)
    assert len(members) == 0


def test_a_redis_room_whose_relay_never_answers_refuses_after_the_wait(monkeypatch):
    monkeypatch.setattr(chat, "REDIS_TIMEOUT_S", 0.1)
    room = chat.RedisRoom("redis://redis:6379/0")  # never started: no relay, no connection
    assert room.state == chat.BROKER_UNREACHABLE
    with pytest.raises(chat.BrokerDown, match="unreachable"):
        room.join(FakeSocket())


@pytest.fixture
def fresh_room(monkeypatch) -> chat.RedisRoom:
    """A worker's room before its relay's first answer (the relay's Redis calls answered in place)."""
    room = chat.RedisRoom("redis://redis:6379/0")
    monkeypatch.setattr(room, "_reserve_ids", lambda count: count)
    return room


def test_a_client_of_a_worker_just_started_waits_for_the_first_subscribe(fresh_room):
    joining = gevent.spawn(fresh_room.join, FakeSocket())
    gevent.sleep(0.05)
    assert not joining.ready(), "refused before the relay's first answer"
    fresh_room._subscribed()
    assert joining.get(timeout=1) >= 1


def test_a_broker_down_at_start_refuses_at_its_first_answer_then_at_once(fresh_room):
    joining = gevent.spawn(fresh_room.join, FakeSocket())
    gevent.sleep(0.05)
    fresh_room._lost(ConnectionError("connection refused"))
    with pytest.raises(chat.BrokerDown):
        joining.get(timeout=1)
    with gevent.Timeout(0.5, AssertionError("a room that had its answer waited again")):
        assert not fresh_room.reachable()


def test_ids_come_from_reserved_blocks_and_a_lost_broker_drops_the_block(monkeypatch):
    monkeypatch.setattr(chat, "ID_BLOCK", 3)
    counter = {"value": 0, "calls": 0}

    def incrby(count: int) -> int:
        counter["value"] += count
        counter["calls"] += 1
        return counter["value"]

    ids = chat.IdBlock()
    ids.fill(incrby)  # the relay does so as it subscribes: the joins below never wait for Redis
    assert [ids.take(incrby) for _ in range(3)] == [1, 2, 3] and counter["calls"] == 1
    assert ids.take(incrby) == 4 and counter["calls"] == 2  # a block used up: the next one
    ids.discard()  # the rest of that block is never handed out
    assert ids.take(incrby) == 7 and counter["calls"] == 3


def test_backoff_grows_with_jitter_up_to_its_ceiling_and_resets():
    backoff = chat.Backoff()
    delays = [backoff.next_delay() for _ in range(8)]
    ceilings = [min(chat.BACKOFF_MAX_S, chat.BACKOFF_FIRST_S * 2**n) for n in range(8)]
    assert all(c / 2 <= d <= c for d, c in zip(delays, ceilings, strict=True)), delays
    assert ceilings[-1] == chat.BACKOFF_MAX_S
    backoff.reset()
    assert backoff.next_delay() <= chat.BACKOFF_FIRST_S
