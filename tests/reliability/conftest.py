"""The reliability suite kills, signals and restarts processes, so it needs the native stack:
it reuses one already running from this checkout (as `scripts/lab test` leaves it) or starts its
own and stops it at the end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from labctl import native, paths, stack
from support.lab import Lab, lab_from_env

from . import report


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    mode = stack.running_mode()
    if mode not in (None, "native"):
        pytest.fail(f"a {mode} stack is running from this checkout: this suite needs the native one")
    started_here = mode is None
    if started_here:
        native.up()
    try:
        lab = lab_from_env()
        lab.session().get(lab.url + "/healthz", timeout=10).raise_for_status()
        yield lab
    finally:
        if started_here:
            native.down()


@pytest.fixture
def http(lab: Lab) -> Iterator[requests.Session]:
    with lab.session() as session:
        yield session


@pytest.fixture(scope="session")
def upload_dir(lab: Lab) -> Path:
    return paths.UPLOADS


@pytest.fixture(autouse=True)
def stack_healthy_after(lab: Lab) -> Iterator[None]:
    """Every case ends with the stack serving a fresh connection: a case that broke it fails here."""
    yield
    try:
        response = lab.session().get(lab.url + "/healthz", timeout=10)
    except requests.RequestException as error:
        pytest.fail(f"the stack stopped answering after this case: {error}")
    assert response.status_code == 200, f"the stack is unhealthy after this case: {response.status_code}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if lines := report.lines():
        terminalreporter.section("reliability counts")
        for line in lines:
            terminalreporter.write_line(line)
