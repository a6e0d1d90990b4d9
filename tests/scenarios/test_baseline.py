"""Under the baseline every scenario's symptom is absent, and the doctor finds nothing wrong."""

from __future__ import annotations

import pytest

from labctl import doctor
from scenarios.catalogue import CASES, Case
from scenarios.conftest import observe
from support.lab import Lab


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_symptom_absent_under_baseline(case: Case, baseline: Lab) -> None:
    observation = observe(case, baseline, under_baseline=True)
    assert observation.present is False, (
        f"the baseline does not answer {case.request} as it should (scenario {case.name}): "
        f"{observation.seen}. Likely cause: {case.hint}"
    )


def test_doctor_passes_under_baseline(baseline: Lab) -> None:
    target = doctor.Target(baseline.url, baseline.ca, baseline.http_url)
    checks = doctor.run(target)
    assert all(check.ok is True for check in checks), doctor.report(target, checks)
