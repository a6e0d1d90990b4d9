"""nginx's own timings (request_time, upstream_response_time) from the lab's JSON access log."""

from __future__ import annotations

import contextlib
import json
import statistics
from typing import Any

from .. import stack as lab_stack


def proxied(uris: set[str], lines: int) -> list[dict[str, Any]]:
    """The recent proxied requests (those with an upstream time) to any of ``uris``."""
    entries = []
    for line in lab_stack.access_log_entries(lines):
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if entry.get("uri") in uris and entry.get("upstream_response_time"):
                entries.append(
                    {
                        "uri": entry["uri"],
                        "status": entry["status"],
                        "request_time": float(entry["request_time"]),
                        "upstream_response_time": float(entry["upstream_response_time"]),
                    }
                )
    return entries


def last_by_uri(uris: set[str]) -> dict[str, dict[str, Any]]:
    return {entry["uri"]: entry for entry in proxied(uris, 200)}


def means_ms(uri: str, lines: int = 5000) -> dict[str, float]:
    """Mean request_time and upstream_response_time of the last logged requests to ``uri``."""
    entries = proxied({uri}, lines)
    if not entries:
        return {}
    return {
        "requests": len(entries),
        "request_time_ms": round(statistics.mean(e["request_time"] for e in entries) * 1000, 3),
        "upstream_response_time_ms": round(
            statistics.mean(e["upstream_response_time"] for e in entries) * 1000, 3
        ),
    }
