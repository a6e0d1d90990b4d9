"""socketio-no-sticky's check: polling sessions as a client runs them (a long-poll held open while
it POSTs), over fresh connections, and how many of their requests were refused.

A session lives in one worker; a request of it that reaches the other is answered 400 "Invalid
session". Sequential requests over one kept-alive connection could all reach the same worker by
luck: a client's long-poll and its POSTs travel side by side, as here.
"""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor

from labctl import probe
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

SESSIONS = 6
ROUNDS = 3  # long-poll + POST pairs per session
POLL_S = 3.0  # a long-poll whose POST went to the other worker waits for pingInterval: not that long
BASE = "/socket.io/?EIO=4&transport=polling"
# A Socket.IO connect, then events with an ack id: each queues an answer, which ends the long-poll.
PACKETS = [b"40"] + [f'42{n}["echo",{n}]'.encode() for n in range(1, ROUNDS)]


def session(endpoint: Endpoint, pool: ThreadPoolExecutor) -> list[probe.Reply]:
    hello = probe.request(endpoint, "GET", BASE)
    if hello.status != 200:
        return [hello]
    sid = json.loads(hello.body[1:])["sid"]
    # A browser sends back whatever cookie the answer set (the baseline's routing cookie).
    cookie = hello.headers.get("set-cookie", "").split(";")[0]
    headers = {"Cookie": cookie} if cookie else {}
    replies = []
    for packet in PACKETS:
        poll = pool.submit(
            probe.request, endpoint, "GET", f"{BASE}&sid={sid}", headers, None, None, None, POLL_S
        )
        post = probe.request(
            endpoint, "POST", f"{BASE}&sid={sid}", {**headers, "Content-Type": "text/plain"}, packet
        )
        replies.append(post)
        # A poll that times out: its worker never got the POST (the other one refused it).
        with contextlib.suppress(TimeoutError):
            replies.append(poll.result())
    return replies


def observe(endpoint: Endpoint) -> Observation:
    try:
        with ThreadPoolExecutor(2) as pool:
            replies = [reply for _ in range(SESSIONS) for reply in session(endpoint, pool)]
    except (OSError, ValueError, KeyError) as error:
        return Observation(None, f"the polling sessions failed: {type(error).__name__}: {error}")
    refused = [r for r in replies if r.status == 400 and b"Invalid session" in r.body]
    other = [r for r in replies if r.status not in (200, 400)]
    seen = f"{len(refused)} of {len(replies)} requests of {SESSIONS} polling sessions answered 400"
    if refused:
        seen += f" {refused[0].body.decode(errors='replace')[:120]}"
    if other:
        seen += f"; {len(other)} answered {sorted({r.status for r in other})}"
    return Observation(classify(bool(refused), not refused and not other), seen)
