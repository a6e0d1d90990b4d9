"""Scenario h3-http-host on a side compose project (the trixie nginx speaks HTTP/3; Debian 12's
native nginx does not): `proxy_set_header Host $http_host` keeps the public host and port over
HTTP/1.1 and HTTP/2 and loses them over HTTP/3, where nginx leaves $http_host empty. The baseline
(`$host:<public port>`) keeps them over all three. The check is the scenario's own check.py."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from labctl import behaviours, catalogue, doctor, h3
from labctl.behaviours.http3 import H3_HOST
from labctl.endpoints import Endpoint
from support.composectl import Stack, side_stack

SCENARIO = catalogue.load("h3-http-host")


@pytest.fixture(scope="module")
def side(lab) -> Iterator[Stack]:
    with side_stack("h3", 300) as stack:
        stack.up(SCENARIO.name)
        yield stack


def test_h3_http_host_loses_the_host_over_http3_only(side, lab):
    endpoint = Endpoint(side.url, lab.ca, None)
    observation = SCENARIO.observe(endpoint)
    assert observation.present is True, (
        f"under {SCENARIO.name} expected the Location right over HTTP/1.1 and HTTP/2 and wrong over "
        f"HTTP/3; saw {observation.seen}"
    )
    seen = json.loads(h3.request(endpoint, "GET", "/debug/request").body)
    print(f"{SCENARIO.name}: {observation.seen}; over HTTP/3 the app saw host {seen['host']!r}")
    assert "Host" not in seen["headers"], (
        f"nginx 1.26 sends no Host for an empty $http_host: {seen['headers']}"
    )
    # The doctor sees it in its HTTP/3 rows, and names the cause.
    diagnosis = doctor.diagnose(endpoint, behaviours.Options())
    verdicts = {r.behaviour.id: r.verdict for r in diagnosis.results if r.behaviour.id.startswith("h3-")}
    assert verdicts == {"h3-advertised": "ok", "h3-answers": "ok", "h3-host": "broken"}, doctor.report(
        diagnosis
    )
    assert H3_HOST.hint in diagnosis.hints(), doctor.report(diagnosis)


def test_the_baseline_keeps_the_host_over_all_three(lab):
    observation = SCENARIO.observe(lab.endpoint)
    assert observation.present is False, (
        f"the baseline should be right over all three; saw {observation.seen}"
    )
