"""The running lab as tests see it: URLs, verified TLS, websocket clients, streamed bodies."""

from __future__ import annotations

import hashlib
import json
import os
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import websocket

from labctl import endpoints, probe, stack
from labctl.behaviours.http3 import H3_ADVERTISED
from labctl.endpoints import Endpoint
from support.causes import handshake_cause

MIB = 1024 * 1024


@dataclass(frozen=True)
class Lab:
    url: str  # through nginx, https
    ca: Path | None  # None: the system's trust store (a deployment with a public certificate)
    direct_url: str | None  # straight to gunicorn, when reachable (native mode)
    http_url: str | None  # nginx's plain-HTTP entry point, when known

    @property
    def endpoint(self) -> Endpoint:
        """The same endpoints as labctl sees them (the doctor's probes, the scenario checks)."""
        return Endpoint(self.url, self.ca, self.http_url)

    @property
    def host(self) -> str:
        """host:port as the client sends it, e.g. localhost:8443."""
        return urlsplit(self.url).netloc

    @property
    def origin(self) -> str:
        """scheme://host[:port], as a browser sends Origin: never the path (LAB_URL=.../sub)."""
        parts = urlsplit(self.url)
        return f"{parts.scheme}://{parts.netloc}"

    @property
    def ws_url(self) -> str:
        """wss://host[:port][/prefix]: a lab mounted under a path (LAB_URL=.../sub) keeps it."""
        return "wss://" + self.host + self.endpoint.prefix

    def session(self) -> requests.Session:
        session = requests.Session()
        # REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE in the environment (set on many machines, CI's
        # included) would override session.verify (psf/requests#4650), and a proxy from the env
        # would hijack loopback: ignore both.
        session.trust_env = False
        session.verify = str(self.ca) if self.ca else True
        return session

    def ssl_context(self) -> ssl.SSLContext:
        return self.endpoint.ssl_context()

    def ws(self, path: str, timeout: float = 10, **kwargs: object) -> websocket.WebSocket:
        """A real websocket client over wss, verifying the lab's CA (``with closing(...)``). A
        refused handshake fails the test with its cause, not the client's "Handshake status 400"."""
        sslopt: dict[str, object] = {"cert_reqs": ssl.CERT_REQUIRED}
        if self.ca:
            sslopt["ca_certs"] = str(self.ca)
        try:
            return websocket.create_connection(self.ws_url + path, timeout=timeout, sslopt=sslopt, **kwargs)
        except (websocket.WebSocketBadStatusException, websocket.WebSocketConnectionClosedException):
            pytest.fail(f"websocket {path}: {handshake_cause(self, path)}", pytrace=False)


def lab_from_env() -> Lab:
    """LAB_URL, LAB_CA and LAB_HTTP_URL (labctl.endpoints: the doctor's and `lab check`'s too);
    LAB_DIRECT_URL, or the native stack's gunicorn port."""
    endpoint = endpoints.from_env()
    direct = os.environ.get("LAB_DIRECT_URL")
    if direct is None and stack.running_mode() == "native" and endpoint.is_local_lab:
        direct = f"http://127.0.0.1:{endpoints.app_port()}"
    return Lab(url=endpoint.url, ca=endpoint.ca, direct_url=direct or None, http_url=endpoint.http_url)


