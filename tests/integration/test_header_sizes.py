"""Request and response heads across nginx, the app server and the app: up to 16 KiB passes end to
end; beyond the declared limit (LAB_MAX_HEADER_KIB) the layer that refuses answers in JSON and
names itself, never HTML, never 502 (header-size-layers shows nginx's defaults)."""

from __future__ import annotations

import pytest

import labsettings
from labctl import hints
from support.lab import Lab, assert_json_error

KIB = 1024
PASSES = 16 * KIB


def declared_limit(lab: Lab) -> int:
    """LAB_MAX_HEADER_KIB in bytes: the lab's own declaration, known only for this checkout's stack."""
    if not lab.endpoint.is_local_lab:
        pytest.skip(f"the declared header limit is the lab's; {lab.url} is another deployment")
    return labsettings.MAX_HEADER_KIB.value() * KIB


def test_a_16_kib_cookie_reaches_the_app_whole(lab, http):
    cookie = "lab_big=" + "c" * PASSES
    response = http.get(lab.url + "/debug/request", headers={"Cookie": cookie})
    assert response.status_code == 200, (
        f"{response.status_code} {response.text[:200]}: {hints.scenario('header-size-layers')}"
    )
    assert response.json()["headers"]["Cookie"] == cookie


def test_a_16_kib_set_cookie_reaches_the_client_whole(lab, http):
    response = http.get(lab.url + f"/debug/set-cookie?bytes={PASSES}")
    assert response.status_code == 200, (
        f"{response.status_code} {response.text[:200]}: {hints.scenario('header-size-layers')}"
    )
    assert len(response.cookies["lab_big"]) == PASSES


def test_a_header_line_over_the_limit_is_nginx_s_json_400(lab, http):
    too_big = "c" * (declared_limit(lab) + KIB)
    response = http.get(lab.url + "/debug/request", headers={"Cookie": "lab_big=" + too_big})
    body = assert_json_error(response, 400)
    assert body["msg"].startswith("nginx refused"), body


def test_a_response_head_over_the_limit_is_the_app_s_json_500_not_a_502(lab, http):
    response = http.get(lab.url + f"/debug/set-cookie?bytes={declared_limit(lab) + KIB}")
    body = assert_json_error(response, 500)
    assert body["msg"].startswith("the app refused to send a response head"), body
    assert "Set-Cookie" not in response.headers


def test_a_request_line_of_16_kib_passes_and_over_the_limit_is_nginx_s_json_414(lab, http):
    # gevent's pywsgi took request lines under 8192 bytes only (labapp.patches.clienterrors raises it).
    query = "a" * PASSES
    assert http.get(lab.url + "/debug/request?q=" + query).json()["url"].endswith(query)
    response = http.get(lab.url + "/debug/request?q=" + "a" * (declared_limit(lab) + KIB))
    assert assert_json_error(response, 414)["msg"].startswith("request line too long"), response.text


def test_more_header_lines_than_the_app_server_takes_is_its_json_400(lab, http):
    declared_limit(lab)
    # gevent's pywsgi takes 100 lines; nginx adds its own (Host, X-Forwarded-*, X-Request-ID...).
    headers = {f"X-Lab-{i}": "v" for i in range(95)}
    body = assert_json_error(http.get(lab.url + "/debug/request", headers=headers), 400)
    assert body["msg"].startswith("the app server"), body


@pytest.mark.parametrize("query", ["", "?bytes=-1", "?bytes=x", "?bytes=99999999"])
def test_set_cookie_refuses_a_size_out_of_bounds(lab, http, query):
    assert_json_error(http.get(lab.url + "/debug/set-cookie" + query), 400)
