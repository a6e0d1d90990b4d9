"""One chat across the swarm's app tasks, raw (/ws/chat) and Socket.IO: a message from a client on
one task reaches the clients on the others, through the redis service. On several nodes the tasks
are one per node (tests/swarm/test_nodes.py), so the message crosses nodes: the nodes it reached
are named."""

from __future__ import annotations

import uuid

from labctl import sioclient as sio
from labctl import swarm
from support import chat
from support.swarmctl import task_hosts

BROKER_HINT = "is the redis service reachable from every task (LAB_BROKER_URL, /healthz's broker)?"


def nodes_of(hosts: set[str]) -> list[str]:
    """The nodes the app tasks of ``hosts`` run on (one node: the host engine, '')."""
    names = swarm.node_names()
    return sorted({names.get(t.node_id, "") for t in swarm.running_tasks("app") if t.host in hosts})


def test_a_message_reaches_clients_on_every_task(lab):
    clients: list[chat.ChatClient] = []
    try:
        # Which task a socket lands on is nginx's (tasks.app's order, rotated): join until the
        # clients are on every task, at most chat.MAX_CLIENTS.
        hosts = task_hosts()
        while {c.worker[0] for c in clients} != hosts and len(clients) < chat.MAX_CLIENTS:
            clients.append(chat.join(lab))
        on = {c.worker[0] for c in clients}
        assert on == hosts, f"{len(clients)} chat clients landed on tasks {sorted(on)} of {sorted(hosts)}"
        sender = clients[0]
        receivers = [c for c in clients if c.worker[0] != sender.worker[0]]
        missed = chat.who_missed(f"across tasks {uuid.uuid4().hex[:8]}", sender, receivers)
        assert missed == [], (
            f"a message from a client on task {sender.worker[0]} missed {len(missed)} of {len(receivers)} "
            f"clients on the other tasks {sorted({c.worker[0] for c in missed})}: {BROKER_HINT}"
        )
        print(
            f"chat: {len(clients)} clients on {len(on)} tasks (nodes {nodes_of(on)}); "
            f"a message reached {len(receivers)} others"
        )
    finally:
        chat.close_all(clients)


def test_a_socketio_message_reaches_clients_on_every_task(lab):
    """Websocket clients on every task, and one polling client (its every poll routed by nginx to
    the worker holding its session, wherever that task runs)."""
    hosts = task_hosts()
    clients = sio.spread(lab.endpoint, "websocket", over=hosts, key=lambda client: client.worker[0])
    try:
        clients.append(sio.connect(lab.endpoint, "polling"))
        on = {c.worker[0] for c in clients}
        assert on == hosts, f"{len(clients)} Socket.IO clients sat on tasks {sorted(on)} of {sorted(hosts)}"
        sender = clients[0]
        receivers = [c for c in clients[1:] if c.worker[0] != sender.worker[0]]
        text = f"socket.io across tasks {uuid.uuid4().hex[:8]}"
        relayed = sio.chat_relayed(sender, receivers, text)
        missed = [client.worker for client, got in relayed if got is None]
        assert all(got == {"from": sender.sid, "msg": text} for _, got in relayed if got), [
            (client.worker, got) for client, got in relayed
        ]
        assert missed == [], (
            f"a Socket.IO chat message from task {sender.worker[0]} missed clients on "
            f"{sorted(set(missed))}: {BROKER_HINT}"
        )
        print(
            f"Socket.IO chat: {len(clients)} clients on {len(on)} tasks (nodes {nodes_of(on)}); "
            f"a message reached {len(receivers)} others"
        )
    finally:
        sio.close_all(clients)
