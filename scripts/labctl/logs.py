"""`scripts/lab logs`: nginx's JSON access log and the app's request log side by side, one row per
request, joined by the request id nginx makes and the app adopts (X-Request-ID).

Logs are read through stack.log_tail(), so whichever mode runs the stack decides where they are.
A row with no app half never reached the app (nginx answered itself: 502, 413, 421, ...); an
app-only row came straight to gunicorn, not through nginx.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field

from . import stack

APP_ACCESS_MARK = " labapp.access "
TAIL_LINES = 5000


@dataclass
class Row:
    request_id: str
    when: str  # "YYYY-MM-DD HH:MM:SS", the finest clock both logs share
    nginx: dict = field(default_factory=dict)
    app: dict = field(default_factory=dict)


def _json_object(text: str) -> dict | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) and value.get("request_id") else None


def join(access_lines: list[str], app_lines: list[str]) -> list[Row]:
    """One row per request id, in time order (each log's own order within a second)."""
    rows: dict[str, Row] = {}
    for line in access_lines:
        if entry := _json_object(line.strip()):
            # $time_iso8601: "2026-11-20T22:39:50+00:00"
            when = entry.get("time", "")[:19].replace("T", " ")
            rows.setdefault(entry["request_id"], Row(entry["request_id"], when)).nginx = entry
    for line in app_lines:
        stamp, mark, payload = line.partition(APP_ACCESS_MARK)
        if mark and (entry := _json_object(payload.strip())):
            # logging's asctime: "2026-11-20 22:39:50,013 INFO"
            rows.setdefault(entry["request_id"], Row(entry["request_id"], stamp[:19])).app = entry
    return sorted(rows.values(), key=lambda row: row.when)


def _note(row: Row) -> str:
    if not row.app:
        return (
            "nginx answered itself, the app never saw it"
            if row.nginx.get("upstream_status") in ("", "-")
            else "no app log line"
        )
    if not row.nginx:
        return "direct to the app, not through nginx"
    if row.nginx.get("status") != row.app.get("status"):
        return f"nginx sent {row.nginx.get('status')}, the app answered {row.app.get('status')}"
    return ""


HEADER = (
    f"{'TIME':8}  {'REQUEST':8}  {'METHOD':6} {'URI':34} | "
    f"{'NGINX':5} {'UPSTR':5} {'SECS':>6} | {'APP':4} {'MS':>8} {'WS':2} | NOTE"
)


def render(row: Row) -> str:
    nginx, app = row.nginx, row.app
    uri = nginx.get("uri") or app.get("path", "")
    method = nginx.get("method") or app.get("method", "")
    nginx_half = (
        f"{nginx['status']:<5} {nginx.get('upstream_status') or '-':5} {nginx.get('request_time', ''):>6}"
        if nginx
        else f"{'-':5} {'-':5} {'-':>6}"
    )
    app_half = (
        f"{app.get('status', ''):<4} {app.get('duration_ms', ''):>8} {'ws' if app.get('websocket') else '':2}"
        if app
        else f"{'-':4} {'-':>8} {'':2}"
    )
    uri = uri if len(uri) <= 34 else uri[:33] + "…"
    request = f"{row.when[11:]:8}  {row.request_id[:8]:8}  {method:6} {uri:34}"
    return f"{request} | {nginx_half} | {app_half} | {_note(row)}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-n", "--requests", type=int, default=30, help="how many recent requests (default 30)"
    )
    parser.add_argument("--id", default="", help="only requests whose id starts with this")


def main(args: argparse.Namespace) -> int:
    tails = stack.log_tail(TAIL_LINES)
    if not tails:
        print("lab logs: no stack started from this checkout is running (`make native-up`)")
        return 1
    rows = join(tails.get("nginx access", "").splitlines(), tails.get("app", "").splitlines())
    rows = [row for row in rows if row.request_id.startswith(args.id)][-args.requests :]
    print(HEADER)
    for row in rows:
        print(render(row))
    return 0
