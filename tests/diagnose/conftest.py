"""The diagnosis suite: `lab check` on the corpus (and its bad-input cases); precision and recall
printed at the end."""

from __future__ import annotations

import pytest

from diagnose.test_corpus import corpus_summary


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if lines := corpus_summary():
        terminalreporter.section("lab check on the corpus")
        for line in lines:
            terminalreporter.write_line(line)
