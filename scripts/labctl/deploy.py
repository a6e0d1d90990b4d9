"""`make deploy`: replace every app process of the running stack while a bounded load runs
through nginx, then print what the load saw per 250 ms and plot it into .lab/deploy/.

The deploy itself is the stack's (labctl.stack.deploy: gunicorn's graceful reload natively, new
replicas before the old ones stop in compose). The load is labctl.traffic's: GETs on keep-alive
connections and websockets that reconnect with backoff and jitter. A request that failed or a
websocket that was cut (closed without 1001/1012) makes the command exit 1: a deploy is only
done when it dropped nothing.

It sits above the other commands because it draws with the bench's chart (labctl.bench.chart).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from . import endpoints, paths, stack, traffic
from .bench import chart
from .venv import reexec_in_venv

OUT = paths.LAB / "deploy"
# The load `make deploy` runs: a few GETs at a time and a few websockets, stopping by itself.
HTTP_THREADS, WEBSOCKETS = 4, 4
MAX_REQUESTS, MAX_SECONDS = 20_000, 180.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--threads", type=int, default=HTTP_THREADS, help=f"GET threads of the load (default {HTTP_THREADS})"
    )
    parser.add_argument(
        "--websockets", type=int, default=WEBSOCKETS, help=f"websocket clients (default {WEBSOCKETS})"
    )


def write(recording: traffic.Recording, seconds: float, mode: str) -> list[Path]:
    """timeline.json (every event) and timeline.png under .lab/deploy/."""
    OUT.mkdir(parents=True, exist_ok=True)
    data = {
        "mode": mode,
        "deploy_seconds": round(seconds, 2),
        "served": recording.served,
        "failed": recording.failed,
        "client_retries": recording.client_retries,
        "websocket_closes": {str(code): n for code, n in sorted(recording.close_codes().items())},
        "websockets_reconnected": recording.reconnected,
        "events": [asdict(event) for event in recording.events],
    }
    (OUT / "timeline.json").write_text(json.dumps(data, indent=1) + "\n")
    title = f"make deploy ({mode}): {recording.served} served, {recording.failed} failed"
    (OUT / "timeline.png").write_bytes(
        chart.render(title, [chart.Timeline.from_recording(recording, "per 250 ms")])
    )
    return [OUT / "timeline.json", OUT / "timeline.png"]


def main(args: argparse.Namespace) -> int:
    reexec_in_venv(args.lab_argv)
    mode = stack.require().MODE
    endpoint = endpoints.from_env()
    load = traffic.Load(
        endpoint,
        http_threads=args.threads,
        websockets=args.websockets,
        max_requests=MAX_REQUESTS,
        max_seconds=MAX_SECONDS,
    )
    print(
        f"lab deploy ({mode}) under load: {args.threads} GET threads, {args.websockets} websockets "
        f"(at most {MAX_REQUESTS} requests, {MAX_SECONDS:.0f} s)",
        flush=True,
    )

    def note(text: str) -> None:
        load.note(text)
        print(f"lab deploy: {text}", flush=True)

    recording, seconds = traffic.under_load(lambda _: stack.deploy(note), load)
    print(f"\n{recording.timeline()}\n")
    written = write(recording, seconds, mode)
    print(f"lab deploy: {seconds:.1f}s; {recording.summary()}")
    print(f"lab deploy: wrote {', '.join(str(p.relative_to(paths.ROOT)) for p in written)}")
    if recording.failed or recording.cut_websockets:
        print(
            f"lab deploy: NOT zero-downtime: {recording.failed} failed requests "
            f"{recording.failures()[:5]}, {recording.cut_websockets} websockets cut",
            file=sys.stderr,
        )
        return 1
    return 0
