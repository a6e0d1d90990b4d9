"""Two browser contexts chat through nginx over wss: each message reaches the other one only."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from playwright.sync_api import Page

from browser.browsing import wait_for
from support.lab import Lab


def say(page: Page, text: str) -> None:
    """Type into the chat box and press send, as a person would."""
    page.fill("#chat-input", text)
    page.click("#chat-form button")


def wait_for_message(page: Page, text: str) -> dict:
    return wait_for(
        page,
        f"lab.chat.received.find(m => m.msg === {json.dumps(text)})",
        what=f"the chat message {text!r} to arrive (relayed by /ws/chat through nginx)",
    )


def test_two_browsers_chat_over_wss(lab: Lab, open_lab_page: Callable[[], Page], state_shot):
    alice, bob = open_lab_page(), open_lab_page()
    for page in (alice, bob):
        chat = page.evaluate("lab.chat")
        assert chat["url"] == f"{lab.ws_url}/ws/chat", chat
        assert [e["state"] for e in chat["events"]] == ["connecting", "open"], (
            f"the chat socket did not open over wss: {chat['events']} (see the nginx /ws/ location: "
            "Upgrade/Connection headers, proxy_http_version 1.1)"
        )

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
