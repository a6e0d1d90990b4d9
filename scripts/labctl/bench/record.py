"""What a bench run records: results.json holds exactly the figures the issue names (null when a
section did not run), details.json every raw figure behind them, and the table printed at the end."""

from __future__ import annotations

import contextlib
import json
import operator
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RESULT_KEYS: dict[str, tuple[str, ...]] = {
    "proxy": ("tls_vs_direct_rps_ratio",),
    "upload": ("app_vs_ideal_ratio", "unbuffered_vs_discard_ratio", "app_rss_growth_mib"),
    "ws": ("connections_held", "kib_per_connection", "broadcast_ms"),
    "hostile": ("kib_per_slow_upload", "mib_per_unread_websocket"),
    "workers": ("gevent_vs_sync_ratio",),
    "loop": ("native_up_s", "integration_s"),
    "deploy": ("failed_requests", "seconds"),
    "protocols": ("h2_vs_h11_rps_ratio", "h3_vs_h2_rps_ratio", "h3_vs_h2_nginx_cpu_ratio"),
}


@dataclass(frozen=True)
class Goal:
    key: str  # "section.name"
    symbol: str
    threshold: float

    @property
    def compare(self) -> Callable[[float, float], bool]:
        return {">=": operator.ge, "<": operator.lt, "==": operator.eq}[self.symbol]

    def verdict(self, value: float | None) -> str:
        if value is None:
            return "not measured"
        return "met" if self.compare(value, self.threshold) else "MISSED"


GOALS = {
    goal.key: goal
    for goal in (
        Goal("proxy.tls_vs_direct_rps_ratio", ">=", 0.85),
        Goal("upload.app_vs_ideal_ratio", ">=", 0.85),
        Goal("upload.app_rss_growth_mib", "<", 32),
        Goal("ws.connections_held", ">=", 10_000),
        Goal("ws.kib_per_connection", "<", 30),
        Goal("ws.broadcast_ms", "<", 300),
        Goal("loop.native_up_s", "<", 1.5),
        Goal("deploy.failed_requests", "==", 0),
    )
}


def empty_results() -> dict[str, dict[str, Any]]:
    return {section: dict.fromkeys(keys) for section, keys in RESULT_KEYS.items()}


def ratio(value: float, reference: float) -> float | None:
    return round(value / reference, 3) if reference else None


def machine() -> dict[str, object]:
    """Enough to tell runs on different machines apart."""
    cpu, mem_kib = "", 0
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    with contextlib.suppress(OSError, IndexError, ValueError):
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def write(directory: Path, results: dict[str, Any], details: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (directory / "details.json").write_text(json.dumps(details, indent=2) + "\n")


def table(results: dict[str, dict[str, Any]], notes: dict[str, str]) -> str:
    """One row per result key: value, goal and verdict, and what it was measured against."""
    rows = [("result", "value", "goal", "verdict", "measured as")]
    for section, keys in RESULT_KEYS.items():
        for name in keys:
            key = f"{section}.{name}"
            value = results[section][name]
            goal = GOALS.get(key)
            rows.append(
                (
                    key,
                    "-" if value is None else f"{value:g}",
                    f"{goal.symbol} {goal.threshold:g}" if goal else "",
                    goal.verdict(value) if goal else "",
                    notes.get(key, ""),
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths, strict=True)) + "  " + row[4]
        for row in rows
    )
