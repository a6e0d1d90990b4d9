"""Small GETs through nginx over HTTP/1.1, HTTP/2 and HTTP/3, alternating in one run: requests/s,
and the CPU per request of the client, nginx and the app (informational: no goal).

Clients: h2load (Debian's nghttp2-client) for HTTP/1.1 and HTTP/2, the same binary for both; for
HTTP/3 the lab's aioquic client (Debian 12's h2load speaks no HTTP/3), driven from this process.
aioquic is Python: its own CPU per request is recorded beside the rate, because at this size the
client, not nginx, is what HTTP/3's figure measures. nginx's CPU per request is the comparable part.

The stack must speak HTTP/3: the running compose stack of this checkout, a native one whose nginx
has the module, or else a compose stack started (and stopped) for the section.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import shutil
import subprocess
import time
from collections.abc import Coroutine, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import labsettings

from .. import compose, endpoints, nginx, paths, probe, procs
from .. import stack as lab_stack
from ..health import wait_healthy
from . import bench_stack
from .settings import BenchSettings

if TYPE_CHECKING:  # aioquic is .venv's: imported where HTTP/3 is measured (`scripts/lab` runs without it)
    from .. import h3

PATH = "/healthz"
INSTALL_HINT = "h2load is not installed: sudo apt-get install -y nghttp2-client"
PROTOCOLS = ("h1.1", "h2", "h3")
H2LOAD_TIMEOUT_S = 120  # one round of protocol_requests (6,000 took 1-3 s here)


@dataclass(frozen=True)
class Load:
    requests: int
    failed: int
    seconds: float
    client_cpu_s: float

    @property
    def rps(self) -> float:
        return round(self.requests / self.seconds, 1) if self.seconds else 0.0


def h2load_shape(protocol: str, settings: BenchSettings, keepalive_requests: int) -> list[str]:
    """h2load's arguments for one round, run the way h2load completes: a request count
    (``--duration`` over HTTP/2 started no request in a 1 s run, and over HTTP/1.1 ran more than
    10 minutes without ending), over enough connections that none outlives nginx's
    keepalive_requests (h2load does not reconnect: over 2 connections 4,000 of 6,000 errored).
    HTTP/1.1: one connection per request in flight; HTTP/2: the rest as concurrent streams."""
    total = settings.protocol_requests
    needed = math.ceil(total / keepalive_requests)
    if protocol == "h1.1":
        return ["--h1", f"--clients={max(settings.protocol_in_flight, needed)}", f"--requests={total}"]
    clients = max(settings.protocol_connections, needed)
    streams = max(1, settings.protocol_in_flight // clients)
    return [f"--clients={clients}", f"--max-concurrent-streams={streams}", f"--requests={total}"]


def h2load(url: str, protocol: str, settings: BenchSettings) -> Load:
    """One h2load round (h2load_shape), bounded in time."""
    binary = shutil.which("h2load")
    if binary is None:
        raise SystemExit(INSTALL_HINT)
    shape = h2load_shape(protocol, settings, labsettings.KEEPALIVE_REQUESTS.value())
    before = bench_stack.children_cpu_seconds()
    completed = subprocess.run(
        [binary, *shape, url], capture_output=True, text=True, timeout=H2LOAD_TIMEOUT_S, check=True
    )
    return parse_h2load(completed.stdout, bench_stack.children_cpu_seconds() - before)


def parse_h2load(stdout: str, client_cpu_s: float) -> Load:
    """h2load's summary: its own rate is over the measured duration (the warm-up excluded)."""
    finished = re.search(r"^finished in [0-9.]+m?s, ([0-9.]+) req/s", stdout, re.MULTILINE)
    counts = re.search(
        r"^requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", stdout, re.M
    )
    if finished is None or counts is None:
        raise RuntimeError(f"h2load printed no summary:\n{stdout[-2000:]}")
    rate, succeeded = float(finished.group(1)), int(counts.group(1))
    seconds = succeeded / rate if rate else 0.0
    return Load(succeeded, int(counts.group(2)), round(seconds, 3), round(client_cpu_s, 3))


