"""Native stacks for the scenario suite: one at a time, switched only when the scenario changes,
all brought down at the end (even after a failure). The matrix is printed after the run."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import pytest

from labctl import scenarios
from labctl.scenarios import Row
from scenarios.catalogue import BY_NAME, Case, Observation
from support.lab import Lab, lab_from_env

MATRIX: dict[str, Row] = {}
_STARTED = time.monotonic()


class NativeStacks:
    def __init__(self) -> None:
        self._stack: contextlib.ExitStack | None = None
        self.current: str | None = None

    def use(self, scenario: str) -> Lab:
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
        return lab_from_env()

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
def baseline(stacks: NativeStacks) -> Lab:
    return stacks.use("")


@pytest.fixture(scope="module")
def scenario_lab(request: pytest.FixtureRequest, stacks: NativeStacks) -> tuple[Case, Lab]:
    """Parametrized (indirect) by scenario name; module scope makes pytest group tests by scenario."""
    case = BY_NAME[request.param]
    started = time.monotonic()
    lab = stacks.use(case.name)
    MATRIX.setdefault(case.name, Row(case.name)).seconds += time.monotonic() - started
    return case, lab


def observe(case: Case, lab: Lab, under_baseline: bool) -> Observation:
    """Run the case's check and note the result for the matrix printed at the end."""
    started = time.monotonic()
    observation = case.check(lab)
    row = MATRIX.setdefault(case.name, Row(case.name))
    row.seconds += time.monotonic() - started
    if under_baseline:
        row.absent = observation.present is False
    else:
        row.reproduced, row.seen = observation.present is True, observation.seen
    return observation


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if MATRIX:
        skipped = [name for name in scenarios.all_names() if scenarios.compose_only(name)]
        terminalreporter.section("scenario matrix")
        terminalreporter.write_line(
            scenarios.format_matrix(list(MATRIX.values()), skipped, time.monotonic() - _STARTED)
        )
