"""Socket.IO through the proxy (Engine.IO 4, spoken by hand: the standard library only): the
polling handshake, the session's later polls on fresh connections (sticky routing), the upgrade
to a websocket, the Origin check, and the ping interval against the proxy's read timeout."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

from .. import probe as http_probe
from .. import wsclient
from ..diagnose.config import Directive, effective, proxy_headers, seconds
from .core import (
    BROKEN,
    EVIL_HOST,
    HIGH,
    MEDIUM,
    NOT_PROBED,
    OK,
    Behaviour,
    Finding,
    Probe,
    Result,
    Site,
    at,
    header_value,
    missing,
    probe,
    result,
    rule,
)

ORDER = 75
DEFAULT_PATH = "/socket.io/"
SESSIONS = 6  # polling sessions: each a chance to land on another worker
# A Socket.IO connect, then events with an ack id: each queues an answer, which ends the long-poll.
PACKETS = [b"40", b'421["echo",1]', b'422["echo",2]']
POLL_S = 3.0  # a long-poll whose POST reached another process waits for pingInterval: not that long
DEFAULT_READ_TIMEOUT_S = 60
# Engine.IO's defaults (python-engineio, socket.io): what a config is judged against by its text.
DEFAULT_PING_S = (25, 20)
SEP = "\x1e"  # Engine.IO 4's packet separator in a polling payload

SIO_HANDSHAKE = Behaviour(
    "socketio-handshake",
    "a Socket.IO polling handshake is answered (Engine.IO open packet)",
    'Socket.IO answers "unsupported version of the Socket.IO or Engine.IO protocols": either the '
    "client's major version does not match the server's (socket.io-client 2 speaks EIO=3, python-"
    "socketio 5 only EIO=4), or the proxy drops the query string that carries EIO (proxy_pass with a"
    " variable and a URI)",
    HIGH,
    ("socketio-protocol-mismatch",),
)
SIO_STICKY = Behaviour(
    "socketio-sticky",
    "a Socket.IO session's polls reach the process that holds it",
    "Socket.IO sessions are refused by the worker that does not hold them (400 Invalid session / "
    "Session ID unknown): route each session's requests to one process (a routing cookie, sticky "
    "sessions), or use the websocket transport only",
    HIGH,
    ("socketio-no-sticky",),
)
SIO_UPGRADE = Behaviour(
    "socketio-upgrade",
    "a Socket.IO session upgrades to a websocket",
    "Socket.IO clients never leave long-polling: the upgrade request does not reach the app as an "
    "upgrade; pass Upgrade and Connection (the $connection_upgrade map) and proxy_http_version 1.1 "
    "on the Socket.IO location",
    HIGH,
    ("socketio-stuck-polling",),
)
SIO_ORIGIN = Behaviour(
    "socketio-origin",
    "Socket.IO accepts the public origin and refuses a foreign one",
    'Socket.IO refuses the page\'s own Origin ("is not an accepted origin"): the app sees another '
    "scheme, host or port than the browser used; forward Host with its port and X-Forwarded-"
    'Proto/Host on the Socket.IO location (and trust them: ProxyFix), not cors_allowed_origins="*"',
    MEDIUM,
    ("socketio-origin-rejected",),
)
SIO_PING = Behaviour(
    "socketio-ping",
    "Socket.IO's pingInterval + pingTimeout fit under the proxy's read timeout",
    "Socket.IO clients are disconnected after a fixed idle time though both ends are alive: the "
    "proxy's read timeout on the Socket.IO location is below pingInterval + pingTimeout; raise it "
    "above their sum",
    MEDIUM,
    ("socketio-ping-timeout",),
)
ALL = (SIO_HANDSHAKE, SIO_STICKY, SIO_UPGRADE, SIO_ORIGIN, SIO_PING)


class Session:
    """One Engine.IO polling session: its sid, its timings, the cookie a proxy set with it."""

    def __init__(self, p: Probe, path: str, origin: str | None = None) -> None:
        self.p, self.path = p, path
        headers = {"Origin": origin} if origin else {}
        self.reply = p.get(f"{path}?EIO=4&transport=polling&t=lab", headers)
        cookie = self.reply.headers.get("set-cookie", "")
        self.cookie = cookie.split(";", 1)[0]
        self.open: dict[str, object] = {}
        body = self.reply.body.decode("utf-8", "replace")
        if self.reply.status == 200 and body.startswith("0"):
            try:
                with_json = json.loads(body[1:].split(SEP)[0] or "{}")
            except ValueError:  # not an open packet after all: no session
                with_json = {}
            self.open = with_json if isinstance(with_json, dict) else {}

    @property
    def sid(self) -> str:
        return str(self.open.get("sid", ""))

    def ping_s(self) -> tuple[float, float]:
        return _ms(self.open.get("pingInterval")), _ms(self.open.get("pingTimeout"))

    def url(self, transport: str = "polling") -> str:
        return f"{self.path}?EIO=4&transport={transport}&sid={self.sid}"

    def headers(self) -> dict[str, str]:
        return {"Cookie": self.cookie} if self.cookie else {}

    def exchange(self, pool: ThreadPoolExecutor) -> list[http_probe.Reply]:
        """As a client runs a session: a long-poll held open while it POSTs (the Socket.IO
        connect, then acked events, each ending the poll), each on a fresh connection, so that
        the two travel side by side to the app as a browser's do."""
        replies = []
        for packet in PACKETS:
            poll = pool.submit(
                http_probe.request,
                self.p.endpoint,
                "GET",
                self.url(),
                self.headers(),
                None,
                None,
                None,
                POLL_S,
            )
            headers = {**self.headers(), "Content-Type": "text/plain"}
            replies.append(http_probe.request(self.p.endpoint, "POST", self.url(), headers, packet))
            with contextlib.suppress(TimeoutError):  # its worker never got the POST: the other refused it
                replies.append(poll.result())
        return replies


