"""Proxy overhead: small GETs through nginx TLS (upstream keepalive pool) vs straight to
gunicorn, same worker, in rounds of one wrk run each, back to back (the order swapped every round);
the ratio is the median of the rounds' ratios, so a burst of the neighbours' load spoils one round
rather than the figure. Plus the CPU each process group spent per request."""

from __future__ import annotations

import statistics
from typing import Any

from .. import endpoints, paths, procs
from ..health import wait_healthy
from . import bench_stack, nginxlog, record, wrk
from .settings import BenchSettings

PATH = "/healthz"


def _combine(runs: list[wrk.LoadResult]) -> dict[str, Any]:
    """All rounds of one target: total requests over total time, median latency percentiles."""
    seconds = sum(r.seconds for r in runs)
    return {
        "rps": round(sum(r.requests for r in runs) / seconds, 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in runs), 2),
        "p99_ms": round(statistics.median(r.p99_ms for r in runs), 2),
        "errors": sum(sum(r.errors.values()) for r in runs),
    }


def run(settings: BenchSettings) -> dict[str, Any]:
    urls = {
        "direct": f"http://127.0.0.1:{endpoints.app_port()}{PATH}",
        "tls": f"https://localhost:{endpoints.https_port()}{PATH}",
    }
    wait_healthy(urls["tls"], paths.CA, 10)  # verified once: wrk itself checks no certificate
    processes = {"app": [bench_stack.app_worker_pid()], "nginx": bench_stack.nginx_worker_pids()}
    rounds: dict[str, list[wrk.LoadResult]] = {name: [] for name in urls}
    cpu = {name: dict.fromkeys([*processes, "wrk"], 0.0) for name in urls}
    for number in range(settings.proxy_rounds):
        for name, url in sorted(urls.items(), reverse=bool(number % 2)):
            before = {group: procs.cpu_seconds(pids) for group, pids in processes.items()}
            wrk_before = bench_stack.children_cpu_seconds()
            rounds[name].append(wrk.run(url, settings.proxy_connections, settings.proxy_seconds))
            for group, pids in processes.items():
                cpu[name][group] += procs.cpu_seconds(pids) - before[group]
            cpu[name]["wrk"] += bench_stack.children_cpu_seconds() - wrk_before
    summary: dict[str, Any] = {name: _combine(runs) for name, runs in rounds.items()}
    for name, runs in rounds.items():
        # Where the time goes: CPU milliseconds per request, per process group.
        requests = sum(r.requests for r in runs) or 1
        summary[name]["cpu_ms_per_request"] = {g: round(v * 1000 / requests, 3) for g, v in cpu[name].items()}
    summary["tls"]["nginx_log"] = nginxlog.means_ms(PATH)
    # The single-threaded worker is the bottleneck: its CPU per request bounds the rps ratio the
    # proxy allows on an otherwise idle machine, whatever the neighbours do meanwhile.
    app_cpu = {name: summary[name]["cpu_ms_per_request"]["app"] for name in urls}
    summary["app_cpu_bound_ratio"] = record.ratio(app_cpu["direct"], app_cpu["tls"])
    summary["rounds"] = {name: [r.as_dict() for r in runs] for name, runs in rounds.items()}
    round_ratios = [record.ratio(t.rps, d.rps) for t, d in zip(rounds["tls"], rounds["direct"], strict=True)]
    summary["round_ratios"] = round_ratios
    summary["ratio"] = statistics.median(r for r in round_ratios if r is not None)
    return summary
