"""Under each scenario its symptom shows, exactly as a user would see it, and where the doctor
probes that behaviour it names the scenario's hint as the likely cause.

One test per scenario (not one per assertion): pytest groups tests by the index of a module-scoped
parameter, so a second, shorter parameter list would restart stacks in between.
"""

from __future__ import annotations

import pytest

from labctl import doctor
from scenarios.catalogue import CASES, Case
from scenarios.conftest import observe
from support.lab import Lab


@pytest.mark.parametrize("scenario_lab", [case.name for case in CASES], indirect=True)
def test_scenario_shows_its_symptom(scenario_lab: tuple[Case, Lab]) -> None:
    case, lab = scenario_lab
    observation = observe(case, lab, under_baseline=False)
    assert observation.present is True, (
        f"scenario {case.name} no longer shows its symptom ({case.symptom_for(8443, 8080)}) "
        f"for {case.request}: saw {observation.seen}"
    )
    if case.doctor:
        target = doctor.Target(lab.url, lab.ca, lab.http_url)
        checks = doctor.run(target)
        assert case.hint in doctor.failed_hints(checks), (
            f"under {case.name} the doctor should name: {case.hint}\n{doctor.report(target, checks)}"
        )
