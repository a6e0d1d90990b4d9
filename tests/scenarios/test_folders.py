"""Each scenario folder is complete: its declaration loads, its files replace baseline files, its
app.env sets known settings, its README has the sections. No stack needed."""

from __future__ import annotations

import pytest

import labsettings
from labctl import catalogue, paths
from labctl.catalogue import Scenario

pytestmark = pytest.mark.no_stack

ALL = catalogue.scenarios()


def test_every_folder_is_a_scenario() -> None:
    folders = sorted(p.name for p in paths.SCENARIOS.iterdir() if p.is_dir())
    assert folders == catalogue.names(), (
        f"folders without a {catalogue.DECLARATION}: {sorted(set(folders) - set(catalogue.names()))}"
    )


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.name)
def test_scenario_has_a_check(scenario: Scenario) -> None:
    if scenario.compose_only:
        # Run by its test under tests/compose, which may use the scenario's own check.
        assert not scenario.checks, f"{scenario.name}: compose-only: a check.py for tests/compose, or none"
    else:
        assert scenario.checked, (
            f"{scenario.name}: declare [[check]] in scenario.toml or observe() in check.py"
        )
        assert not (scenario.checks and scenario.function), f"{scenario.name}: one check, data or check.py"


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.name)
def test_scenario_files_replace_baseline_files(scenario: Scenario) -> None:
    confs = scenario.overlay_files()
    assert confs or scenario.app_env, f"{scenario.name} changes nothing"
    for conf in confs:
        assert (paths.NGINX_SRC / conf).is_file(), (
            f"{scenario.name}/{conf} replaces no baseline file: the overlay would only add it"
        )


@pytest.mark.parametrize("scenario", [s for s in ALL if s.app_env], ids=lambda s: s.name)
def test_app_env_sets_known_settings(scenario: Scenario) -> None:
    assert scenario.app_env is not None
    keys = set(labsettings.read_env_file(scenario.app_env))
    undeclared = keys - set(labsettings.SETTINGS)
    assert keys and not undeclared, f"{scenario.name}/app.env sets what labsettings.py lacks: {undeclared}"


@pytest.mark.parametrize("scenario", ALL, ids=lambda s: s.name)
def test_readme_has_every_section(scenario: Scenario) -> None:
    sections = {title: scenario.readme_section(title) for title in catalogue.README_SECTIONS}
    assert all(sections.values()), (
        f"{scenario.name}/README.md lacks a section: {[t for t, s in sections.items() if not s]}"
    )
    assert "https://" in sections["References"], f"{scenario.name}/README.md cites no public reference"
