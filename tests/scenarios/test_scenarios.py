"""Under each scenario its symptom shows, exactly as a user would see it, and where the doctor
probes that behaviour its own probes find the scenario's behaviour broken (and so name its hint).

One test per scenario (not one per assertion): pytest groups tests by the index of a module-scoped
parameter, so a second, shorter parameter list would restart stacks in between.
"""

from __future__ import annotations

import pytest

from labctl import doctor
from labctl.catalogue import Scenario
from labctl.endpoints import Endpoint
from scenarios.conftest import NATIVE, observe


@pytest.mark.parametrize("scenario_lab", [s.name for s in NATIVE], indirect=True)
def test_scenario_shows_its_symptom(scenario_lab: tuple[Scenario, Endpoint]) -> None:
    scenario, endpoint = scenario_lab
    observation = observe(scenario, endpoint, under_baseline=False)
    assert observation.present is True, (
        f"scenario {scenario.name} no longer shows its symptom ({scenario.symptom_for(8443, 8080)}) "
        f"for {scenario.request}: saw {observation.seen}"
    )
    if scenario.doctor:
        diagnosis = doctor.run(endpoint)
        assert diagnosis.failed, (
            f"under {scenario.name} the doctor's own probes saw nothing broken (only the catalogue's "
            "check would name it)\n" + doctor.report(diagnosis)
        )
        # The probes', not the catalogue's: a matched scenario's hint would be there anyway.
        assert scenario.behaviour is not None, f"{scenario.name}: doctor = true needs behaviour = ..."
        failed = [r.behaviour for r in diagnosis.failed]
        assert scenario.behaviour in failed, (
            f"under {scenario.name} the doctor's probes should find {scenario.behaviour.id} broken "
            f"(likely cause: {scenario.behaviour.hint}); they found {[b.id for b in failed]}\n"
            + doctor.report(diagnosis)
        )
        assert scenario.hint in diagnosis.hints(), (
            f"under {scenario.name} the doctor should name: {scenario.hint}\n" + doctor.report(diagnosis)
        )
