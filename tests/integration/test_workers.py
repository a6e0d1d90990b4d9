"""Past one process: which worker answered, the broker's health, and one chat across every worker
and replica (a message reaches every client, whichever process holds its socket)."""

from __future__ import annotations

import uuid

import pytest
import websocket

from labctl import hints
from support import chat


def test_debug_request_names_the_process_that_answered(lab, http):
    served_by = http.get(lab.url + "/debug/request").json()["served_by"]
    # On Swarm also the node (compose.swarm.yaml: LAB_NODE_NAME from {{.Node.Hostname}}).
    assert set(served_by) - {"node"} == {"host", "pid"}, served_by
    assert served_by["host"] and isinstance(served_by["pid"], int) and served_by["pid"] > 0


def test_malloc_trim_answers_the_worker_s_memory_before_and_after(lab, http):
    answer = http.post(lab.url + "/debug/malloc-trim")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"rss_kib_before", "rss_kib_after", "served_by"}, body
    # A gunicorn worker with Flask, gevent and Socket.IO loaded: tens of MiB, never more after a trim.
    assert 10_000 < body["rss_kib_after"] <= body["rss_kib_before"] + 1024, body


def test_healthz_says_the_broker_is_reachable(lab, http):
    body = http.get(lab.url + "/healthz").json()
    assert body == {"status": "ok", "broker": "ok"}, (
        f"/healthz: {body}: the app cannot reach the chat's Redis (LAB_BROKER_URL; compose: the redis "
        "service, natively .lab/run/redis.sock)"
    )


def test_chat_reaches_every_client_on_every_worker(lab):
    clients = chat.spread(lab)
    try:
        assert chat.workers(clients) >= 2, (
            f"all {len(clients)} chat clients landed on one worker {clients[0].worker}: the baseline "
            "runs GUNICORN_WORKERS=auto, at least 2 per app container"
        )
        ids = [client.id for client in clients]
        assert len(set(ids)) == len(ids), f"sender ids repeat across workers: {ids}"
        sender, receivers = clients[0], clients[1:]
        missed = chat.who_missed(f"to every worker {uuid.uuid4().hex[:8]}", sender, receivers)
        assert missed == [], (
            f"a message from a client on {sender.worker} missed {len(missed)} of {len(receivers)} "
            f"clients, on {sorted({c.worker for c in missed})} ({chat.workers(clients)} workers in all): "
            + hints.scenario("chat-split-brain")
        )
        sender.conn.settimeout(0.5)
        with pytest.raises(websocket.WebSocketTimeoutException):
            sender.conn.recv()  # a sender never gets its own message back, from any worker
    finally:
        chat.close_all(clients)
