"""Websockets through the proxy: the handshake is upgraded, the socket stays open and answers,
the app sees wss behind TLS, and an idle socket is held past nginx's read timeout."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from .. import probe as http_probe
from .. import wsclient
from ..diagnose.config import Directive, effective, proxy_headers, seconds, upstream_path
from .core import (
    BROKEN,
    HIGH,
    LOW,
    MEDIUM,
    NOT_PROBED,
    OK,
    Behaviour,
    Finding,
    Probe,
    Result,
    Routes,
    Site,
    at,
    header_value,
    missing,
    probe,
    result,
    rule,
)

ORDER = 70
HANDSHAKE_SEEN_HEADER = "x-lab-handshake-seen"  # the lab app's note on a refused handshake
# nginx proxies with HTTP/1.1 by default from this version on.
HTTP11_DEFAULT = (1, 29, 7)
IDLE_S = 65
DEFAULT_READ_TIMEOUT_S = 60
# The lab's app serves its echo at this path only: reached under another one (lab check's app
# echoes on any path and first says which), the config rewrote it on the way.
LAB_ECHO = Routes().ws

WS_UPGRADE = Behaviour(
    "ws-upgrade",
    "a websocket handshake is upgraded (101)",
    "a websocket location needs `proxy_http_version 1.1`, `proxy_set_header Upgrade $http_upgrade` and "
    "`proxy_set_header Connection $connection_upgrade`",
    HIGH,
    ("ws-http10", "ws-no-upgrade"),
    route="ws",
)
WS_OPEN = Behaviour(
    "ws-open",
    "an upgraded websocket stays open and answers",
    "101 then an immediate close: the app upgraded a path it does not serve as a websocket (a Flask route "
    "without `websocket=True` under gevent-websocket)",
    HIGH,
    ("ws-no-flag",),
    route="ws",
)
WS_SCHEME = Behaviour(
    "ws-scheme",
    "the app sees wss behind TLS",
    "the websocket location lost X-Forwarded-Proto: a location's own proxy_set_header drops every "
    "inherited one, so repeat the whole set there",
    MEDIUM,
    ("location-drops-headers",),
    route="ws_info",
)
WS_IDLE = Behaviour(
    "ws-idle",
    "an idle websocket is held",
    "`proxy_read_timeout` on the websocket location above the longest silence (default 60s), or pings "
    "from the app",
    LOW,
    ("ws-idle-timeout",),
    route="ws",
)
ALL = (WS_UPGRADE, WS_OPEN, WS_SCHEME, WS_IDLE)


@dataclass(frozen=True)
class Refusal:
    """A refused handshake's status: the scenario that refuses it so, and the pieces that one
    lacks (what the status alone tells, where the app's note on the handshake did not come back)."""

    scenario: str
    pieces: tuple[str, ...]


NO_UPGRADE = Refusal(
    "ws-no-upgrade",
    ("proxy_set_header Upgrade $http_upgrade", "proxy_set_header Connection $connection_upgrade"),
)
HTTP10 = Refusal("ws-http10", ("proxy_http_version 1.1",))
HANDSHAKE_REFUSALS = {400: NO_UPGRADE, 402: HTTP10, 426: HTTP10, 505: HTTP10}


def missing_pieces(handshake: wsclient.Handshake) -> list[str]:
    """Which parts of the upgrade the proxy dropped, from the status and the app's note on it."""
    seen = handshake.headers.get(HANDSHAKE_SEEN_HEADER, "")
    if seen:
        notes = dict(part.strip().partition("=")[::2] for part in seen.split(";"))
        missing = []
        if notes.get("protocol") != "HTTP/1.1":
            missing.append(f"proxy_http_version 1.1 (the app got {notes.get('protocol')})")
        if notes.get("upgrade", "").lower() != "websocket":
            missing.append("proxy_set_header Upgrade $http_upgrade")
        if "upgrade" not in notes.get("connection", "").lower():
            missing.append("proxy_set_header Connection $connection_upgrade")
        return missing
    refusal = HANDSHAKE_REFUSALS.get(handshake.status)
    return list(refusal.pieces) if refusal is not None else []


@probe(WS_UPGRADE, WS_OPEN, WS_IDLE)
def probe_websocket(p: Probe) -> Iterator[Result]:
    route = p.options.routes.ws
    if route is None:
        yield result(WS_UPGRADE, NOT_PROBED, "no websocket route (--ws-url)")
        return
    try:
        handshake, conn = http_probe.websocket(p.endpoint, route)
    except OSError as error:
        yield result(WS_UPGRADE, BROKEN, f"{route}: {error}")
        return
    if conn is None:
        if handshake.status == 404:
            yield result(WS_UPGRADE, NOT_PROBED, f"{route} answered 404: no such websocket route")
            return
        missing = missing_pieces(handshake)
        seen = f"{route}: handshake answered {handshake.status}" + (
            f"; missing: {', '.join(missing)}" if missing else ""
        )
        yield result(WS_UPGRADE, BROKEN, seen)
        yield result(WS_OPEN, NOT_PROBED, "no websocket to keep open")
        yield result(WS_IDLE, NOT_PROBED, "no websocket to hold idle")
        return
    with conn:
        conn.settimeout(http_probe.TIMEOUT)
        said: list[bytes] = []  # what the app sent before its pong (lab check's echo: the path it got)
        try:
            conn.sock.sendall(wsclient.encode_frame(wsclient.OP_PING, b"lab-probe"))
            opcode, payload = _next_non_data(conn, said)
        except OSError as error:  # a TimeoutError among them
            yield _upgraded(route, said)
            then = (
                f"no answer to a ping within {http_probe.TIMEOUT:g} s"
                if isinstance(error, TimeoutError)
                else f"the connection dropped ({type(error).__name__})"
            )
            yield result(WS_OPEN, BROKEN, f"101, then {then}")
            return
        yield _upgraded(route, said)
        if opcode == wsclient.OP_CLOSE:
            yield result(WS_OPEN, BROKEN, f"101, then a close frame {wsclient.close_code(payload)}")
            return
        yield result(WS_OPEN, OK, "101, then a pong to a ping")
        if p.options.idle_s:
            yield _hold_idle(conn, p.options.idle_s)
        else:
            yield result(WS_IDLE, NOT_PROBED, "not asked (--idle SECONDS, e.g. 65: past nginx's 60s default)")


def _next_non_data(conn: wsclient.WebSocket, said: list[bytes] | None = None) -> tuple[int, bytes]:
    """The next pong or close, skipping any data frame the route sends on its own (its text
    frames kept in ``said``)."""
    while True:
        opcode, payload = conn.recv()
        if opcode in (wsclient.OP_PONG, wsclient.OP_CLOSE):
            return opcode, payload
        if said is not None and opcode == wsclient.OP_TEXT:
            said.append(payload)


def _upgraded(route: str, said: list[bytes]) -> Result:
    """The handshake's verdict: upgraded, unless the lab's echo was reached under another path
    (lab check's app echoes on any path and first says which: the config rewrote the path, so
    the lab's app itself would have answered 404)."""
    seen = f"{route}: 101, Sec-WebSocket-Accept verified"
    asked = urlsplit(route).path
    for payload in said if route == LAB_ECHO else []:
        try:
            got = json.loads(payload).get("path")
        except (ValueError, AttributeError):
            continue
        if isinstance(got, str) and got != asked:
            return result(
                WS_UPGRADE, BROKEN, f"{seen}, but the app got the path {got}: no such websocket route"
            )
    return result(WS_UPGRADE, OK, seen)


def _hold_idle(conn: wsclient.WebSocket, idle_s: float) -> Result:
    started = time.monotonic()
    conn.settimeout(idle_s + http_probe.TIMEOUT)
    time.sleep(idle_s)
    try:
        conn.sock.sendall(wsclient.encode_frame(wsclient.OP_PING, b"still there?"))
        opcode, payload = _next_non_data(conn)
    except OSError as error:
        dropped = f"after {idle_s:g} s of silence the connection dropped ({type(error).__name__})"
        return result(WS_IDLE, BROKEN, dropped)
    if opcode == wsclient.OP_CLOSE:
        return result(WS_IDLE, BROKEN, f"after {idle_s:g} s of silence: close {wsclient.close_code(payload)}")
    return result(WS_IDLE, OK, f"held {time.monotonic() - started:.0f} s idle, then a pong")


@probe(WS_SCHEME)
def probe_ws_scheme(p: Probe) -> Iterator[Result]:
    route = p.options.routes.ws_info
    if route is None:
        return
    try:
        handshake, conn = http_probe.websocket(p.endpoint, route)
    except OSError as error:
        yield result(WS_SCHEME, NOT_PROBED, f"{route}: {error}")
        return
    if conn is None:
        yield result(WS_SCHEME, NOT_PROBED, f"{route}: handshake answered {handshake.status}")
        return
    try:
        with conn:
            conn.settimeout(http_probe.TIMEOUT)
            opcode, payload = conn.recv()
        message = json.loads(payload) if opcode == wsclient.OP_TEXT else None
    except (OSError, ValueError) as error:  # a drop, a timeout, a message that is not JSON
        yield result(WS_SCHEME, NOT_PROBED, f"{route}: 101, then {type(error).__name__}: {error}")
        return
    if not isinstance(message, dict):
        yield result(WS_SCHEME, NOT_PROBED, f"{route}: 101, then no JSON object (opcode {opcode})")
        return
    scheme = message.get("scheme")
    want = "wss" if p.endpoint.tls else "ws"
    yield result(WS_SCHEME, OK if scheme == want else BROKEN, f'{route} reports "scheme": "{scheme}"')


@rule(WS_UPGRADE, WS_SCHEME, WS_IDLE)
def rule_websocket(site: Site) -> Iterator[Finding]:
    """The websocket location(s): the config's own (those that forward Upgrade) when the lab's
    /ws/* requests do not reach them, every one of them (also where `lab check` sent its probes
    to one: BinderHub's /hub/ and /user/ regexes both lack X-Forwarded-Proto), else where those
    requests land."""
    dedicated = site.websocket_locations()
    sent_to_one = site.routes.ws != LAB_ECHO and site.location(site.routes.ws) in dedicated
    if site.probes_miss_the_websocket_location() or (dedicated and sent_to_one):
        for location in dedicated:
            yield from _websocket_location(site, location)
    elif (probed := site.location(site.routes.ws)) is not None:
        yield from _websocket_location(site, probed)
        yield from _rewritten(probed, site.routes.ws)


def _rewritten(location: Directive, route: str | None) -> Iterator[Finding]:
    """A proxy_pass URI that replaces the location's prefix: the app's websocket route (the
    lab's /ws/echo) reaches the app under another path (``location /ws/ { proxy_pass
    http://websocket/; }`` sends /echo), where no websocket is served."""
    asked = urlsplit(route or "").path
    sent = upstream_path(location, asked)
    if sent is not None and sent != asked:
        fix = (
            f"{asked} reaches the app as {sent}: drop the URI from proxy_pass (`proxy_pass "
            "http://host:port;` passes the path as requested), or give the one the app serves"
        )
        yield at(location.children("proxy_pass")[0], WS_UPGRADE, fix)


def carries_upgrade(site: Site, value: str) -> bool:
    """A Connection value that says "upgrade" on a websocket handshake, judged by what it holds:
    the constant, the client's own Connection ($http_connection: "Upgrade" on a handshake), or a
    variable a map fills with "upgrade" (``map $http_upgrade $connection_upgrade``, by any name)."""
    if "upgrade" in value.lower() and "$" not in value:
        return True
    variables = set(re.findall(r"\$\{?(\w+)", value))
    if "http_connection" in variables or "connection_upgrade" in variables:
        return True
    return any(
        len(d.args) >= 2
        and d.args[1].lstrip("$").strip("{}") in variables
        and any("upgrade" in " ".join(entry.args).lower() for entry in d.block or [])
        for d in site.config.root.walk()
        if d.name == "map"
    )


def _websocket_location(site: Site, location: Directive) -> Iterator[Finding]:
    headers = proxy_headers(location)
    upgrade, connection = header_value(headers, "upgrade"), header_value(headers, "connection")
    # A header set to the wrong value (an inherited `Connection ''`) is blamed where it is set.
    upgrade_fix = "`proxy_set_header Upgrade $http_upgrade;` (hop-by-hop: not forwarded unless set)"
    if upgrade is None:
        yield missing(location, "proxy_set_header Upgrade $http_upgrade", WS_UPGRADE, f"add {upgrade_fix}")
    elif "$http_upgrade" not in upgrade:
        yield at(headers["upgrade"], WS_UPGRADE, upgrade_fix)
    connection_fix = '`proxy_set_header Connection $connection_upgrade;` (or "upgrade")'
    if connection is None:
        yield missing(location, 'proxy_set_header Connection "upgrade"', WS_UPGRADE, f"add {connection_fix}")
    elif not carries_upgrade(site, connection):
        yield at(headers["connection"], WS_UPGRADE, connection_fix)
    versions = effective(location, "proxy_http_version")
    version = versions[-1].args[0] if versions and versions[-1].args else None
    if version != "1.1" and site.nginx_version < HTTP11_DEFAULT:
        fix = "add `proxy_http_version 1.1;` (nginx speaks HTTP/1.0 upstream before 1.29.7)"
        yield (
            at(versions[-1], WS_UPGRADE, fix)
            if versions
            else missing(location, "proxy_http_version 1.1", WS_UPGRADE, fix)
        )
    if site.tls and header_value(headers, "x-forwarded-proto") is None:
        yield missing(
            location,
            "proxy_set_header X-Forwarded-Proto $scheme",
            WS_SCHEME,
            "add `proxy_set_header X-Forwarded-Proto $scheme;` to the websocket location",
        )
    timeouts = effective(location, "proxy_read_timeout")
    read_timeout = seconds(timeouts[-1].args[0]) if timeouts and timeouts[-1].args else DEFAULT_READ_TIMEOUT_S
    if read_timeout < IDLE_S:
        fix = "`proxy_read_timeout 1h;` in the websocket location (or pings more often than it)"
        yield (
            at(timeouts[-1], WS_IDLE, fix)
            if timeouts
            else missing(location, "proxy_read_timeout", WS_IDLE, fix)
        )
