"""The lab page loads over verified https and sees the same origin as the app does."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Page, Playwright

from browser.browsing import goto, launch, wait_for
from support.lab import Lab


def test_page_loads_over_https_with_the_public_host_and_port(
    lab: Lab, open_lab_page: Callable[[], Page], state_shot
):
    page = open_lab_page()
    assert page.url == lab.url + "/", f"the browser ended on {page.url}, not the lab's own URL"
    seen = page.evaluate("lab.request")
    assert (seen["scheme"], seen["host"]) == ("https", lab.host), (
        f"through the browser the app saw {seen['scheme']}://{seen['host']}, not https://{lab.host}: "
        "check proxy_set_header Host $host:<public port> and X-Forwarded-Proto, and ProxyFix in the app"
    )
    assert seen["url_root"] == lab.url + "/", seen
    verdict = page.evaluate("document.getElementById('request-verdict').className")
    assert verdict == "verdict ok", (
        f"the page itself reports a mismatch: {page.evaluate('document.body.innerText')}"
    )
    state_shot(page, "loaded")


def test_a_browser_without_the_lab_ca_refuses_the_page(
    lab: Lab, playwright: Playwright, tmp_path_factory: pytest.TempPathFactory
):
    # The suite's trust comes from its NSS database alone: with an empty one the same load fails.
    untrusting = launch(playwright, tmp_path_factory.mktemp("no-ca"), ca=None)
    try:
        with pytest.raises(AssertionError, match="ERR_CERT_AUTHORITY_INVALID"):
            goto(untrusting.new_page(), lab.url + "/")
    finally:
        untrusting.close()


def test_the_page_under_the_prefix_stays_under_it(lab: Lab, new_page: Callable[[], Page]):
    # nginx serves the app under /sub/ too (snippets/prefix.conf): the page's fetches, upload,
    # chat socket and Socket.IO client are relative to it, so they stay under /sub/ (prefix-lost),
    # and the Socket.IO session's routing cookie comes back there (socketio-map.conf's Path).
    if not lab.endpoint.is_local_lab or lab.endpoint.prefix:
        pytest.skip(f"/sub/ is the lab baseline's mount; {lab.url} is another deployment")
    root = f"https://{lab.host}"
    page = new_page()
    goto(page, root + "/sub/")
    wait_for(page, "window.lab && lab.request !== null", what="the page under /sub/ to fetch debug/request")
    wait_for(page, "lab.chat.events.some(e => e.state === 'open')", what="the chat under /sub/ to open")
    assert page.evaluate("lab.request.url_root") == root + "/sub/"
    assert page.evaluate("lab.chat.url") == f"wss://{lab.host}/sub/ws/chat?whoami=1"
    wait_for(page, "lab.sio && lab.sio.info", what="the Socket.IO client under /sub/ to connect and get info")
    assert page.evaluate("lab.sio.path") == "/sub/socket.io/"
    routing = [c for c in page.context.cookies() if c["name"] == "lab_sio"]
    assert [c["path"] for c in routing] == ["/sub/socket.io/"], routing
    assert page.evaluate("document.querySelector('a[href=\"redirect/external\"]').href") == (
        root + "/sub/redirect/external"
    )
