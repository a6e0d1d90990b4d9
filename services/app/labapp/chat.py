"""The chat room behind /ws/chat: who is in it, and how a message reaches every other member.

Two rooms, one interface (``Room``):

- ``RedisRoom`` (the baseline): a message is published to a Redis pub/sub channel; each worker
  runs one relay greenlet subscribed to it, which hands every message to that worker's own
  members. So every member gets it, whichever worker or replica holds its socket. Sender ids come
  from one Redis counter (in blocks), unique across all of them; the relay skips the sender.
- ``LocalRoom`` (``LAB_FIX_BROKER=0``): the members of this process only. With two workers a
  message reaches only the clients that share the sender's process (chat-split-brain).

A broker that is down or slow touches chat only. Every Redis call has a timeout, the relay is a
greenlet of its own (no request greenlet waits on it), and sends to members are bounded in time
(LAB_WS_SEND_TIMEOUT_S: a member that does not take a frame is cut, not waited for).
When the relay loses Redis it closes its members with 1013 and a reason: pub/sub keeps no history,
so whatever was published meanwhile is gone for them, and saying so beats a silent gap. It
reconnects with backoff; until then new clients get the same 1013, and /healthz says
``"broker": "unreachable"`` (the app stays in nginx's rotation: everything else works).
"""

from __future__ import annotations

import itertools
import json
import logging
import random
import time
from collections.abc import Callable
from typing import Any, Protocol

import gevent
import gevent.event
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import wssend
from .patches.wsclose import Close

log = logging.getLogger("labapp.chat")

EXTENSION = "lab.chat"  # the worker's room in app.extensions (create_app puts it there)
CHANNEL = "lab:chat"
SENDER_IDS = "lab:chat:sender-ids"  # INCRBY: blocks of ids, unique across every worker and replica
# Each relay reserves a block as it subscribes, so a join never waits for Redis. A join that did
# (an INCR each) could miss a message published meanwhile (the relay may deliver it before the
# joining greenlet has read its id and added the socket), and cost 34.0 KiB per idle chat socket
# instead of 29.7 (make bench, 6000 connections).
ID_BLOCK = 1_000_000
BROKER_DOWN_REASON = "chat broker unreachable: reconnect in a moment"
BROKER_OK, BROKER_UNREACHABLE, BROKER_OFF = "ok", "unreachable", "off"

REDIS_TIMEOUT_S = 2.0  # connect, and each command's reply
PING_AFTER_S = 1.0  # a quiet subscription is pinged after this: a hung Redis shows within 3 s
POOL_SIZE = 16  # Redis connections per worker for publishes and ids (greenlets queue for one)
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.1, 2.0


class BrokerDown(Exception):
    """Chat cannot take this client or message now: the broker is unreachable."""


class Room(Protocol):
    state: str  # BROKER_OK, BROKER_UNREACHABLE or BROKER_OFF (no broker: LocalRoom)

    def start(self) -> None: ...
    def watch(self, on_change: Callable[[str], None]) -> None: ...
    def reachable(self) -> bool: ...
    def join(self, ws: Any) -> int: ...
    def leave(self, client_id: int) -> None: ...
    def publish(self, sender: int, text: str) -> None: ...


def chat_frame(sender: int, text: str) -> str:
    return json.dumps({"from": sender, "msg": text})


class Members:
    """This worker's sockets in the room, by client id."""

    def __init__(self) -> None:
        self._sockets: dict[int, Any] = {}

    def add(self, client_id: int, ws: Any) -> None:
        self._sockets[client_id] = ws

    def remove(self, client_id: int) -> None:
        self._sockets.pop(client_id, None)

    def __len__(self) -> int:
        return len(self._sockets)

    def relay(self, sender: int, frame: str) -> None:
        """``frame`` to every member but the sender; one that cannot take it is cut and leaves.
        Encoded once for all of them (make bench: ws.broadcast_ms)."""
        wire = wssend.text_frame(frame)
        for client_id, ws in list(self._sockets.items()):
            if client_id != sender and not wssend.send_frame_within(ws, wire):
                self.remove(client_id)

    def close_all(self, code: int, reason: str) -> None:
        for client_id, ws in list(self._sockets.items()):
            self.remove(client_id)
            ws.close(code, reason)