def _ms(value: object) -> float:
    return float(value) / 1000 if isinstance(value, int | float) else 0.0


def _refusal(reply: http_probe.Reply) -> str:
    message = reply.json()
    text = message.get("msg") if isinstance(message, dict) else message
    return f"{reply.status} {text if isinstance(text, str) else reply.body[:80]!r}"


def public_origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@probe(*ALL)
def probe_socketio(p: Probe) -> Iterator[Result]:
    path = p.options.routes.socketio
    if path is None:
        return
    try:
        first = Session(p, path)
    except OSError as error:
        yield result(SIO_HANDSHAKE, BROKEN, f"{path}: {error}")
        return
    if first.reply.status == 404:
        yield result(SIO_HANDSHAKE, NOT_PROBED, f"{path} answered 404: no Socket.IO there (--socketio-path)")
        return
    if not first.sid:
        yield result(SIO_HANDSHAKE, BROKEN, f"{path}: handshake answered {_refusal(first.reply)}")
        return
    interval, timeout = first.ping_s()
    yield result(
        SIO_HANDSHAKE, OK, f"{path}: open packet, pingInterval {interval:g} s, pingTimeout {timeout:g} s"
    )
    for behaviour, judge in (
        (SIO_STICKY, lambda: _sticky(p, first)),
        (SIO_UPGRADE, lambda: _upgrade(p, first)),
        (SIO_ORIGIN, lambda: _origin(p, path)),
        (SIO_PING, lambda: _ping(p, first, interval + timeout)),
    ):
        try:
            yield judge()
        except OSError as error:  # a dropped or refused connection, a timeout: the row says so
            yield result(behaviour, BROKEN, f"{path}: {type(error).__name__}: {error}")


def polling_sessions(p: Probe, path: str, first: Session | None = None) -> list[http_probe.Reply]:
    """SESSIONS polling sessions at ``path`` (``first`` one of them), run side by side as clients
    run theirs (a thread each, one more for its long-poll): every reply, a refused handshake's too."""
    sessions = [*([first] if first else []), *(Session(p, path) for _ in range(SESSIONS - bool(first)))]
    opened = [session for session in sessions if session.sid]
    with ThreadPoolExecutor(2 * len(opened) or 1) as pool:
        running = [pool.submit(session.exchange, pool) for session in opened]
        exchanged = [reply for each in running for reply in each.result()]
    return [session.reply for session in sessions if not session.sid] + exchanged


