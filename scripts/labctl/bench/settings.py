"""The bench's sizes and durations: defaults keep a full run to a few minutes on 2 cores;
each one is a LAB_BENCH_* variable, and --quick shrinks them all for a smoke run (< 60 s)."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

SECTIONS = ("loop", "proxy", "upload", "ws", "hostile", "deploy", "workers", "protocols")


@dataclass(frozen=True)
class BenchSettings:
    # Each wrk run; direct and TLS back to back proxy_rounds times (the ratio: their median).
    proxy_seconds: float = 2.0
    proxy_rounds: int = 9
    proxy_connections: int = 50
    upload_mib: int = 1024
    # The app and the ideal receiver alternate this many times (upload.app_vs_ideal_ratio: the median).
    upload_rounds: int = 3
    # Before each upload: long enough for the hypervisor to take back the memory the last one freed
    # (see upload_rate.py), so every upload writes into the page cache from the same state.
    upload_settle_s: float = 3.0
    ws_max_connections: int = 10_000  # the ramp stops here even if the workers would hold more
    ws_ramp_timeout_s: float = 120.0
    ws_handshake_concurrency: int = 64
    ws_echo_clients: int = 20
    ws_echo_messages: int = 50  # per echo client
    ws_broadcasts: int = 3
    workers_connections: int = 100
    workers_seconds: float = 5.0
    workers_sleep_s: float = 0.2
    integration: bool = True  # time the integration suite (loop.integration_s)
    # `make deploy` (gunicorn's graceful reload) under this load: GET threads and websockets.
    deploy_threads: int = 16
    deploy_websockets: int = 16
    # What one trickling upload and one websocket client that never reads cost the workers.
    hostile_slow_uploads: int = 200
    hostile_unread_websockets: int = 4
    # HTTP/1.1 vs HTTP/2 vs HTTP/3 small GETs: each run, alternated protocol_rounds times; requests
    # in flight, over protocol_connections connections (HTTP/1.1: one connection per request).
    # h2load runs protocol_requests a round (it completes by count), the aioquic client protocol_seconds.
    protocol_requests: int = 6000
    protocol_seconds: float = 3.0
    protocol_rounds: int = 3
    protocol_in_flight: int = 20
    protocol_connections: int = 2

    @classmethod
    def from_env(cls, quick: bool = False) -> BenchSettings:
        base = QUICK if quick else cls()
        overrides = {}
        for field in fields(cls):
            raw = os.environ.get(f"LAB_BENCH_{field.name.upper()}", "").strip()
            if raw:
                kind = type(getattr(base, field.name))
                overrides[field.name] = raw.lower() in {"1", "true", "yes"} if kind is bool else kind(raw)
        return replace(base, **overrides)


QUICK = BenchSettings(
    proxy_seconds=1.0,
    proxy_rounds=1,
    proxy_connections=10,
    upload_mib=16,
    upload_rounds=1,
    upload_settle_s=0.0,
    ws_max_connections=200,
    ws_ramp_timeout_s=20.0,
    ws_echo_clients=4,
    ws_echo_messages=10,
    ws_broadcasts=1,
    workers_connections=20,
    workers_seconds=1.0,
    workers_sleep_s=0.05,
    integration=False,
    deploy_threads=4,
    deploy_websockets=4,
    hostile_slow_uploads=50,
    hostile_unread_websockets=2,
    protocol_requests=1000,
    protocol_seconds=1.0,
    protocol_rounds=1,
)


def env_help() -> str:
    """One line per setting, for `scripts/lab bench --help`."""
    return "\n".join(
        f"  LAB_BENCH_{f.name.upper():<26} default {getattr(BenchSettings(), f.name)!s:<6} "
        f"quick {getattr(QUICK, f.name)}"
        for f in fields(BenchSettings)
    )
