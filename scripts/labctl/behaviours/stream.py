"""Streams through the proxy: a stream's events (Server-Sent Events) reach the client as the app
writes them, not all at once at its end (nginx's default proxy_buffering, gzip)."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

from .. import probe as http_probe
from .. import sse
from ..diagnose.config import Directive, effective
from .core import (
    BROKEN,
    MEDIUM,
    NOT_PROBED,
    OK,
    Behaviour,
    Finding,
    Probe,
    Result,
    Site,
    at,
    missing,
    probe,
    result,
    rule,
)

ORDER = 75
EVENTS = 4  # read this many events at most: a live feed never ends
# What a browser sends: gzip on the location then shows (and holds the stream).
BROWSER = {"Accept-Encoding": "gzip"}
EVENT_STREAM = "text/event-stream"

STREAM = Behaviour(
    "stream",
    "a stream's events arrive as the app writes them",
    "a stream's events arrive all at once at its end: nginx buffers proxied responses by default; turn "
    "proxy_buffering off on the stream's location (or send X-Accel-Buffering: no from the app), and no "
    "gzip there",
    MEDIUM,
    ("stream-buffered",),
)
ALL = (STREAM,)


def interval_of(route: str) -> float | None:
    """The interval a stream route declares in its query (the lab's ``interval=S``), if any."""
    values = parse_qs(urlsplit(route).query).get("interval", [])
    try:
        return float(values[0]) if values else None
    except ValueError:
        return None


def _cause(stream: sse.Stream) -> str:
    """What the response shows of why a proxy held it."""
    accel = stream.headers.get("x-accel-buffering")
    return (
        f"X-Accel-Buffering: {accel} from the app (so the hold is elsewhere: gzip, proxy_ignore_headers)"
        if accel
        else "no X-Accel-Buffering from the app, so proxy_buffering on the location decides"
    )


@probe(STREAM)
def probe_stream(p: Probe) -> Iterator[Result]:
    route = p.options.routes.stream
    if route is None:
        yield result(STREAM, NOT_PROBED, "no stream route (--stream-url)")
        return
    interval = interval_of(route)
    # Wait for the first event a little longer than the lab's stream lasts (or the probe's timeout).
    wait = max(http_probe.TIMEOUT, (EVENTS + 1) * interval) if interval else http_probe.TIMEOUT
    try:
        stream = sse.read(p.endpoint, route, timeout=wait, limit=EVENTS, headers=BROWSER)
    except TimeoutError:
        yield result(
            STREAM,
            BROKEN,
            f"{route}: no event within {wait:g} s (a proxy holding a stream that has not ended)",
        )
        return
    except OSError as error:
        yield result(STREAM, NOT_PROBED, f"{route}: {type(error).__name__}: {error}")
        return
    if "content-encoding" in stream.headers and stream.content_type == EVENT_STREAM:
        encoding = stream.headers["content-encoding"]
        yield result(
            STREAM, BROKEN, f"{route}: Content-Encoding: {encoding} on the stream (gzip holds events)"
        )
        return
    first = stream.first_s()
    if stream.status != 200 or stream.content_type != EVENT_STREAM or first is None:
        yield result(STREAM, NOT_PROBED, f"{route}: {stream.status} {stream.content_type}, no events")
        return
    count = len(stream.events)
    seen = f"{route}: {count} events, the first at {first:.2f} s, the last {stream.spread_s():.2f} s after it"
    if interval is not None:
        late = count > 1 and first >= (count - 1) * interval * 0.8
        seen += f" (written one every {interval:g} s)"
    else:  # any app's stream: held when every event came together, late
        late = count > 1 and first >= 1 and stream.spread_s() < first / 10
    if late:
        yield result(STREAM, BROKEN, f"{seen}: all held to the end; {_cause(stream)}")
    else:
        yield result(STREAM, OK, seen)


@rule(STREAM)
def rule_stream(site: Site) -> Iterator[Finding]:
    """Where the stream route lands: buffering on (nginx's default) holds its events to the end,
    unless the app sends X-Accel-Buffering: no (the lab's does not: the config must say it);
    gzip there with text/event-stream among its types holds them too."""
    location = site.location(site.routes.stream)
    if location is None:
        return
    buffering = effective(location, "proxy_buffering")
    if not buffering or buffering[-1].args[:1] != ["off"]:
        fix = "`proxy_buffering off;` in the stream's location (or X-Accel-Buffering: no from the app)"
        yield (
            at(buffering[-1], STREAM, fix)
            if buffering
            else missing(location, "proxy_buffering off", STREAM, fix)
        )
    if (gzip := _gzips_streams(location)) is not None:
        yield at(gzip, STREAM, "`gzip off;` in the stream's location")


def _gzips_streams(location: Directive) -> Directive | None:
    """The `gzip on` in force at the location when its gzip_types take text/event-stream."""
    gzip = effective(location, "gzip")
    types = [t for d in effective(location, "gzip_types") for t in d.args]
    if gzip and gzip[-1].args[:1] == ["on"] and (EVENT_STREAM in types or "*" in types):
        return gzip[-1]
    return None
