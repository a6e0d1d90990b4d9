"""Scenario stale-upstream-dns, self-contained: a second compose project of this checkout (its own
ports, network and volume), so the stack under test by the rest of the suite is left alone.

Under the scenario (upstream{} resolved once) recreating the app at a new address gives 502 until
nginx restarts; under the baseline (variable + resolver) the same move costs at most the
resolver's 1 s. The test ends with a graceful `compose stop` while a websocket is open.
"""

from __future__ import annotations

import time
from contextlib import closing

import pytest
import requests
import websocket

from support.composectl import ip_holder, recreate_app_elsewhere, statuses, until_ok

SCENARIO = "stale-upstream-dns"
# Longer than the resolver cache of the baseline (valid=1s): under it, 502s would have ended.
OBSERVE_S = 8


@pytest.fixture
def session(lab):
    with lab.session() as http:
        yield http


def test_stale_upstream_dns_gives_502_until_nginx_restarts(side, session):
    side.up(SCENARIO)
    url = side.url + "/healthz"
    assert session.get(url, timeout=5).status_code == 200
    with ip_holder(side) as holders:
        old_ip, new_ip = recreate_app_elsewhere(side, holders)
        seen = statuses(session, url, seconds=OBSERVE_S)
        assert set(seen) == {502}, (
            f"under {SCENARIO}, after the app moved {old_ip} -> {new_ip}, expected 502 throughout "
            f"(nginx still on the old address); saw {seen}"
        )
        error_log = side.nginx_error_log()
        assert f"{old_ip}:8000" in error_log, f"nginx should name the old address:\n{error_log[-2000:]}"
        print("\n".join([line for line in error_log.splitlines() if "upstream" in line][-3:]))
        side.compose("restart", "nginx")
        until_ok(session, url, timeout=30)
        assert set(statuses(session, url, seconds=2)) == {200}


def test_baseline_follows_the_recreated_app(side, session):
    side.up("")
    url = side.url + "/healthz"
    with ip_holder(side) as holders:
        old_ip, new_ip = recreate_app_elsewhere(side, holders)
        waited = until_ok(session, url, timeout=10)
        seen = statuses(session, url, seconds=OBSERVE_S)
        assert set(seen) == {200}, f"baseline, app moved {old_ip} -> {new_ip}: saw {seen}"
        print(f"baseline: 200 again {waited:.1f}s after the recreated app was healthy")


def test_stop_is_graceful_and_fast_with_a_websocket_open(side, lab):
    """`compose stop` with an open websocket: nginx (SIGQUIT, worker_shutdown_timeout) and gunicorn
    (SIGTERM, GUNICORN_GRACEFUL_TIMEOUT) exit by themselves, before Docker's SIGKILL (exit 137)."""
    side.up("")
    ws_url = side.url.replace("https://", "wss://") + "/ws/echo"
    conn = websocket.create_connection(ws_url, timeout=10, sslopt={"ca_certs": str(lab.ca)})
    with closing(conn):
        conn.send("still here")
        assert conn.recv() == "still here"
        started = time.monotonic()
        side.compose("stop")
        took = time.monotonic() - started
    codes = {s: side.inspect(s)["State"]["ExitCode"] for s in ("nginx", "app")}
    assert all(code != 137 for code in codes.values()), f"SIGKILLed on stop: exit codes {codes}"
    assert codes == {"nginx": 0, "app": 0}, f"exit codes on stop: {codes}"
    print(f"compose stop with an open websocket: {took:.1f}s, exit codes {codes}")
    with pytest.raises(requests.RequestException):
        requests.get(side.url + "/healthz", verify=str(lab.ca), timeout=2)
