"""Chromium over QUIC (`--origin-to-force-quic-on`, the lab's CA in its own trust store): the page
loads over HTTP/3, two users chat (the websocket falls back to HTTP/1.1 over TCP: nginx offers
no RFC 9220 websockets over HTTP/3) and a form upload arrives intact over HTTP/3.

Where the stack speaks no HTTP/3 (Debian 12's native nginx) these are "not applicable"; CI runs
them on the compose path, whose nginx has the module."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Playwright

from browser.browsing import VIEWPORT, goto, launch, quic_flags, wait_for
from browser.test_chat import say, wait_for_message
from browser.test_upload import upload_through_form
from labctl import stack
from support.lab import Lab, http3_port_or_skip, pattern_file

UPLOAD_BYTES = 16 * 1024 * 1024
NAVIGATION_PROTOCOL = "performance.getEntriesByType('navigation')[0].nextHopProtocol"


@pytest.fixture(scope="module")
def quic_chromium(
    playwright: Playwright, tmp_path_factory: pytest.TempPathFactory, lab: Lab
) -> Iterator[Browser]:
    port = http3_port_or_skip(lab)
    origin = f"{urlsplit(lab.url).hostname}:{port}"
    browser = launch(playwright, tmp_path_factory.mktemp("chromium-quic"), lab.ca, quic_flags(origin))
    yield browser
    browser.close()


@pytest.fixture
def quic_page(lab: Lab, quic_chromium: Browser) -> Iterator[Callable[[], Page]]:
    """Pages on /, each in its own context, once the page has fetched /debug/request and its chat
    socket settled; closed after the test."""
    contexts = []

    def open_page() -> Page:
        context = quic_chromium.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        goto(page, lab.url + "/")
        wait_for(page, "window.lab && lab.request !== null", what="the page to fetch /debug/request")
        wait_for(
            page, "lab.chat.events.some(e => e.state !== 'connecting')", what="the chat socket to settle"
        )
        return page

    yield open_page
    for context in contexts:
        context.close()


def protocols(page: Page, path: str) -> list[str]:
    """The protocol of each of the page's requests to ``path`` (Resource Timing's nextHopProtocol)."""
    entries = "performance.getEntriesByType('resource')"
    matching = f"{entries}.filter(e => new URL(e.name).pathname === {json.dumps(path)})"
    return page.evaluate(f"{matching}.map(e => e.nextHopProtocol)")


def logged(uri: str, since: float, wait_s: float = 5.0) -> list[dict]:
    """nginx's access-log entries for the path ``uri`` (any query: the page's chat asks
    ``?whoami=1``) written since ``since`` (a websocket's only once it closed)."""
    deadline = time.monotonic() + wait_s
    while True:
        entries = [
            entry
            for line in stack.access_log_entries()
            if line.startswith("{") and (entry := json.loads(line))["uri"].partition("?")[0] == uri
        ]
        recent = [
            e for e in entries if time.mktime(time.strptime(e["time"][:19], "%Y-%m-%dT%H:%M:%S")) >= since - 1
        ]
        if recent or time.monotonic() > deadline:
            return recent
        time.sleep(0.2)


def test_the_page_loads_over_http3(lab: Lab, quic_page: Callable[[], Page]):
    page = quic_page()
    assert page.evaluate(NAVIGATION_PROTOCOL) == "h3", (
        f"Chromium loaded the page over {page.evaluate(NAVIGATION_PROTOCOL)}, not h3 (QUIC on UDP "
        f"{urlsplit(lab.url).port}: published? listen ... quic?)"
    )
    assert protocols(page, "/debug/request") == ["h3"]
    seen = page.evaluate("lab.request")
    assert (seen["scheme"], seen["host"]) == ("https", lab.host), (
        f"over HTTP/3 the page's /debug/request saw {seen['scheme']}://{seen['host']}: Host $http_host is "
        "empty over HTTP/3 (scenario h3-http-host)"
    )
    assert page.evaluate("document.getElementById('request-verdict').className") == "verdict ok"


def test_chat_over_a_quic_page_falls_back_to_http11_websockets(lab: Lab, quic_page: Callable[[], Page]):
    started = time.time()
    alice, bob = quic_page(), quic_page()
    for page in (alice, bob):
        assert page.evaluate(NAVIGATION_PROTOCOL) == "h3"
        events = page.evaluate("lab.chat.events")
        assert [e["state"] for e in events] == ["connecting", "open"], (
            f"the chat socket did not open: {events}"
        )
    hello = f"hello over quic {uuid.uuid4().hex[:8]}"
    say(alice, hello)
    assert wait_for_message(bob, hello)["msg"] == hello
    for page in (alice, bob):
        page.context.close()
    if not lab.endpoint.is_local_lab:
        return  # nginx's log is this checkout's stack's only
    sockets = [e for e in logged("/ws/chat", started) if e["status"] == 101]
    assert len(sockets) >= 2 and {e["protocol"] for e in sockets} == {"HTTP/1.1"}, (
        f"the chat websockets of a page loaded over HTTP/3 should be HTTP/1.1 upgrades over TCP: {sockets}"
    )


def test_a_form_upload_over_http3_arrives_intact(lab: Lab, quic_page: Callable[[], Page], tmp_path: Path):
    path = tmp_path / "quic-upload.bin"
    expected = pattern_file(path, UPLOAD_BYTES, seed=b"browser quic upload")
    started = time.time()
    page = quic_page()
    page.set_input_files("#upload-file", path)
    result, failed = upload_through_form(page)
    assert result["status"] == 201, f"POST /upload over HTTP/3 answered {result['status']}: {result} {failed}"
    assert (result["server"]["size"], result["server"]["sha256"]) == (UPLOAD_BYTES, expected), result
    assert protocols(page, "/upload") == ["h3"], f"the upload went over {protocols(page, '/upload')}, not h3"
    if lab.endpoint.is_local_lab:
        uploads = [e for e in logged("/upload", started) if e["method"] == "POST"]
        assert uploads and uploads[-1]["protocol"] == "HTTP/3.0", uploads
