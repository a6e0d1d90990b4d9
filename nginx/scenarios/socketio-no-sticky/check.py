"""socketio-no-sticky's check: polling sessions as clients run them (a long-poll held open while
each POSTs, the sessions side by side), over fresh connections, and how many of their requests
were refused: the doctor's own sticky-routing probe (labctl.behaviours.socketio), counted.

A session lives in one worker; a request of it that reaches the other is answered 400 "Invalid
session". Sequential requests over one kept-alive connection could all reach the same worker by
luck: a client's long-poll and its POSTs travel side by side, as here.
"""

from __future__ import annotations

from labctl.behaviours import Options, Probe
from labctl.behaviours.socketio import DEFAULT_PATH, SESSIONS, polling_sessions
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint


def observe(endpoint: Endpoint) -> Observation:
    try:
        replies = polling_sessions(Probe(endpoint, Options()), DEFAULT_PATH)
    except OSError as error:
        return Observation(None, f"the polling sessions failed: {type(error).__name__}: {error}")
    refused = [r for r in replies if r.status == 400 and b"Invalid session" in r.body]
    other = [r for r in replies if r.status not in (200, 400)]
    seen = f"{len(refused)} of {len(replies)} requests of {SESSIONS} polling sessions answered 400"
    if refused:
        seen += f" {refused[0].body.decode(errors='replace')[:120]}"
    if other:
        seen += f"; {len(other)} answered {sorted({r.status for r in other})}"
    return Observation(classify(bool(refused), not refused and not other), seen)
