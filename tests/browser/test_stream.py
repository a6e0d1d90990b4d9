"""The lab page's stream, as a browser's EventSource receives it: each event as it is written.

(stream-buffered is checked over HTTP/1.1, tests/scenarios: nginx 1.22 held the events for an
HTTP/1.1 client and passed them on to Chromium's HTTP/2 as they came; see its README.)"""

from __future__ import annotations

from collections.abc import Callable

from playwright.sync_api import Page

from browser.browsing import wait_for

STREAM_DONE_S = 15.0  # 5 events, 0.5 s apart, and the page's load


def _stream(page: Page) -> dict:
    wait_for(page, "lab.stream && lab.stream.done", timeout=STREAM_DONE_S, what="the page's stream to end")
    return page.evaluate("lab.stream")


def test_stream_arrives_as_written(stack_under: Callable, open_lab_page: Callable[[], Page], state_shot):
    stack_under("")
    page = open_lab_page()
    stream = _stream(page)
    assert [e["id"] for e in stream["events"]] == ["1", "2", "3", "4", "5"], stream
    assert stream["asWritten"] is True, (
        f"the page received the events at {[round(e['arrivedS'], 2) for e in stream['events']]} s: "
        "the proxy buffers /stream/ (proxy_buffering off on its location)"
    )
    state_shot(page, "stream-as-written")
