"""The scenario suite (`scripts/lab scenarios`; part of `make test`): every scenario of
nginx/scenarios/ is found by its folder, each check runs against a native stack under the
scenario (symptom present) and under the baseline (symptom absent). Stacks run one at a time,
switched only when the scenario changes, all brought down at the end (even after a failure);
the matrix is printed after the run."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from labctl import catalogue, endpoints, scenarios
from labctl.catalogue import Scenario
from labctl.checks import Observation
from labctl.endpoints import Endpoint
from labctl.scenarios import Row

MATRIX: dict[str, Row] = {}
_STARTED = time.monotonic()
NATIVE = [s for s in catalogue.scenarios() if not s.compose_only]


class NativeStacks:
    def __init__(self) -> None:
        self._stack: contextlib.ExitStack | None = None
        self.current: str | None = None

    def use(self, scenario: str) -> Endpoint:
        """The stack for ``scenario`` ('' = baseline), starting it in place of the running one."""
        if self.current != scenario:
            self.close()
            self._stack = contextlib.ExitStack()
            try:
                self._stack.enter_context(scenarios.native_stack(scenario, quiet=True))
            except SystemExit as error:  # native.up() reports a failed start this way
                self.close()
                pytest.fail(f"the stack for {scenario or 'the baseline'!r} did not start: {error}")
            self.current = scenario
        return endpoints.from_env()

    def close(self) -> None:
        if self._stack is not None:
            self._stack.close()
        self._stack, self.current = None, None


@pytest.fixture(scope="session")
def stacks() -> Iterator[NativeStacks]:
    native_stacks = NativeStacks()
    try:
        yield native_stacks
    finally:
        native_stacks.close()


@pytest.fixture(scope="module")
def baseline(stacks: NativeStacks) -> Endpoint:
    return stacks.use("")


@pytest.fixture(scope="module")
def scenario_lab(request: pytest.FixtureRequest, stacks: NativeStacks) -> tuple[Scenario, Endpoint]:
    """Parametrized (indirect) by scenario name; module scope makes pytest group tests by scenario."""
    scenario = catalogue.load(request.param)
    started = time.monotonic()
    endpoint = stacks.use(scenario.name)
    MATRIX.setdefault(scenario.name, Row(scenario.name)).seconds += time.monotonic() - started
    return scenario, endpoint


def observe(scenario: Scenario, endpoint: Endpoint, under_baseline: bool) -> Observation:
    """Run the scenario's check and note the result for the matrix printed at the end."""
    started = time.monotonic()
    observation = scenario.observe(endpoint)
    row = MATRIX.setdefault(scenario.name, Row(scenario.name))
    row.seconds += time.monotonic() - started
    if under_baseline:
        row.absent = observation.present is False
    else:
        row.reproduced, row.seen = observation.present is True, observation.seen
    return observation


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MATRIX:
        skipped = [s.name for s in catalogue.scenarios() if s.compose_only]
        terminalreporter.section("scenario matrix")
        terminalreporter.write_line(
            scenarios.format_matrix(list(MATRIX.values()), skipped, time.monotonic() - _STARTED)
        )