class PatternBody:
    """A deterministic body of ``size`` bytes, generated in chunks and hashed as it is read.

    Never held whole in memory: pass ``chunks()`` to requests (chunked) or the object itself
    (Content-Length) and compare ``sha256`` after the upload.
    """

    def __init__(self, size: int, seed: bytes = b"proxylab", chunk: int = MIB) -> None:
        self.size = size
        self._block = hashlib.sha256(seed).digest() * (chunk // 32)
        self._hash = hashlib.sha256()
        self._sent = 0

    def chunks(self) -> Iterator[bytes]:
        while self._sent < self.size:
            piece = self._block[: min(len(self._block), self.size - self._sent)]
            self._sent += len(piece)
            self._hash.update(piece)
            yield piece

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[bytes]:
        return self.chunks()

    @property
    def sha256(self) -> str:
        assert self._sent == self.size, f"only {self._sent} of {self.size} bytes were sent"
        return self._hash.hexdigest()


def pattern_file(path: Path, size: int, seed: bytes) -> str:
    """Write a PatternBody of ``size`` bytes to ``path`` chunk by chunk; return its sha256."""
    body = PatternBody(size, seed=seed)
    with path.open("wb") as handle:
        for chunk in body.chunks():
            handle.write(chunk)
    return body.sha256


def multipart_chunks(body: PatternBody, filename: str, boundary: str) -> Iterator[bytes]:
    """multipart/form-data with one file field, streamed."""
    yield (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    yield from body.chunks()
    yield f"\r\n--{boundary}--\r\n".encode()


def multipart_length(body_size: int, filename: str, boundary: str) -> int:
    head = len(
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
    )
    return head + body_size + len(f"\r\n--{boundary}--\r\n".encode())


def sha256_of_response(response: requests.Response) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for piece in response.iter_content(MIB):
        digest.update(piece)
        size += len(piece)
    return size, digest.hexdigest()


def assert_json_error(response: requests.Response, status: int, hint: str = "") -> dict:
    """The lab's error envelope, with a message that says which layer broke it."""
    content_type = response.headers.get("Content-Type", "")
    assert response.status_code == status, (
        f"expected {status}, got {response.status_code}: {response.text[:300]!r}. {hint}"
    )
    assert content_type.startswith("application/json"), (
        f"error {status} came back as {content_type!r}, not JSON: {response.text[:200]!r}. "
        "nginx needs the json-errors snippet (error_page), the app LAB_FIX_JSON_ERRORS=1. " + hint
    )
    body = response.json()
    assert set(body) == {"code", "msg", "request_id"}, f"not the error envelope: {body}"
    assert body["code"] == status and body["msg"] and body["request_id"], body
    assert "Traceback" not in response.text and "<html" not in response.text.lower()
    return body


def ws_json(conn: websocket.WebSocket) -> dict:
    return json.loads(conn.recv())


def access_log_entry(request_id: str, wait_s: float = 2.0) -> dict:
    """nginx's JSON access-log line for ``request_id``: nginx writes it just after the response,
    so a test that reads it at once can be early. Only this checkout's stack has logs to read."""
    if not endpoints.from_env().is_local_lab:
        pytest.skip("nginx's access log is this checkout's stack's: the deployment probed is another")
    deadline = time.monotonic() + wait_s
    while True:
        entries = [json.loads(line) for line in stack.access_log_entries() if request_id in line]
        if entries or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert entries, f"request id {request_id} not in nginx's access log after {wait_s} s"
    return entries[-1]


def http3_port_or_skip(lab: Lab) -> int:
    """The UDP port the lab advertises HTTP/3 on; where it speaks none, the test is skipped as
    "not applicable", saying why.

    This checkout's stack must speak it exactly when its nginx has the module (`nginx -V`): there
    a missing Alt-Svc is a failure, never a skip (CI's compose path runs the trixie nginx, which
    has it). Any other deployment is judged by its Alt-Svc alone."""
    advertised = probe.request(lab.endpoint, "GET", "/healthz").headers.get("alt-svc", "")
    port = probe.alt_svc_h3(advertised, lab.endpoint.port)
    built = stack.nginx_has_http3() if lab.endpoint.is_local_lab else None
    if port is None and built:
        pytest.fail(
            f"this stack's nginx has HTTP/3 (nginx -V) but advertises none (Alt-Svc: {advertised!r}): "
            f"{H3_ADVERTISED.hint}"
        )
    if port is None:
        why = (
            "its nginx is built without --with-http_v3_module (nginx -V; Debian 12's 1.22)"
            if built is False
            else f"no h3 in its Alt-Svc ({advertised or 'none'})"
        )
        pytest.skip(f"not applicable: {lab.url} speaks no HTTP/3: {why}")
    return port
