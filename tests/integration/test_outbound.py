"""The app calls out over HTTPS under gevent (GET /debug/outbound: the lab's own nginx, verified
against the lab's CA), through gevent's patched ssl, and gunicorn's log has no
MonkeyPatchWarning (patch-order shows both broken by --preload)."""

from __future__ import annotations

import pytest

from labctl import hints, stack
from support.lab import Lab

WARNING = "MonkeyPatchWarning"


def test_outbound_https_from_the_app_goes_through_gevent_s_ssl(lab: Lab, http):
    response = http.get(lab.url + "/debug/outbound", timeout=20)
    assert response.status_code == 200, f"{response.text[:300]}: {hints.scenario('patch-order')}"
    seen = response.json()
    assert seen["status"] == 200 and seen["url"].endswith("/healthz"), seen
    assert seen["ssl_context"] == "gevent.ssl.SSLContext" and seen["ssl_patched_first"], seen


def test_the_app_server_s_log_has_no_monkey_patch_warning(lab: Lab):
    if not lab.endpoint.is_local_lab:
        pytest.skip("the app server's log of a stack this checkout did not start is not readable here")
    log = stack.log_tail(5000).get("app", "")
    since_start = log[log.rfind("Starting gunicorn") :]
    assert "Starting gunicorn" in log, f"gunicorn's start is not in the app log's tail: {log[-500:]}"
    assert WARNING not in since_start, (
        f"gunicorn's log: {since_start[since_start.find(WARNING) :][:400]}. {hints.scenario('patch-order')}"
    )
