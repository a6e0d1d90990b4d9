"""`scripts/lab doctor`: probe any deployment of the app (LAB_URL, LAB_CA, LAB_HTTP_URL), even one
behind the user's own nginx, and print a checklist where each failure names its likely cause.

Standard library only (it runs before .venv exists): http.client over verified TLS, and a
minimal websocket handshake on an ssl socket.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from . import endpoints, hints, probe, wsclient
from .endpoints import Endpoint
from .probe import FORGED_ADDR

UPLOAD_PROBE_BYTES = 2 * probe.MIB  # over nginx's default client_max_body_size of 1m
Target = Endpoint  # what the doctor probes: any deployment's endpoints


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: could not be probed here
    seen: str
    hints: tuple[str, ...] = ()


def target_from_env() -> Endpoint:
    return endpoints.from_env()


def _against(seen: str, got: str, wanted: str) -> str:
    return seen if got == wanted else f"{seen} (want {wanted})"


def _host_hints(target: Target, seen_host: str) -> tuple[str, ...]:
    if seen_host == target.hostname and target.host != target.hostname:
        return (hints.scenario("host-drops-port"),)
    return (hints.scenario("upstream-host"),)


def probe_external_redirect(target: Target) -> Iterator[Check]:
    reply = probe.request(target, "GET", "/redirect/external")
    location = reply.headers.get("location", "")
    wanted = f"https://{target.host}{target.prefix}/landing"
    causes: list[str] = []
    if location.startswith("http://"):
        causes.append(hints.scenario("scheme-lost"))
    if urlsplit(location).netloc != target.host:
        causes.extend(_host_hints(target, urlsplit(location).netloc))
    yield Check(
        "external redirect keeps https, host and port",
        location == wanted,
        _against(f"{reply.status} Location: {location or '(none)'}", location, wanted),
        tuple(causes),
    )


def probe_https_redirect(target: Target) -> Iterator[Check]:
    name = "plain HTTP redirects to the same URL on HTTPS"
    if target.http_url is None:
        yield Check(name, None, "no HTTP entry point known: set LAB_HTTP_URL=http://host:port")
        return
    path = "/landing?from=doctor"
    try:
        reply = probe.request(target, "GET", path, base=target.http_url)
    except OSError as error:
        yield Check(name, None, f"{target.http_url}: {error}")
        return
    location = reply.headers.get("location", "")
    wanted = f"https://{target.host}{target.prefix}{path}"
    redirected = reply.status in {301, 302, 307, 308}
    yield Check(
        name,
        redirected and location == wanted,
        _against(f"{reply.status} Location: {location or '(none)'}", location, wanted),
        (hints.scenario("https-redirect-drops-port"),) if redirected else (),
    )


def probe_forwarded_headers(target: Target) -> Iterator[Check]:
    reply = probe.request(target, "GET", "/debug/request", headers={"X-Forwarded-For": FORGED_ADDR})
    seen = reply.json()
    if reply.status != 200 or not isinstance(seen, dict):
        yield Check("GET /debug/request answers", False, f"{reply.status} {reply.content_type}")
        return
    headers = {k.lower() for k in seen.get("headers", {})}
    yield Check(
        "the app sees https",
        seen["scheme"] == "https",
        f"scheme {seen['scheme']}",
        (hints.scenario("scheme-lost"),),
    )
    yield Check(
        "the app sees the Host the client sent",
        seen["host"] == target.host,
        _against(f"host {seen['host']!r}", seen["host"], target.host),
        _host_hints(target, seen["host"]),
    )
    yield Check(
        "a forged X-Forwarded-For is ignored",
        seen["remote_addr"] != FORGED_ADDR,
        f"X-Forwarded-For: {FORGED_ADDR} -> remote_addr {seen['remote_addr']}",
        (hints.scenario("xff-spoofing"),),
    )
    yield Check(
        "the app gets nginx's X-Request-ID",
        "x-request-id" in headers,
        f"request_id {seen.get('request_id')}",
        (hints.REQUEST_ID,),
    )


def _ws_status_hints(status: int) -> tuple[str, ...]:
    if status == 400:
        return (hints.scenario("ws-no-upgrade"),)
    if status in {402, 426, 505}:
        return (hints.scenario("ws-http10"),)
    return (hints.scenario("ws-no-upgrade"), hints.scenario("ws-http10"))


def probe_websocket(target: Target, app_sees_https: bool) -> Iterator[Check]:
    name = "websocket /ws/info upgrades (101)"
    try:
        handshake, conn = wsclient.connect(
            target.hostname, target.port, target.prefix + "/ws/info", target.ssl_context(), target.host
        )
    except OSError as error:
        yield Check(name, False, str(error), (hints.scenario("ws-no-upgrade"),))
        return
    yield Check(
        name, handshake.accepted, f"handshake answered {handshake.status}", _ws_status_hints(handshake.status)
    )
    if conn is None:
        return
    with conn:
        opcode, payload = conn.recv()
    if opcode != wsclient.OP_TEXT:
        yield Check(
            "the websocket stays open after 101",
            False,
            f"first frame has opcode {opcode} (8 = close)",
            (hints.scenario("ws-no-flag"),),
        )
        return
    scheme = json.loads(payload).get("scheme")
    yield Check(
        "/ws/info reports wss",
        scheme == "wss",
        f'"scheme": "{scheme}"',
        (hints.scenario("location-drops-headers" if app_sees_https else "scheme-lost"),),
    )


def probe_upload_limit(target: Target) -> Iterator[Check]:
    reply = probe.request(target, "PUT", "/upload/lab-doctor-probe.bin", body=b"\0" * UPLOAD_PROBE_BYTES)
    body = reply.json()
    stored = isinstance(body, dict) and body.get("size") == UPLOAD_PROBE_BYTES
    yield Check(
        "a 2 MiB upload is accepted",
        reply.status == 201 and stored,
        f"{reply.status} {reply.content_type}",
        (hints.scenario("body-limit"),) if reply.status == 413 else (hints.UPLOAD_STREAMING,),
    )


def probe_error_format(target: Target) -> Iterator[Check]:
    for path, status, what in (
        ("/lab-doctor/no-such-page", 404, "the app's 404"),
        ("/errors/crash", 500, "the app's 500"),
        ("/bugs/big-header", 502, "nginx's 502"),
    ):
        reply = probe.request(target, "GET", path)
        name = f"{what} is the JSON error envelope"
        if status == 502 and reply.status == 200:
            yield Check(name, None, "the proxy accepted a 32 kB response header: no 502 to look at")
            continue
        yield Check(
            name,
            probe.is_envelope(reply, status),
            f"{path}: {reply.status} {reply.content_type}",
            (hints.scenario("html-errors"),),
        )


def run(target: Target) -> list[Check]:
    checks: list[Check] = []
    probes: list[Callable[[Target], Iterator[Check]]] = [
        probe_external_redirect,
        probe_https_redirect,
        probe_forwarded_headers,
    ]
    for run_probe in probes:
        checks.extend(run_probe(target))
    app_sees_https = any(c.name == "the app sees https" and c.ok for c in checks)
    checks.extend(probe_websocket(target, app_sees_https))
    checks.extend(probe_upload_limit(target))
    checks.extend(probe_error_format(target))
    return checks


def failed_hints(checks: list[Check]) -> set[str]:
    return {hint for check in checks if check.ok is False for hint in check.hints}


def report(target: Target, checks: list[Check]) -> str:
    lines = [f"lab doctor: {target.url} (CA: {target.ca or 'system trust store'})"]
    for check in checks:
        mark = {True: "ok  ", False: "FAIL", None: "skip"}[check.ok]
        lines.append(f"  [{mark}] {check.name}: {check.seen}")
        if check.ok is False:
            lines.extend(f"         likely cause: {hint}" for hint in check.hints)
    failed = sum(c.ok is False for c in checks)
    skipped = sum(c.ok is None for c in checks)
    lines.append(
        f"{len(checks)} checks: {len(checks) - failed - skipped} ok, {failed} failed, {skipped} skipped"
    )
    return "\n".join(lines)


def main() -> int:
    target = target_from_env()
    try:
        checks = run(target)
    except (OSError, http.client.HTTPException) as error:
        print(f"lab doctor: cannot reach {target.url}: {error}\n  start a stack or set LAB_URL / LAB_CA")
        return 2
    print(report(target, checks))
    return 1 if any(c.ok is False for c in checks) else 0
