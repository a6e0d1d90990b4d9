"""Two browser contexts chat through nginx over wss: each message reaches the other one only.
When the worker holding the page's socket restarts, the page says so and reconnects by itself."""

from __future__ import annotations

import json
import os
import re
import signal
import uuid
from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from browser.browsing import say, wait_for, wait_for_chat
from labctl import native, stack
from labctl.procs import children
from support.lab import Lab


def wait_for_message(page: Page, text: str) -> dict:
    return wait_for_chat(page, "chat", text, "relayed by /ws/chat through nginx")


def test_two_browsers_chat_over_wss(lab: Lab, open_lab_page: Callable[[], Page], state_shot):
    alice, bob = open_lab_page(), open_lab_page()
    for page in (alice, bob):
        chat = page.evaluate("lab.chat")
        assert chat["url"] == f"{lab.ws_url}/ws/chat?whoami=1", chat
        assert [e["state"] for e in chat["events"]] == ["connecting", "open"], (
            f"the chat socket did not open over wss: {chat['events']} (see the nginx /ws/ location: "
            "Upgrade/Connection headers, proxy_http_version 1.1)"
        )

    you = [page.evaluate("lab.chat.you") for page in (alice, bob)]
    assert all(set(hello["served_by"]) == {"host", "pid"} for hello in you), you
    assert you[0]["you"] != you[1]["you"], f"two pages got the same chat id: {you}"
    assert f"You are #{you[0]['you']}" in alice.text_content("#chat-you")

    hello, reply = f"hello from alice {uuid.uuid4().hex[:8]}", f"hi alice {uuid.uuid4().hex[:8]}"
    say(alice, hello)
    heard = wait_for_message(bob, hello)
    say(bob, reply)
    answered = wait_for_message(alice, reply)

    assert set(heard) == {"from", "msg"} and set(answered) == {"from", "msg"}, (heard, answered)
    assert heard["from"] != answered["from"], f"both messages claim the same sender: {heard}, {answered}"
    echoed_to_sender = alice.evaluate(f"lab.chat.received.some(m => m.msg === {json.dumps(hello)})")
    assert not echoed_to_sender, "the chat sent alice's own message back to her: relay must skip the sender"
    assert alice.evaluate("lab.chat.events.at(-1).state") == "open", "alice's socket closed during the chat"
    state_shot(alice, "chatting")


def test_the_page_reconnects_with_backoff_when_its_worker_restarts(
    lab: Lab, open_lab_page: Callable[[], Page], state_shot
):
    if stack.running_mode() != "native" or "LAB_URL" in os.environ:
        pytest.skip("restarting gunicorn's workers needs this checkout's native stack")
    page = open_lab_page()
    master = int(native.GUNICORN_PID.read_text())
    old_workers = children(master)
    assert page.evaluate("lab.chat.you.served_by.pid") in old_workers
    os.kill(master, signal.SIGHUP)  # gunicorn's graceful reload: new workers, the old ones stop
    waiting = wait_for(
        page,
        "lab.chat.events.find(e => e.state === 'waiting')",
        what="the page to see its socket closed and schedule a reconnect",
    )
    closed = page.evaluate("lab.chat.events.find(e => e.state === 'closed')")
    assert closed["code"] in (1001, 1012) and closed["reason"], (
        f"the restarting worker should close the socket with 1001/1012 and a reason, not cut it: {closed}"
    )
    assert re.search(r"reconnecting in \d+\.\d s", waiting["text"]), waiting
    assert 0 < waiting["delay_ms"] <= 500, f"the first retry waits 250-500 ms (jittered): {waiting}"
    # A reconnect may land on an old worker in its last moment (1001 again, a longer wait): the
    # page keeps trying until a new worker holds its socket.
    hello = wait_for(
        page,
        f"lab.chat.events.at(-1).state === 'open' && lab.chat.you && "
        f"!{json.dumps(sorted(old_workers))}.includes(lab.chat.you.served_by.pid) && lab.chat.you",
        timeout=30,
        what="the page to reconnect to one of the new workers",
    )
    assert hello["served_by"]["pid"] in children(master), hello
    state_shot(page, "chat-reconnected")
