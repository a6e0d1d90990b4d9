"""early-reject's check: count the kernel's resets around 10 early-rejected uploads.

Whether the client sees the 502 is a race nginx usually wins on an idle machine: measured here,
0 to 28% of tries with the same config, depending on load, so no number of tries makes the 502
itself a reliable check. The cause is deterministic: the worker closes each refused connection
with the body unread, and the kernel answers with RST instead of FIN, once per try.
"""

from __future__ import annotations

from pathlib import Path

from labctl import probe, stack
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

TRIES = 10
BODY = 2 * probe.MIB


def sockets_reset_on_close() -> int | None:
    """Linux's TcpExt TCPAbortOnClose: sockets of this network namespace closed with unread data
    (each answered with RST). None where it cannot be read (not Linux)."""
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for header, values in zip(lines[::2], lines[1::2], strict=True):
        fields = dict(zip(header.split()[1:], values.split()[1:], strict=True))
        if "TCPAbortOnClose" in fields:
            return int(fields["TCPAbortOnClose"])
    return None


def observe(endpoint: Endpoint) -> Observation:
    before = sockets_reset_on_close()
    if before is None or stack.require().nginx_container() is not None:
        # The count is this network namespace's: a container's resets are its own.
        return Observation(
            None, "counting the worker's resets needs the stack on this host (native) on Linux"
        )
    statuses = [
        probe.request(
            endpoint, "POST", "/bugs/early-reject", body=probe.pattern_body(BODY), length=BODY, timeout=60
        ).status
        for _ in range(TRIES)
    ]
    resets = (sockets_reset_on_close() or 0) - before
    seen = (
        f"{TRIES} x 2 MiB POST: the worker reset {resets} connections on the unread body; "
        f"the client got 502 {statuses.count(502)} times, 403 {statuses.count(403)} times"
    )
    symptom = resets >= TRIES or 502 in statuses
    # Under the fix no try resets; fewer than half tolerates another program's stray reset.
    healthy = resets < TRIES // 2 and set(statuses) == {403}
    return Observation(classify(symptom, healthy), seen)
