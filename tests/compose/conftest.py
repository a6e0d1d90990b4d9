"""Compose-only checks, against the stack `make up` started (tests/compose/; `make compose-test`).

They inspect and restart containers, so they need the Docker engine and a compose stack of this
checkout: run them after the integration suite, not during it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from labctl import compose
from labctl import stack as lab_stack
from support import probeserver
from support.composectl import Stack, side_stack
from support.lab import Lab, lab_from_env


@pytest.fixture(scope="session")
def lab() -> Lab:
    if lab_stack.running_mode() != "compose":
        pytest.fail("no compose stack started from this checkout: `make up` first")
    try:
        compose.require_engine()
    except SystemExit as error:
        pytest.fail(str(error))
    return lab_from_env()


@pytest.fixture(scope="session")
def stack(lab: Lab) -> Stack:
    return Stack(project=compose.project(), url=lab.url, env=compose.started_env())


@pytest.fixture
def http(lab: Lab) -> requests.Session:
    with lab.session() as session:
        yield session


@pytest.fixture
def probe_file() -> Iterator[Path]:
    with probeserver.probe_file() as path:
        yield path


@pytest.fixture(scope="session")
def side(lab: Lab) -> Iterator[Stack]:
    """A second compose project of this checkout, one app replica, for the scenario checks that
    recreate, redeploy or kill the app, so the stack under test is left alone."""
    with side_stack("side", 100, LAB_SCENARIO="", LAB_APP_REPLICAS="1") as stack:
        yield stack