def aioquic_load(endpoint: endpoints.Endpoint, port: int, settings: BenchSettings) -> Load:
    """GET PATH over HTTP/3 for ``protocol_seconds``: ``protocol_connections`` QUIC connections,
    each keeping its share of ``protocol_in_flight`` requests in flight (aioquic, one event loop).
    nginx closes a connection after keepalive_requests (1000): the client opens the next one, as
    h2load does."""
    from .. import h3

    streams = settings.protocol_in_flight // settings.protocol_connections
    deadline = time.monotonic() + settings.protocol_seconds
    counts = {"done": 0, "failed": 0}

    async def stream(client: h3.Client) -> None:
        while time.monotonic() < deadline:
            try:
                reply = await client.request("GET", PATH)
            except ConnectionError:
                return  # the connection's end (its request limit): the next connection takes over
            counts["done" if reply.status == 200 else "failed"] += 1

    async def connection() -> None:
        while time.monotonic() < deadline:
            async with h3.connect(endpoint, port) as client:
                await asyncio.gather(*(stream(client) for _ in range(streams)))

    cpu_before, started = time.process_time(), time.monotonic()
    asyncio.run(asyncio.wait_for(_all(connection() for _ in range(settings.protocol_connections)), 60))
    seconds = time.monotonic() - started
    return Load(
        counts["done"], counts["failed"], round(seconds, 3), round(time.process_time() - cpu_before, 3)
    )


async def _all(coroutines: Iterator[Coroutine[Any, Any, None]]) -> None:
    await asyncio.gather(*coroutines)


@contextlib.contextmanager
def http3_stack() -> Iterator[str]:
    """A stack that speaks HTTP/3, and what it is: the running one of this checkout if it does,
    else a native one (nginx with the module) or a compose one, started and always stopped."""
    running = lab_stack.current()
    if running is not None and running.nginx_has_http3():
        yield f"the running {running.MODE} stack"
        return
    if running is not None:
        raise RuntimeError(
            f"the running {running.MODE} stack's nginx has no HTTP/3: stop it, the section starts its own"
        )
    if nginx.nginx_has_http3():
        with bench_stack.native_stack():
            yield "a native stack"
        return
    compose.require_engine()
    with contextlib.redirect_stdout(None):
        lab_stack.start(compose)
    try:
        yield "a compose stack (the native nginx has no HTTP/3)"
    finally:
        with contextlib.redirect_stdout(None):
            compose.down()


def run(settings: BenchSettings) -> dict[str, Any]:
    with http3_stack() as where:
        endpoint = endpoints.from_env()
        url = endpoint.url + PATH
        wait_healthy(url, paths.CA, 15)  # verified once: h2load checks no certificate
        port = probe.alt_svc_h3(
            probe.request(endpoint, "GET", PATH).headers.get("alt-svc", ""), endpoint.port
        )
        if port is None:
            raise RuntimeError(f"{where} advertises no HTTP/3 (Alt-Svc)")
        groups = lab_stack.require().process_groups()
        rounds: dict[str, list[Load]] = {name: [] for name in PROTOCOLS}
        server_cpu = {name: dict.fromkeys(groups, 0.0) for name in PROTOCOLS}
        for _ in range(settings.protocol_rounds):  # alternated: background load hits all three
            for name in PROTOCOLS:
                before = {group: procs.cpu_seconds(pids) for group, pids in groups.items()}
                load = aioquic_load(endpoint, port, settings) if name == "h3" else h2load(url, name, settings)
                rounds[name].append(load)
                for group, pids in groups.items():
                    server_cpu[name][group] += procs.cpu_seconds(pids) - before[group]
    summary: dict[str, Any] = {"stack": where, "path": PATH, "in_flight": settings.protocol_in_flight}
    for name, loads in rounds.items():
        # A round with errored requests is failed, not a rate: its rate is of what the client
        # managed before the errors (HTTP/2's 0.35x of HTTP/1.1 was h2load's connections ending).
        clean = [load for load in loads if load.requests and not load.failed]
        if not clean:
            counts = "; ".join(f"{load.requests} succeeded, {load.failed} failed" for load in loads)
            raise RuntimeError(f"{name}: every round had errored requests or none done ({counts})")
        requests = sum(load.requests for load in loads) or 1
        summary[name] = {
            "rps": round(sum(load.requests for load in clean) / sum(load.seconds for load in clean), 1),
            "failed_rounds": len(loads) - len(clean),
            "failed": sum(load.failed for load in loads),
            "cpu_ms_per_request": {
                "client": round(sum(load.client_cpu_s for load in loads) * 1000 / requests, 3),
                **{group: round(cpu * 1000 / requests, 3) for group, cpu in server_cpu[name].items()},
            },
            "rounds": [asdict(load) for load in loads],
        }
    return summary
