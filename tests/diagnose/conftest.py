"""The diagnosis suite: `lab check` on the corpus, the held-out corpus, mutants of the clean
configs (and its bad-input cases); precision, recall and the mutation score printed at the end."""

from __future__ import annotations

import pytest

from diagnose.test_corpus import corpus_summary
from diagnose.test_holdout import holdout_summary
from diagnose.test_mutations import mutation_summary


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for title, lines in (
        ("lab check on the corpus", corpus_summary()),
        ("lab check on the held-out corpus", holdout_summary()),
        ("lab check on mutants of the clean configs", mutation_summary()),
    ):
        if lines:
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.write_line(line)
