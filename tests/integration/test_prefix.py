"""The lab's nginx also serves the app under /sub/ (snippets/prefix.conf): it strips the prefix,
names it in X-Forwarded-Prefix, and ProxyFix(x_prefix=1) makes it SCRIPT_NAME, so every URL the
app builds keeps /sub/ (prefix-lost loses it). The whole suite also runs under the prefix:
LAB_URL=https://localhost:8443/sub make integration-test."""

from __future__ import annotations

import dataclasses
import json
from contextlib import closing

import pytest

from labctl import hints
from support.lab import Lab

PREFIX = "/sub"


@pytest.fixture(scope="module")
def root(lab: Lab) -> str:
    """The lab's root URL; /sub/ is the lab baseline's own mount, not every deployment's."""
    if not lab.endpoint.is_local_lab:
        pytest.skip(f"/sub/ is the lab baseline's mount; {lab.url} is another deployment")
    return f"https://{lab.host}"


@pytest.mark.parametrize(
    ("path", "status", "location_path"),
    [
        ("/redirect/external", 302, "/landing"),
        ("/redirect/status/307", 307, "/landing"),
        ("/redirect/status/308", 308, "/landing"),
        ("/dir", 308, "/dir/"),
        ("/redirect/relative", 302, "/landing"),
    ],
)
def test_redirects_under_the_prefix_keep_it(root, http, path, status, location_path):
    response = http.get(root + PREFIX + path, allow_redirects=False)
    assert response.status_code == status, response.text
    location = response.headers["Location"]
    expected = PREFIX + location_path if path == "/redirect/relative" else root + PREFIX + location_path
    assert location == expected, f"{PREFIX}{path}: Location {location!r}. {hints.scenario('prefix-lost')}"


def test_the_app_sees_the_prefix_as_its_root(root, http):
    seen = http.get(root + PREFIX + "/debug/request?q=1").json()
    assert seen["url_root"] == root + PREFIX + "/", f"{seen['url_root']}: {hints.scenario('prefix-lost')}"
    assert seen["url"] == root + PREFIX + "/debug/request?q=1"
    assert seen["headers"]["X-Forwarded-Prefix"] == PREFIX


def test_a_307_under_the_prefix_keeps_method_and_body(root, http):
    response = http.post(root + PREFIX + "/redirect/status/307", data=b"kept", allow_redirects=True)
    assert response.status_code == 200, response.text
    landed = response.json()
    assert (landed["url"], landed["method"], landed["size"]) == (root + PREFIX + "/landing", "POST", 4)


def test_a_forged_prefix_from_the_client_is_dropped(root, http):
    # Outside /sub/ nginx sends no X-Forwarded-Prefix, and a client's own never reaches the app.
    seen = http.get(root + "/debug/request", headers={"X-Forwarded-Prefix": "/evil"}).json()
    assert seen["url_root"] == root + "/", seen["url_root"]
    assert "X-Forwarded-Prefix" not in seen["headers"], seen["headers"]
    inside = http.get(root + PREFIX + "/debug/request", headers={"X-Forwarded-Prefix": "/evil"}).json()
    assert inside["url_root"] == root + PREFIX + "/", inside["url_root"]


def test_websockets_under_the_prefix(lab, root):
    under = dataclasses.replace(lab, url=root + PREFIX)  # lab.ws connects to wss://host/sub/...
    with closing(under.ws("/ws/info")) as conn:
        info = json.loads(conn.recv())
    assert (info["scheme"], info["host"]) == ("wss", lab.host), info
    with closing(under.ws("/ws/echo")) as conn:
        conn.send("under /sub/")
        assert conn.recv() == "under /sub/"


def test_the_lab_page_under_the_prefix_links_inside_it(root, http):
    page = http.get(root + PREFIX + "/")
    assert page.status_code == 200
    assert 'src="static/lab/lab.js"' in page.text, "the page's links must be relative to stay under /sub/"
    assert http.get(root + PREFIX + "/static/lab/lab.js").status_code == 200
