"""A server block of its own, picked by Host, that a compose test drops into the bind-mounted
nginx/conf.d/ (a probe file, removed afterwards): nothing the rest of the suite relies on changes."""

from __future__ import annotations

import time

import requests

PROBE_HOST = "reload-probe.invalid"


def probe_config(token: str) -> str:
    return (
        "server {\n"
        "    listen {{LAB_LISTEN_HTTPS}} ssl;\n"
        f"    server_name {PROBE_HOST};\n"
        "    include snippets/tls.conf;\n"
        "    default_type application/json;\n"
        f'    return 200 \'{{"probe":"{token}"}}\';\n'
        "}\n"
    )


def probe(lab, expect: int | None = None, within: float = 5.0) -> requests.Response:
    """GET the probe server on a fresh connection (a kept-alive one may still be served by an
    old worker: a reload is a signal, the new workers start a moment later). With ``expect``,
    retry until that status shows up, for at most ``within`` seconds."""
    end = time.monotonic() + within
    while True:
        with lab.session() as fresh:
            answer = fresh.get(lab.url + "/", headers={"Host": PROBE_HOST, "Connection": "close"}, timeout=5)
        if expect is None or answer.status_code == expect or time.monotonic() > end:
            return answer
        time.sleep(0.1)
