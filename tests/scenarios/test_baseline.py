"""Under the baseline every scenario's symptom is absent, and the doctor finds nothing wrong."""

from __future__ import annotations

import pytest

from labctl import behaviours, doctor, stack
from labctl.catalogue import Scenario
from labctl.endpoints import Endpoint
from scenarios.conftest import NATIVE, observe


@pytest.mark.parametrize("scenario", NATIVE, ids=lambda scenario: scenario.name)
def test_symptom_absent_under_baseline(scenario: Scenario, baseline: Endpoint) -> None:
    observation = observe(scenario, baseline, under_baseline=True)
    assert observation.present is False, (
        f"the baseline does not answer {scenario.request} as it should (scenario {scenario.name}): "
        f"{observation.seen}. Likely cause: {scenario.hint}"
    )


def test_doctor_passes_under_baseline(baseline: Endpoint) -> None:
    diagnosis = doctor.run(baseline)
    verdicts = {(r.behaviour.id, r.verdict) for r in diagnosis.results}
    assert {v for _, v in verdicts} == {behaviours.OK, behaviours.NOT_PROBED}, doctor.report(diagnosis)
    # HTTP/3 only where this stack's nginx has the module (Debian 12's native 1.22 has not).
    no_http3 = {"h3-advertised", "h3-answers", "h3-host"} if stack.nginx_has_http3() is False else set()
    # Not asked: an idle websocket and a quiet Socket.IO client (--idle), websockets held open
    # (--hold-websockets).
    not_asked = {"ws-idle", "socketio-ping", "capacity"}
    not_probed = {b for b, v in verdicts if v == behaviours.NOT_PROBED}
    assert not_probed == {*not_asked, *no_http3}, doctor.report(diagnosis)
    assert diagnosis.matches == [], doctor.report(diagnosis)
