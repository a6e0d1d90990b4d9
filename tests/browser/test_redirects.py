"""The page's redirect links, followed by the browser, end on the lab's own https origin."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from browser.browsing import wait_for
from support.lab import Lab

# href on the page (relative: the page works under /sub/ too) -> where the browser must end up
LINKS = [
    ("redirect/external", "/landing"),
    ("redirect/relative", "/landing"),
    *[(f"redirect/status/{code}", "/landing") for code in (301, 302, 303, 307, 308)],
    ("dir", "/dir/"),
]


@pytest.mark.parametrize("href, destination", LINKS)
def test_redirect_link_ends_on_the_lab_origin(
    lab: Lab, open_lab_page: Callable[[], Page], href: str, destination: str
):
    page = open_lab_page()
    page.click(f"a[href={json.dumps(href)}]")
    wait_for(
        page, "location.pathname !== '/' && document.readyState === 'complete'", what=f"{href} to be followed"
    )
    assert page.url == lab.url + destination, (
        f"following {href} ended on {page.url}, not {lab.url}{destination}: the Location lost the "
        "scheme or port (proxy_set_header Host $host:<public port>, X-Forwarded-Proto/Port, ProxyFix)"
    )
    if destination == "/landing":
        landing = json.loads(page.evaluate("document.body.innerText"))
        assert landing["url"] == lab.url + destination, f"the app was reached at {landing['url']}"
