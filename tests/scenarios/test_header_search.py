"""The doctor's largest-header search (behaviours/headers.py) on header-size-layers' stack (nginx's
default large_client_header_buffers 4 8k) and on the baseline's (LAB_MAX_HEADER_KIB): the largest
Cookie line that passes is exactly one of nginx's buffers, the next byte is refused and the row
names nginx as the layer; the doctor's row is FAIL only under the scenario."""

from __future__ import annotations

import labsettings
from labctl import behaviours, doctor
from labctl.behaviours.headers import LINE_EXTRA, REQUEST_HEADER, Search, search
from labctl.catalogue import load
from scenarios.conftest import NativeStacks

SCENARIO = load("header-size-layers")
NGINX_DEFAULT_BUFFER = 8 * 1024  # large_client_header_buffers 4 8k: one line fits one buffer


def _searched(stacks: NativeStacks, scenario: str) -> tuple[Search, behaviours.Result, str]:
    endpoint = stacks.use(scenario)
    found = search(behaviours.Probe(endpoint, behaviours.Options()), "/debug/request")
    diagnosis = doctor.run(endpoint)
    (row,) = [r for r in diagnosis.results if r.behaviour is REQUEST_HEADER]
    return found, row, doctor.report(diagnosis)


def test_header_search_under_the_scenario_and_the_baseline(stacks: NativeStacks) -> None:
    narrow, row, report = _searched(stacks, SCENARIO.name)
    assert narrow.passed + LINE_EXTRA == NGINX_DEFAULT_BUFFER and narrow.refused == narrow.passed + 1, narrow
    assert narrow.by.startswith("nginx"), f"the refusal should name nginx: {narrow.by}"
    assert row.verdict == behaviours.BROKEN and "refused by nginx" in row.seen, report
    wide, row, report = _searched(stacks, "")
    declared = labsettings.MAX_HEADER_KIB.value() * 1024
    assert wide.passed + LINE_EXTRA == declared and wide.refused == wide.passed + 1, wide
    assert wide.by.startswith("nginx"), f"past the declared limit nginx refuses first: {wide.by}"
    assert row.verdict == behaviours.OK, report
