"""One chat across the swarm's app tasks: a message from a client on one task reaches the clients
on the others, through the redis service."""

from __future__ import annotations

import uuid

from support import chat
from support.swarmctl import task_hosts


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
            f"clients on the other tasks {sorted({c.worker[0] for c in missed})}: is the redis service "
            "reachable from every task (LAB_BROKER_URL, /healthz's broker)?"
        )
        print(f"chat: {len(clients)} clients on {len(on)} tasks; a message reached {len(receivers)} others")
    finally:
        chat.close_all(clients)
