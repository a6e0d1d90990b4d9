"""Worker classes under slow requests: many concurrent /slow calls through nginx, one worker each."""

from __future__ import annotations

from .. import endpoints
from . import bench_stack, wrk
from .settings import BenchSettings

WORKER_CLASSES = {
    "gevent-websocket": bench_stack.BASELINE_WORKER,
    "gevent": "gevent",
    "sync": "sync",
}


def run(settings: BenchSettings) -> dict[str, wrk.LoadResult]:
    """wrk's completed requests/s per worker class; each class gets a fresh stack."""
    url = f"https://localhost:{endpoints.https_port()}/slow?seconds={settings.workers_sleep_s:g}"
    # A sync worker serves one request at a time: the last in line waits connections * sleep.
    timeout = settings.workers_connections * settings.workers_sleep_s + 5
    results = {}
    for name, worker_class in WORKER_CLASSES.items():
        with bench_stack.native_stack(worker_class):
            results[name] = wrk.run(url, settings.workers_connections, settings.workers_seconds, timeout)
    return results
