"""Shared pytest wiring: a failed test against a running stack carries nginx -T and the logs."""

from __future__ import annotations

import pytest

from labctl import stack


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
