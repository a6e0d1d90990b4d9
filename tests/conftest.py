"""Shared pytest wiring: a failed test against a running stack carries nginx -T and the logs;
the Socket.IO clients the deploy tests hold (every suite's own ``lab``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from labctl import stack

if TYPE_CHECKING:
    from support.deploying import HeldSocketio


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed or stack.running_mode() is None:
        return
    if item.get_closest_marker("no_stack") is not None:
        return
    report.sections.append(("nginx -T (running config)", stack.dump_config()))
    for name, tail in stack.log_tail().items():
        report.sections.append((f"{name} log (tail)", tail))


@pytest.fixture
def held_socketio(lab) -> Iterator[HeldSocketio]:
    """Socket.IO clients of every transport over the app's processes, reconnecting by themselves:
    support.deploying.HeldSocketio (imported here only when asked for: it starts the clients' loop)."""
    from support.deploying import socketio_held

    with socketio_held(lab) as held:
        yield held