def _sticky(p: Probe, first: Session) -> Result:
    replies = polling_sessions(p, first.path, first)
    refused = [_refusal(r) for r in replies if r.status != 200]
    counted = f"{len(replies)} requests of {SESSIONS} polling sessions"
    if refused:
        return result(SIO_STICKY, BROKEN, f"{len(refused)} of {counted} refused: {refused[0]}")
    return result(SIO_STICKY, OK, f"{counted}, each on a new connection, answered")


def _upgrade(p: Probe, session: Session) -> Result:
    url = session.url("websocket")
    try:
        handshake, conn = http_probe.websocket(p.endpoint, url, session.headers())
    except OSError as error:
        return result(SIO_UPGRADE, BROKEN, f"upgrade: {error}")
    if conn is None:
        return result(SIO_UPGRADE, BROKEN, f"upgrade answered {handshake.status}, not 101")
    with conn:
        try:
            conn.send_text("2probe")
            opcode, payload = conn.recv()
        except OSError as error:
            return result(SIO_UPGRADE, BROKEN, f"101, then no answer to 2probe ({type(error).__name__})")
        if b"Invalid session" in payload:  # the upgrade reached another process than the session's
            return result(SIO_UPGRADE, NOT_PROBED, "101, then Invalid session: see the sticky routing row")
        if opcode != wsclient.OP_TEXT or payload != b"3probe":
            return result(SIO_UPGRADE, BROKEN, f"101, then {payload[:40]!r} to 2probe (opcode {opcode})")
        conn.send_text("5")
    return result(SIO_UPGRADE, OK, "101, 2probe answered 3probe, upgraded")


def _origin(p: Probe, path: str) -> Result:
    public = public_origin(p.endpoint.url)
    own, foreign = Session(p, path, public), Session(p, path, f"https://{EVIL_HOST}")
    if not own.sid:
        return result(SIO_ORIGIN, BROKEN, f"Origin {public} (the public one) refused: {_refusal(own.reply)}")
    if foreign.sid:
        return result(SIO_ORIGIN, BROKEN, f"Origin https://{EVIL_HOST} accepted: any site may connect")
    return result(SIO_ORIGIN, OK, f"Origin {public} accepted, https://{EVIL_HOST} refused")


def _ping(p: Probe, session: Session, needed_s: float) -> Result:
    read_timeout = p.options.socketio_read_timeout_s
    if read_timeout is not None:
        verdict = OK if read_timeout > needed_s else BROKEN
        return result(
            SIO_PING,
            verdict,
            f"pingInterval + pingTimeout {needed_s:g} s; proxy_read_timeout {read_timeout:g} s",
        )
    if p.options.idle_s:
        return _hold_quiet(p, session, p.options.idle_s)
    return result(SIO_PING, NOT_PROBED, "not asked (--idle SECONDS: a quiet Socket.IO client held that long)")


def _hold_quiet(p: Probe, session: Session, idle_s: float) -> Result:
    """A quiet websocket session that answers the server's pings, held ``idle_s``: still open?"""
    fresh = Session(p, session.path)
    try:
        handshake, conn = http_probe.websocket(p.endpoint, fresh.url("websocket"), fresh.headers())
    except OSError as error:
        return result(SIO_PING, NOT_PROBED, f"no websocket to hold: {error}")
    if conn is None:
        return result(SIO_PING, NOT_PROBED, f"no websocket to hold: upgrade answered {handshake.status}")
    started = time.monotonic()
    with conn:
        try:
            conn.send_text("2probe")
            conn.recv()
            conn.send_text("5")
            while (left := idle_s - (time.monotonic() - started)) > 0:
                conn.settimeout(left)
                try:
                    opcode, payload = conn.recv()
                except TimeoutError:
                    break
                if opcode == wsclient.OP_CLOSE:
                    raise ConnectionError(f"close {wsclient.close_code(payload)}")
                if payload == b"2":
                    conn.send_text("3")
        except OSError as error:
            quiet = time.monotonic() - started
            return result(SIO_PING, BROKEN, f"a quiet client dropped after {quiet:.0f} s ({error})")
    return result(SIO_PING, OK, f"a quiet client held {time.monotonic() - started:.0f} s")


