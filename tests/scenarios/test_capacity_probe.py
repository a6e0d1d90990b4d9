"""The doctor's capacity probe (--hold-websockets N) on connection-capacity's stack (gunicorn's
worker_connections 8, one worker): with the sockets held, a new request hangs, and the probe says
so with the count; under the baseline the same number is held and the request answered."""

from __future__ import annotations

import labsettings
from labctl import behaviours, doctor
from labctl.behaviours.capacity import CAPACITY
from labctl.catalogue import load
from scenarios.conftest import NativeStacks

SCENARIO = load("connection-capacity")
CAP = int(labsettings.read_env_file(SCENARIO.folder / "app.env")["GUNICORN_WORKER_CONNECTIONS"])
HOLD = 12  # past the scenario's cap of 8


def _capacity(stacks: NativeStacks, scenario: str) -> tuple[behaviours.Result, str]:
    endpoint = stacks.use(scenario)
    options = behaviours.Options(hold_websockets=HOLD, lab_contract=True)
    diagnosis = doctor.diagnose(endpoint, options)
    (found,) = [r for r in diagnosis.results if r.behaviour is CAPACITY]
    return found, doctor.report(diagnosis)


def test_capacity_probe_finds_the_cap_and_not_under_the_baseline(stacks: NativeStacks) -> None:
    capped, report = _capacity(stacks, SCENARIO.name)
    assert capped.verdict == behaviours.BROKEN, f"{report}\nlikely cause: {SCENARIO.hint}"
    # At most the worker's 8 slots: fewer where a connection of an earlier probe still holds one.
    held = int(capped.seen.split(" of ", 1)[0])
    assert 0 < held <= CAP < HOLD and "hung" in capped.seen, capped.seen
    baseline, report = _capacity(stacks, "")
    assert baseline.verdict == behaviours.OK, report
    assert baseline.seen.startswith("12 of 12 websockets held open"), baseline.seen
