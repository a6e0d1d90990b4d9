"""event-loop-blocked's check: one CPU-bound request, and what it does to its worker.

Three things a status alone cannot tell (so a function, not data): /healthz asked while the work
runs, the CPU-bound request's own answer once its worker is gone, and gunicorn's log between
(WORKER TIMEOUT, and gevent's monitor's report when LAB_GEVENT_MONITOR=1, as app.env sets).
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor

from labctl import probe, stack
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

# Past app.env's GUNICORN_TIMEOUT=3: the master sends SIGABRT, and SIGKILL a second later, while
# the work is still inside one call into C.
CPU_S = 8.0
PROBE_AFTER_S = 0.5  # /healthz asked once the work holds the loop
STALL_S = 2.0  # a free loop answers /healthz in milliseconds
FAST_S = 0.5
FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


def _status(endpoint: Endpoint, path: str, timeout: float) -> int | str:
    try:
        return probe.request(endpoint, "GET", path, timeout=timeout).status
    except TimeoutError:
        return "no answer"


def blocking_function(log: str) -> str | None:
    """The innermost Python frame of the last stack gevent's monitor printed ("file:line in
    function"; the last: a long block is reported again and again, a brief one once), None when
    it printed none."""
    *_, report = log.split("Blocked Stack")
    frames = FRAME.findall(report.split("\nInfo:", 1)[0]) if "Blocked Stack" in log else []
    if not frames:
        return None
    path, line, function = frames[-1]
    return f"{'/'.join(path.split('/')[-3:])}:{line} in {function}"


def observe(endpoint: Endpoint) -> Observation:
    with stack.require().logs_written() as written, ThreadPoolExecutor(max_workers=1) as pool:
        work = pool.submit(_status, endpoint, f"/cpu?seconds={CPU_S:g}", CPU_S + 20)
        time.sleep(PROBE_AFTER_S)
        started = time.monotonic()
        health = _status(endpoint, "/healthz", STALL_S)
        waited = time.monotonic() - started
        cpu = work.result()
    log = written["app"]
    timeouts = log.count("WORKER TIMEOUT")
    blocker = blocking_function(log)
    seen = (
        f"/healthz during /cpu?seconds={CPU_S:g}: {health} after {waited:.2f} s; /cpu: {cpu}; "
        f"gunicorn's log: {timeouts} WORKER TIMEOUT"
        + (f"; gevent's monitor: the loop was held in {blocker}" if blocker else "")
    )
    symptom = health == "no answer" and cpu == 502 and timeouts > 0
    healthy = health == 200 and waited < FAST_S and cpu == 200 and timeouts == 0
    return Observation(classify(symptom, healthy), seen)