def socketio_location(site: Site) -> Directive | None:
    """The config's Socket.IO location: the one named socket.io, else where a path given for it
    (--socketio-path) lands; None where the config shows no Socket.IO."""
    for directive in site.app_server.walk():
        if directive.name == "location" and any("socket.io" in arg for arg in directive.args):
            return directive
    path = site.routes.socketio
    return site.location(path) if path not in (None, DEFAULT_PATH) else None


def read_timeout_s(location: Directive) -> float:
    timeouts = effective(location, "proxy_read_timeout")
    return seconds(timeouts[-1].args[0]) if timeouts and timeouts[-1].args else DEFAULT_READ_TIMEOUT_S


@rule(SIO_UPGRADE, SIO_ORIGIN, SIO_PING, SIO_STICKY)
def rule_socketio(site: Site) -> Iterator[Finding]:
    location = socketio_location(site)
    if location is None:
        return
    headers = proxy_headers(location)
    upgrade, connection = header_value(headers, "upgrade"), header_value(headers, "connection")
    if upgrade is None or "$http_upgrade" not in upgrade:
        fix = "add `proxy_set_header Upgrade $http_upgrade;` (hop-by-hop: not forwarded unless set)"
        yield missing(location, "proxy_set_header Upgrade $http_upgrade", SIO_UPGRADE, fix)
    if connection is None or "upgrade" not in connection.lower():
        fix = 'add `proxy_set_header Connection $connection_upgrade;` (or "upgrade")'
        yield missing(location, "proxy_set_header Connection $connection_upgrade", SIO_UPGRADE, fix)
    yield from _origin_headers(site, location, headers)
    timeouts = effective(location, "proxy_read_timeout")
    if read_timeout_s(location) <= sum(DEFAULT_PING_S):
        fix = f"`proxy_read_timeout` above pingInterval + pingTimeout ({sum(DEFAULT_PING_S)} s), e.g. 1h"
        yield (
            at(timeouts[-1], SIO_PING, fix)
            if timeouts
            else missing(location, "proxy_read_timeout", SIO_PING, fix)
        )
    yield from _upstream(site, location)


def _origin_headers(site: Site, location: Directive, headers: dict[str, Directive]) -> Iterator[Finding]:
    """What the app compares Origin with: the scheme and Host (or X-Forwarded-Host) it is sent."""
    if header_value(headers, "x-forwarded-host") is None:
        host = header_value(headers, "host")
        default_port = site.public_https_port == 443 if site.tls else site.public_http_port == 80
        if host is None or not ("$http_host" in host or ("$host" in host and default_port)):
            fix = "`proxy_set_header Host $http_host;` (the public host with its port)"
            found = headers.get("host")
            yield (
                at(found, SIO_ORIGIN, fix)
                if found is not None
                else missing(location, "proxy_set_header Host $http_host", SIO_ORIGIN, fix)
            )
    if site.tls and header_value(headers, "x-forwarded-proto") is None:
        fix = "add `proxy_set_header X-Forwarded-Proto $scheme;` to the Socket.IO location"
        yield missing(location, "proxy_set_header X-Forwarded-Proto $scheme", SIO_ORIGIN, fix)


def _upstream(site: Site, location: Directive) -> Iterator[Finding]:
    """Several servers in the upstream the Socket.IO location proxies to, none of them sticky."""
    passes = effective(location, "proxy_pass")
    target = urlsplit(passes[-1].args[0]).hostname if passes and passes[-1].args else None
    upstream = site.config.upstreams().get(target or "")
    if upstream is None or len(upstream.children("server")) < 2:
        return
    if not any(d.name in ("ip_hash", "hash", "sticky") for d in upstream.children()):
        fix = (
            "`ip_hash;` (or `hash $cookie_<name> consistent;`) in the upstream, so a session keeps its server"
        )
        yield missing(upstream, "ip_hash", SIO_STICKY, fix)
