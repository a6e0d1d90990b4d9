"""patch-order's check: the app's outbound HTTPS call (GET /debug/outbound) and gevent's
MonkeyPatchWarning in the app server's log since it last started. A function because half of it
is a log, which data checks do not read."""

from __future__ import annotations

from labctl import probe, stack
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

WARNING = "MonkeyPatchWarning: Monkey-patching ssl after ssl has already been imported"
STARTED = "Starting gunicorn"


def warned_since_start(log: str) -> bool:
    """gevent's warning after the last start of gunicorn's master (the log is appended to)."""
    return WARNING in log[log.rfind(STARTED) :] if STARTED in log else WARNING in log


def observe(endpoint: Endpoint) -> Observation:
    reply = probe.request(endpoint, "GET", "/debug/outbound", timeout=15)
    body = reply.json()
    msg = str(body.get("msg", "")) if isinstance(body, dict) else ""
    failed = reply.status == 502 and "outbound HTTPS request" in msg
    log = stack.log_tail(5000).get("app", "") if endpoint.is_local_lab else ""
    warned = warned_since_start(log)
    seen = f"GET /debug/outbound: {reply.describe()} {msg[msg.find(': ', 60) + 2 :][:60]}; app log: " + (
        ("MonkeyPatchWarning (ssl imported before gevent patched it)" if warned else "no MonkeyPatchWarning")
        if log
        else "not readable here"
    )
    if not log:  # another deployment: the outbound call alone tells
        return Observation(classify(failed, reply.status == 200), seen)
    return Observation(classify(failed and warned, reply.status == 200 and not warned), seen)
