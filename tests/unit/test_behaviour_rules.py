"""Each behaviour's static rule against small nginx configs, gixy style, read and never run:
``tests/unit/behaviours/<behaviour id>/*.conf`` must trigger the rule at the lines marked
``# expect``, ``*_fp.conf`` (false positives) must not trigger it at all.

A fixture's leading comments may set how it is judged: ``# public-https-port: 8443`` (the site
behind a port mapping), ``# answered: 404`` (the status the error-format probe saw). The
completeness test prints the behaviours x (probe, rule, fixtures, scenarios) table and fails
on a behaviour with neither probe nor rule, or with a rule but no positive or no negative fixture.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from labctl import behaviours, catalogue
from labctl.behaviours import Behaviour
from labctl.diagnose import check, config

FIXTURES = Path(__file__).parent / "behaviours"
EXPECT = "# expect"
NGINX_VERSION = (1, 22, 1)  # Debian 12's: proxies over HTTP/1.0 unless told (the ws-upgrade rule)


def fixtures(behaviour: Behaviour, negative: bool) -> list[Path]:
    found = sorted((FIXTURES / behaviour.id).glob("*.conf"))
    return [p for p in found if p.stem.endswith("_fp") == negative]


def _setting(text: str, name: str) -> int | None:
    found = re.search(rf"^# {name}: (\d+)$", text, re.MULTILINE)
    return int(found.group(1)) if found else None


def judged(path: Path, behaviour: Behaviour) -> list[behaviours.Finding]:
    """The rule of ``behaviour`` on the config at ``path``: its findings for that behaviour."""
    assert behaviour.rule is not None
    text = path.read_text()
    site = check.site_for(config.load(path), _setting(text, "public-https-port"), None, NGINX_VERSION)
    # The routes `lab check` probes: the config's own websocket location where the lab's /ws/* miss it.
    site = replace(site, routes=check.routes_for(site), bad_gateway_answered=_setting(text, "answered"))
    return [f for f in behaviour.rule(site) if f.behaviour is behaviour]


RULED = [b for b in behaviours.registry() if b.rule is not None]
CASES = [
    pytest.param(b, path, negative, id=f"{b.id}/{path.name}")
    for b in RULED
    for negative in (False, True)
    for path in fixtures(b, negative)
]


@pytest.mark.parametrize(("behaviour", "path", "negative"), CASES)
def test_the_rule_triggers_where_marked_and_nowhere_else(
    behaviour: Behaviour, path: Path, negative: bool
) -> None:
    found = judged(path, behaviour)
    lines = path.read_text().splitlines()
    expected = {number for number, line in enumerate(lines, 1) if line.rstrip().endswith(EXPECT)}
    if negative:
        assert found == [], f"{path.name} must not trigger {behaviour.id}: {found}"
        return
    assert expected, f"{path}: mark the line the finding belongs at with '{EXPECT}'"
    assert {f.where for f in found} == {(str(path), n) for n in expected}, (
        f"{behaviour.id} on {path.name}: findings at {sorted(f.where[1] for f in found)}, "
        f"marked {sorted(expected)}: {found}"
    )


def table() -> str:
    """behaviours x (probe, rule, fixtures, scenarios), the registry's order."""
    rows = [("behaviour", "severity", "probe", "rule", "fixtures +/-", "scenarios")]
    for b in behaviours.registry():
        rows.append(
            (
                b.id,
                b.severity,
                b.probe.__name__ if b.probe else "-",
                b.rule.__name__ if b.rule else "-",
                f"{len(fixtures(b, False))}/{len(fixtures(b, True))}" if b.rule else "-",
                ", ".join(b.scenarios) or "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def test_every_behaviour_is_probed_or_ruled_and_every_rule_has_fixtures() -> None:
    shown = table()
    print("\n" + shown)
    lacking = [b.id for b in behaviours.registry() if b.probe is None and b.rule is None]
    assert lacking == [], f"behaviours with neither probe nor rule: {lacking}\n{shown}"
    unfixtured = [b.id for b in RULED if not fixtures(b, False) or not fixtures(b, True)]
    assert unfixtured == [], (
        f"rules without a positive and a negative (*_fp.conf) fixture in {FIXTURES}: {unfixtured}\n{shown}"
    )
    known = {b.id for b in behaviours.registry()}
    strays = sorted(p.name for p in FIXTURES.iterdir() if p.name not in known)
    assert strays == [], f"fixture folders naming no behaviour: {strays}"


def test_behaviours_and_scenarios_name_each_other() -> None:
    """A behaviour's scenarios exist and name it back (scenario.toml's behaviour = ...)."""
    named = {s.name: s.behaviour for s in catalogue.scenarios()}
    for b in behaviours.registry():
        for scenario in b.scenarios:
            assert scenario in named, f"{b.id} lists {scenario}: no nginx/scenarios/{scenario}/"
            assert named[scenario] is b, f'nginx/scenarios/{scenario}/scenario.toml: behaviour = "{b.id}"'
    doctor_scenarios = [s.name for s in catalogue.scenarios() if s.doctor and s.behaviour is None]
    assert doctor_scenarios == [], f"doctor = true without behaviour = ...: {doctor_scenarios}"
