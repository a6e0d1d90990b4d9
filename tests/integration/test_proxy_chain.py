"""A TLS-terminating balancer in front of the lab's nginx (labctl.balancer: a second nginx that
speaks plain HTTP to it from 127.0.0.2): through it the app sees the real client, https, and the
balancer's public host and port; nobody else can pose as it (proxy-chain-scheme breaks the
scheme). The rest of the suite runs through it too: LAB_URL=https://localhost:$LAB_BALANCER_PORT
LAB_HTTP_URL=http://localhost:$LAB_BALANCER_HTTP_PORT make integration-test."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace

import pytest

import labsettings
from labctl import balancer, hints, stack
from support.lab import Lab

FORGED = {"X-Forwarded-For": "203.0.113.66", "X-Forwarded-Proto": "http", "X-Forwarded-Port": "1"}


@pytest.fixture(scope="module")
def via(lab: Lab) -> Iterator[Lab]:
    """The lab as seen through the balancer, started for this module unless it is running."""
    if not lab.endpoint.is_local_lab or stack.running_mode() != "native":
        pytest.skip("puts a native balancer in front of this checkout's native stack")
    with balancer.running() as url:
        yield replace(
            lab,
            url=url,
            direct_url=None,
            http_url=f"http://localhost:{labsettings.BALANCER_HTTP_PORT.value()}",
        )


def get_json(lab: Lab, path: str, source: str = "127.0.0.1", headers: dict[str, str] | None = None) -> dict:
    """GET over verified TLS from a chosen loopback address (the client the app should see)."""
    host, port = lab.endpoint.address()
    conn = http.client.HTTPSConnection(
        host, port, context=lab.ssl_context(), source_address=(source, 0), timeout=10
    )
    with closing(conn):
        conn.request("GET", path, headers={"Host": lab.host, **(headers or {})})
        response = conn.getresponse()
        assert response.status == 200, response.read()[:300]
        return json.loads(response.read())


def test_through_the_balancer_the_app_sees_https_and_its_public_host(via: Lab, http):
    seen = via.session().get(via.url + "/debug/request").json()
    assert (seen["scheme"], seen["host"]) == ("https", via.host), (
        f"{seen}: {hints.scenario('proxy-chain-scheme')}"
    )
    location = http.get(via.url + "/redirect/external", allow_redirects=False).headers["Location"]
    assert location == via.url + "/landing", f"{location}: {hints.scenario('proxy-chain-scheme')}"


def test_through_the_balancer_the_app_sees_the_client_not_the_balancer(via: Lab):
    seen = get_json(via, "/debug/request", source="127.0.0.3")
    assert seen["remote_addr"] == "127.0.0.3", (
        f"the app saw {seen['remote_addr']} (127.0.0.2 is the balancer): set_real_ip_from + real_ip_header"
    )


def test_headers_a_client_forges_at_the_balancer_change_nothing(via: Lab):
    seen = get_json(via, "/debug/request", source="127.0.0.3", headers=FORGED)
    assert (seen["scheme"], seen["host"], seen["remote_addr"]) == ("https", via.host, "127.0.0.3"), seen


def test_a_client_of_the_inner_nginx_cannot_pose_as_the_balancer(lab: Lab, via: Lab):
    # Straight to the lab nginx's listener for the balancer, from an address that is not its own.
    conn = http.client.HTTPConnection("127.0.0.1", labsettings.behind_balancer_port(), timeout=10)
    with closing(conn):
        conn.request(
            "GET", "/debug/request", headers={"Host": lab.host, **FORGED, "X-Forwarded-Proto": "https"}
        )
        seen = json.loads(conn.getresponse().read())
    assert (seen["scheme"], seen["remote_addr"]) == ("http", "127.0.0.1"), seen
    assert seen["host"] == lab.host, f"a forged X-Forwarded-Port reached the app: {seen['host']}"
    # ...and to its public HTTPS port, the same forged headers.
    seen = get_json(lab, "/debug/request", source="127.0.0.3", headers=FORGED)
    assert (seen["scheme"], seen["host"], seen["remote_addr"]) == ("https", lab.host, "127.0.0.3"), seen


def test_websockets_through_the_balancer_say_wss_and_its_host(via: Lab):
    with closing(via.ws("/ws/info")) as conn:
        info = json.loads(conn.recv())
    assert (info["scheme"], info["host"]) == ("wss", via.host), info


def test_the_balancer_s_http_port_redirects_to_its_https_port(via: Lab, http):
    response = http.get(f"{via.http_url}/landing?x=1", allow_redirects=False)
    assert (response.status_code, response.headers["Location"]) == (301, via.url + "/landing?x=1")
