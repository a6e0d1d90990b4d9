"""nginx keeps finding the app when its container restarts or is recreated at a new address: the
baseline names the app in a variable, re-resolved through Docker's DNS (snippets/upstream.conf)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from support.composectl import ip_holder, recreate_app_elsewhere, statuses, until_ok

# resolver valid=1s in snippets/upstream.conf: the longest nginx may keep an old answer.
RESOLVER_VALID_S = 1
SETTLE_S = RESOLVER_VALID_S + 5


def assert_serves_again(http, lab, what: str) -> None:
    waited = until_ok(http, lab.url + "/healthz", timeout=SETTLE_S)
    seen = statuses(http, lab.url + "/healthz", seconds=3)
    assert set(seen) == {200}, f"after {what}, nginx answered {seen} (502: it lost the app)"
    print(f"{what}: 200 again {waited:.1f}s after the app was healthy")


def test_restart_app_leaves_no_502(stack, lab, http):
    since, started = datetime.now(UTC).isoformat(), time.monotonic()
    stack.compose("restart", "app")
    print(f"docker compose restart app: {time.monotonic() - started:.1f}s")
    # gunicorn stopped by itself on SIGTERM, not killed at the end of stop_grace_period.
    assert "Shutting down: Master" in stack.app_log_since(since), "gunicorn did not stop gracefully"
    stack.wait_healthy("app")
    assert_serves_again(http, lab, "docker compose restart app")


def test_recreating_the_app_at_a_new_address_leaves_no_502(stack, lab, http):
    with ip_holder(stack) as holders:
        old_ip, new_ip = recreate_app_elsewhere(stack, holders)
        assert_serves_again(http, lab, f"up -d --force-recreate app ({old_ip} -> {new_ip})")
    # Without the holder, the app is where any later test expects it.
    assert_serves_again(http, lab, "removing the address holder")
