"""Two browser contexts chat over Socket.IO through nginx with the official client (vendored from
npm): one forced to long-polling, one upgraded to a websocket; each message reaches the other."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from playwright.sync_api import Page

from browser.browsing import goto, say, wait_for, wait_for_chat
from support.lab import Lab


def open_sio_page(new_page: Callable[[], Page], url: str) -> Page:
    page = new_page()
    goto(page, url)
    wait_for(
        page, "window.lab && lab.sio && lab.sio.info", what="the Socket.IO client to connect and get info"
    )
    return page


def heard(page: Page, text: str) -> dict:
    return wait_for_chat(page, "sio", text, "Socket.IO, relayed through the Redis manager")


def test_two_browsers_chat_over_socketio_one_on_polling(lab: Lab, new_page, state_shot):
    polling = open_sio_page(new_page, lab.url + "/?sio=polling")
    upgraded = open_sio_page(new_page, lab.url + "/")
    wait_for(
        upgraded,
        "lab.sio.transports.at(-1) === 'websocket'",
        what="the default client's upgrade to a websocket (Upgrade/Connection on /socket.io/)",
    )
    for page in (polling, upgraded):
        info = page.evaluate("lab.sio.info")
        assert info["scheme"] == "https" and info["host"] == lab.host, info

    hello, reply = f"from polling {uuid.uuid4().hex[:8]}", f"from websocket {uuid.uuid4().hex[:8]}"
    say(polling, hello, "sio")
    got = heard(upgraded, hello)
    say(upgraded, reply, "sio")
    heard(polling, reply)
    state_shot(polling, "socketio-chat-polling")

    # Every engine it opened (a reconnect opens another) and every upgrade: polling, never websocket.
    opened = polling.evaluate("lab.sio.transports")
    assert opened and set(opened) == {"polling"}, (
        f"the forced client left long-polling: {opened}; events {polling.evaluate('lab.sio.events')}"
    )
    assert polling.text_content("#sio-transport") == "polling"
    assert upgraded.text_content("#sio-transport") == "websocket"
    assert set(got) == {"from", "msg"} and got["from"], got
    assert not polling.evaluate(f"lab.sio.received.some(m => m.msg === {json.dumps(hello)})"), (
        "the sender got its own Socket.IO chat back: include_self must be False"
    )
