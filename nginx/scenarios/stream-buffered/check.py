"""stream-buffered's check: when each event of a stream reaches the client.

A proxy that buffers still delivers every event, only late: the check times each one's arrival,
which a status and a header cannot say (so a function, not data).
"""

from __future__ import annotations

from labctl import sse
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

COUNT = 4
INTERVAL_S = 0.5
PATH = f"/stream/events?count={COUNT}&interval={INTERVAL_S:g}"
# The app writes the first event at once and the last (COUNT - 1) intervals later.
LAST_SENT_S = (COUNT - 1) * INTERVAL_S


def observe(endpoint: Endpoint) -> Observation:
    stream = sse.read(endpoint, PATH, timeout=LAST_SENT_S + 10)
    first = stream.first_s()
    if first is None or len(stream.events) != COUNT:
        return Observation(
            None, f"{PATH}: {stream.status} {stream.content_type}, {len(stream.events)} of {COUNT} events"
        )
    seen = (
        f"{COUNT} events written one every {INTERVAL_S:g} s arrived from {first:.2f} s to "
        f"{first + stream.spread_s():.2f} s after the request"
    )
    # Held: the first arrives with the last. Streamed: the first within one interval, and the
    # arrivals spread over about the time the app took to write them.
    held = first >= LAST_SENT_S * 0.8 and stream.spread_s() < INTERVAL_S / 2
    streamed = first < INTERVAL_S and stream.spread_s() >= LAST_SENT_S * 0.8
    return Observation(classify(held, streamed), seen)
