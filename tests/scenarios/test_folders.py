"""Each scenario folder is complete and matches its row in the catalogue (no stack needed)."""

from __future__ import annotations

import re

import pytest

from labctl import paths, scenarios
from scenarios.catalogue import BY_NAME, CASES, Case

pytestmark = pytest.mark.no_stack

NATIVE = [name for name in scenarios.all_names() if not scenarios.compose_only(name)]
# Every knob the app and gunicorn read: an app.env key outside this set would be silently ignored.
KNOWN_ENV = set(
    re.findall(
        r"\b(?:LAB|GUNICORN)_[A-Z_]+",
        (paths.APP_DIR / "labapp" / "settings.py").read_text()
        + (paths.APP_DIR / "gunicorn.conf.py").read_text(),
    )
)


def test_every_folder_has_a_check_and_every_check_a_folder() -> None:
    assert sorted(NATIVE) == sorted(BY_NAME), (
        "nginx/scenarios/ and tests/scenarios/catalogue.py disagree: add the missing folder or row"
    )


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_scenario_files_replace_baseline_files(case: Case) -> None:
    folder = paths.SCENARIOS / case.name
    confs = [p.relative_to(folder) for p in folder.rglob("*.conf")]
    assert confs or (folder / "app.env").is_file(), f"{case.name} changes nothing"
    for conf in confs:
        assert (paths.NGINX_SRC / conf).is_file(), (
            f"{case.name}/{conf} replaces no baseline file: the overlay would only add it"
        )


@pytest.mark.parametrize(
    "case", [c for c in CASES if (paths.SCENARIOS / c.name / "app.env").is_file()], ids=lambda case: case.name
)
def test_app_env_sets_known_settings(case: Case) -> None:
    lines = (paths.SCENARIOS / case.name / "app.env").read_text().splitlines()
    keys = {line.partition("=")[0].strip() for line in lines if "=" in line and not line.startswith("#")}
    assert keys and keys <= KNOWN_ENV, f"unknown settings in {case.name}/app.env: {keys - KNOWN_ENV}"


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_readme_states_the_checked_symptom(case: Case) -> None:
    sections = {
        title: scenarios.readme_section(case.name, title)
        for title in ("Symptom", "Cause", "Fix", "References")
    }
    assert all(sections.values()), (
        f"{case.name}/README.md lacks a section: {[t for t, s in sections.items() if not s]}"
    )
    assert sections["Symptom"].splitlines()[0] == case.symptom_for(8443, 8080), (
        f"{case.name}/README.md's symptom must open with what the check observes"
    )
    assert "https://" in sections["References"], f"{case.name}/README.md cites no public reference"


def test_project_readme_lists_every_scenario_with_its_symptom() -> None:
    readme = (paths.ROOT / "README.md").read_text()
    missing = [
        case.name
        for case in CASES
        if f"| {case.name} |" not in readme or case.symptom_for(8443, 8080) not in readme
    ]
    assert not missing, f"README.md's scenario table is out of step with the catalogue for: {missing}"