class LocalRoom:
    """One process's members; the sender's own greenlet relays (no broker, nothing shared)."""

    state = BROKER_OFF

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.members = Members()

    def start(self) -> None:
        pass

    def watch(self, on_change: Callable[[str], None]) -> None:
        pass  # no broker: the state never changes

    def reachable(self) -> bool:
        return True

    def join(self, ws: Any) -> int:
        client_id = next(self._ids)
        self.members.add(client_id, ws)
        return client_id

    def leave(self, client_id: int) -> None:
        self.members.remove(client_id)

    def publish(self, sender: int, text: str) -> None:
        self.members.relay(sender, chat_frame(sender, text))


class IdBlock:
    """Sender ids handed out from a block reserved in Redis (INCRBY returns the block's last id)."""

    def __init__(self) -> None:
        self._next = self._end = 0

    def fill(self, reserve: Callable[[int], int]) -> None:
        end = reserve(ID_BLOCK) + 1
        self._next, self._end = end - ID_BLOCK, end

    def take(self, reserve: Callable[[int], int]) -> int:
        if self._next >= self._end:
            # After a million joins on one subscription, or before any: reserve now. Two greenlets
            # may both do so: each then uses its own block, and ids stay unique.
            self.fill(reserve)
        self._next += 1
        return self._next - 1

    def discard(self) -> None:
        """After losing Redis: a restarted Redis counts from 0 again, so no old id may be used."""
        self._next = self._end = 0


class Backoff:
    """Exponential delays with jitter: workers that lost Redis together do not return together."""

    def __init__(self) -> None:
        self.attempt = 0

    def reset(self) -> None:
        self.attempt = 0

    def next_delay(self) -> float:
        ceiling = min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2**self.attempt)
        self.attempt += 1
        return random.uniform(ceiling / 2, ceiling)


