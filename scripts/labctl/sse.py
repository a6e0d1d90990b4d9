"""Server-Sent Events read as a browser's EventSource reads them, each event stamped with when it
arrived: whether a proxy passes a stream on as it is written or holds it (stream-buffered).
Standard library only, like labctl.probe."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from . import probe
from .endpoints import Endpoint


@dataclass(frozen=True)
class Event:
    id: str
    event: str
    data: str
    arrived_s: float  # since the request was sent


@dataclass(frozen=True)
class Stream:
    status: int
    content_type: str
    events: tuple[Event, ...]
    headers: dict[str, str] = field(default_factory=dict)  # the response's, lower-case names

    def first_s(self) -> float | None:
        return self.events[0].arrived_s if self.events else None

    def spread_s(self) -> float:
        """From the first event's arrival to the last's: about 0 when a proxy held them all."""
        return self.events[-1].arrived_s - self.events[0].arrived_s if self.events else 0.0


def read(
    endpoint: Endpoint,
    path: str,
    timeout: float = probe.TIMEOUT,
    limit: int | None = None,
    headers: dict[str, str] | None = None,
) -> Stream:
    """GET ``path`` and read its events until the stream ends, or ``limit`` events (a stream that
    never ends), in the line format of the HTML standard's EventSource (``field: value`` lines, a
    blank line ends an event). A stream the server compresses is not read (no events)."""
    conn = probe.connection(endpoint, endpoint.url, timeout)
    started = time.monotonic()
    try:
        conn.request(
            "GET", endpoint.prefix + path, headers={"Accept": "text/event-stream", **(headers or {})}
        )
        response = conn.getresponse()
        content_type = (response.getheader("content-type") or "-").split(";")[0]
        seen = {name.lower(): value for name, value in response.getheaders()}
        if response.status != 200 or content_type != "text/event-stream" or "content-encoding" in seen:
            return Stream(response.status, content_type, (), seen)  # unread: it may never end
        events: list[Event] = []
        fields: dict[str, str] = {}
        while line := response.readline():
            text = line.decode().rstrip("\r\n")
            if text:
                name, _, value = text.partition(":")
                fields[name] = (
                    fields.get(name, "") + value.removeprefix(" ") if name == "data" else value.strip()
                )
                continue
            if fields:
                arrived = time.monotonic() - started
                events.append(
                    Event(
                        fields.get("id", ""), fields.get("event", "message"), fields.get("data", ""), arrived
                    )
                )
                fields = {}
                if limit is not None and len(events) >= limit:
                    break
        return Stream(response.status, content_type, tuple(events), seen)
    finally:
        conn.close()
