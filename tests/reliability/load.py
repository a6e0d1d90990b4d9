"""The reliability suite's background load while a fault happens: labctl.traffic's bounded load
(the one `make deploy` and the compose checks use), GETs only, every outcome recorded."""

from __future__ import annotations

from labctl import traffic
from support.lab import Lab

# /slow keeps requests in flight inside the worker when the fault hits; /healthz is the quick path.
PATHS = ("/slow?seconds=0.3", "/healthz")
THREADS = 4
# Bounded in count as well as time: the box is shared, and a fault window of ~12 s must stay covered.
MAX_REQUESTS = 5000


def background_load(lab: Lab, max_seconds: float) -> traffic.Load:
    """``with background_load(lab, 30) as load: <fault>``; then ``load.recording``."""
    return traffic.Load(
        lab.endpoint,
        http_threads=THREADS,
        websockets=0,
        paths=PATHS,
        max_requests=MAX_REQUESTS,
        max_seconds=max_seconds,
    )