class RedisRoom:
    """Members of this worker, messages through Redis pub/sub (see the module's docstring)."""

    def __init__(self, url: str) -> None:
        pool = redis.BlockingConnectionPool.from_url(
            url,
            max_connections=POOL_SIZE,
            timeout=REDIS_TIMEOUT_S,  # waiting for a free connection of the pool
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
            # No retries inside redis-py: a failed call fails now, and the relay has its own backoff.
            retry=Retry(NoBackoff(), 0),
            decode_responses=True,
        )
        self._redis = redis.Redis(connection_pool=pool)
        self.members = Members()
        self.state = BROKER_UNREACHABLE
        self._ids = IdBlock()
        self._relay: gevent.Greenlet | None = None
        self._watchers: list[Callable[[str], None]] = []
        self._answered = gevent.event.Event()  # the relay's first answer: subscribed, or lost

    def start(self) -> None:
        """The relay greenlet (gunicornhooks' post_worker_init, once per worker)."""
        if self._relay is None:
            self._relay = gevent.spawn(self._relay_forever)

    def watch(self, on_change: Callable[[str], None]) -> None:
        """``on_change(state)`` at every change of the broker's state, in order, from the relay's
        greenlet (so it must not block). Every change: a watcher that looked every so often missed
        a broker lost within one look of its return, and never told that worker's clients."""
        self._watchers.append(on_change)

    def reachable(self) -> bool:
        """Whether chat can take a client now. A worker just started waits for its relay's first
        answer from the broker (at most REDIS_TIMEOUT_S): without the wait, a client that reached
        it before its first SUBSCRIBE was refused as if the broker were down, and came back (a
        reconnect at every reload); once answered, never waits."""
        self._answered.wait(REDIS_TIMEOUT_S)
        return self.state == BROKER_OK

    def join(self, ws: Any) -> int:
        if not self.reachable():
            raise BrokerDown(BROKER_DOWN_REASON)
        try:
            client_id = self._ids.take(self._reserve_ids)
        except redis.RedisError as error:
            raise BrokerDown(BROKER_DOWN_REASON) from error
        self.members.add(client_id, ws)
        return client_id

    def leave(self, client_id: int) -> None:
        self.members.remove(client_id)

    def _reserve_ids(self, count: int) -> int:
        return int(self._redis.incrby(SENDER_IDS, count))

    def publish(self, sender: int, text: str) -> None:
        try:
            self._redis.publish(CHANNEL, chat_frame(sender, text))
        except redis.RedisError as error:
            raise BrokerDown(BROKER_DOWN_REASON) from error

    def _relay_forever(self) -> None:
        backoff = Backoff()
        while True:
            pubsub = self._redis.pubsub()
            try:
                self._relay_until_lost(pubsub, backoff)
            except (redis.RedisError, OSError) as error:
                self._lost(error)
            except Exception as error:  # a bug must not end this worker's chat for good
                log.exception("chat relay failed")
                self._lost(error)
            finally:
                pubsub.close()
            gevent.sleep(backoff.next_delay())

    def _relay_until_lost(self, pubsub: Any, backoff: Backoff) -> None:
        pubsub.subscribe(CHANNEL)
        # An answer is due since then: the SUBSCRIBE's, later a PING's.
        awaiting: float | None = time.monotonic()
        while True:
            message = pubsub.get_message(timeout=PING_AFTER_S)
            if message is None and awaiting is not None and time.monotonic() - awaiting > REDIS_TIMEOUT_S:
                # One more look, without waiting: a request that keeps the worker's CPU (a long
                # upload) can keep this greenlet from running past its timeout, answer or not.
                message = pubsub.get_message(timeout=0)
                if message is None:
                    raise redis.TimeoutError(f"no answer from the broker for {REDIS_TIMEOUT_S:g} s")
            if message is None:
                if awaiting is None:  # a quiet subscription: is the broker still there?
                    pubsub.ping()
                    awaiting = time.monotonic()
                continue
            awaiting = None
            if message["type"] == "subscribe":
                self._subscribed()
                backoff.reset()
            elif message["type"] == "message":
                self._deliver(message["data"])

    def _subscribed(self) -> None:
        self._ids.fill(self._reserve_ids)  # before any join: joins never wait for Redis
        if self.state != BROKER_OK:
            log.info("chat broker reachable: relaying %s", CHANNEL)
        self._set_state(BROKER_OK)
        self._answered.set()

    def _deliver(self, frame: str) -> None:
        try:
            sender = int(json.loads(frame)["from"])
        except (ValueError, KeyError, TypeError):
            log.warning("ignored a message on %s that is not a chat frame: %.80r", CHANNEL, frame)
            return
        self.members.relay(sender, frame)

    def _lost(self, error: Exception) -> None:
        if self.state == BROKER_OK:
            log.warning("chat broker lost (%s): closing %d sockets with 1013", error, len(self.members))
        self._set_state(BROKER_UNREACHABLE)
        self._ids.discard()
        self.members.close_all(Close.TRY_AGAIN_LATER, BROKER_DOWN_REASON)
        self._answered.set()

    def _set_state(self, state: str) -> None:
        if state != self.state:
            self.state = state
            for on_change in self._watchers:
                on_change(state)


def make_room(fix_broker: bool, broker_url: str) -> Room:
    return RedisRoom(broker_url) if fix_broker else LocalRoom()


def room_of(app: Any) -> Room:
    """The room of a Flask app (the relay runs once the worker has started it)."""
    room: Room = app.extensions[EXTENSION]
    return room
