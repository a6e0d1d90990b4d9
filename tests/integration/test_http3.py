"""The same contract over HTTP/3 (QUIC, aioquic's client, TLS verified against the lab's CA):
redirects, what the app sees, a 64 MiB upload, the JSON errors, one request id from nginx's log.

Where the stack speaks no HTTP/3 (Debian 12's nginx 1.22 natively) every test here is reported
"not applicable" (the ``http3`` fixture says why); a stack of this checkout whose nginx has the
module must speak it, or they fail. CI's compose path (the trixie nginx) runs them."""

from __future__ import annotations

import hashlib
import json

import pytest

from labctl import hints, probe
from labctl.behaviours.http3 import H3_ADVERTISED, H3_HOST
from support import causes
from support.lab import MIB, PatternBody, access_log_entry, sha256_of_response

H3_UPLOAD_BYTES = 64 * MIB
NOT_THE_ENVELOPE = "the JSON envelope over HTTP/3: nginx's error_page and the app's handlers"


def envelope(reply: probe.Reply, status: int, cause: str = NOT_THE_ENVELOPE) -> dict:
    assert probe.is_envelope(reply, status), (
        f"over HTTP/3 expected the {status} JSON envelope, got {reply.describe()}: {reply.body[:200]!r}. "
        f"{cause}"
    )
    body = json.loads(reply.body)
    assert body["request_id"] == reply.headers.get("x-request-id"), (body, reply.headers)
    return body


def test_alt_svc_advertises_h3_on_the_https_port(lab, http, http3):
    for path, status in (("/healthz", 200), ("/no/such/page", 404)):
        response = http.get(lab.url + path)
        assert response.status_code == status
        advertised = probe.alt_svc_h3(response.headers.get("Alt-Svc", ""), lab.endpoint.port)
        assert advertised == lab.endpoint.port, (
            f"{path} ({status}) over TCP: Alt-Svc {response.headers.get('Alt-Svc')!r}, want h3 on "
            f":{lab.endpoint.port} (snippets/alt-svc.conf, also in the error locations). "
            f"{H3_ADVERTISED.hint}"
        )


@pytest.mark.parametrize(
    ("path", "status", "location_path"),
    [
        ("/redirect/external", 302, "/landing"),
        ("/redirect/status/301", 301, "/landing"),
        ("/redirect/status/303", 303, "/landing"),
        ("/redirect/status/307", 307, "/landing"),
        ("/redirect/status/308", 308, "/landing"),
        ("/dir", 308, "/dir/"),
    ],
)
def test_redirects_keep_scheme_host_and_port_over_h3(lab, http3, path, status, location_path):
    reply = http3.request("GET", path)
    assert reply.status == status, f"{path} over HTTP/3: {reply.describe()} {reply.body[:200]!r}"
    assert reply.location == lab.url + location_path, (
        f"{path} over HTTP/3: Location {reply.location!r}, want {lab.url + location_path!r}. {H3_HOST.hint}"
    )


def test_relative_redirect_stays_relative_over_h3(http3):
    reply = http3.request("GET", "/redirect/relative")
    assert (reply.status, reply.location) == (302, "/landing"), reply


def test_the_app_sees_https_and_the_public_host_over_h3(lab, http3):
    reply = http3.request("GET", "/debug/request")
    assert reply.status == 200, reply.describe()
    seen = json.loads(reply.body)
    assert (seen["scheme"], seen["host"], seen["url_root"]) == ("https", lab.host, lab.url + "/"), (
        f"over HTTP/3 the app saw {seen['scheme']}://{seen['host']} ({seen['url_root']}). {H3_HOST.hint}"
    )
    assert seen["headers"].get("Host") == lab.host, seen["headers"]


def test_a_post_307_keeps_method_and_body_over_h3(lab, http3):
    body = b"proxylab h3 307 " * 1024
    first = http3.request("POST", "/redirect/status/307", body=body)
    assert first.status == 307 and first.location == lab.url + "/landing", first
    landed = http3.request("POST", "/landing", body=body)
    seen = json.loads(landed.body)
    assert (seen["method"], seen["sha256"]) == ("POST", hashlib.sha256(body).hexdigest()), seen


@pytest.mark.slow
@pytest.mark.parametrize("length", ["content-length", "unknown"])
def test_a_64_mib_upload_arrives_with_its_sha256_over_h3(lab, http, http3, upload_name, length):
    """Streamed (the client sends each MiB once the last has gone), and it comes back identical
    over TCP (nginx's X-Accel location). Without Content-Length nginx streams it to the app chunked."""
    name, body = upload_name(f"h3-{length}.bin"), PatternBody(H3_UPLOAD_BYTES, seed=b"h3 " + length.encode())
    headers = {"content-length": str(body.size)} if length == "content-length" else {}
    reply = http3.request("PUT", f"/upload/{name}", headers=headers, body=body.chunks(), timeout=120)
    assert reply.status == 201, f"{reply.describe()} {reply.body[:300]!r}: {hints.UPLOAD_STREAMING}"
    stored = json.loads(reply.body)
    assert stored == {"name": name, "size": body.size, "sha256": body.sha256}, hints.UPLOAD_STREAMING
    download = http.get(lab.url + f"/files/{name}", stream=True)
    assert download.status_code == 200 and sha256_of_response(download) == (body.size, body.sha256)


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/errors/crash", 500),
        ("GET", "/errors/validation", 400),
        ("GET", "/no/such/page", 404),
        ("DELETE", "/healthz", 405),
        ("GET", "/ws/echo", 400),
    ],
)
def test_app_errors_are_the_json_envelope_over_h3(http3, method, path, status):
    envelope(http3.request(method, path), status, hints.scenario("html-errors"))


def test_nginx_own_errors_are_the_json_envelope_over_h3(http3):
    # Content-Length over the limit: refused before any body; the rest is never generated.
    too_big = http3.request(
        "PUT",
        "/upload/h3-too-big.bin",
        headers={"content-length": str(2**50)},
        body=probe.pattern_body(2**50),
    )
    envelope(
        too_big,
        413,
        "over HTTP/2 and HTTP/3 nginx skips a refused body without marking it discarded: the error "
        "location needs `client_max_body_size 0` (snippets/json-errors.conf) or the 413 is nginx's HTML",
    )
    # A response header bigger than nginx's buffers: nginx's own 502.
    envelope(http3.request("GET", "/bugs/big-header"), 502)


def test_request_ids_match_nginx_log_over_h3(lab, http3):
    reply = http3.request("GET", "/debug/request")
    seen = json.loads(reply.body)
    request_id = reply.headers.get("x-request-id", "")
    assert request_id and seen["request_id"] == request_id, (
        causes.REQUEST_ID,
        request_id,
        seen["request_id"],
    )
    entry = access_log_entry(request_id)
    assert entry["protocol"] == "HTTP/3.0", f"nginx logged {entry['protocol']} for an HTTP/3 request: {entry}"
    assert (entry["uri"], entry["status"]) == ("/debug/request", 200), entry
