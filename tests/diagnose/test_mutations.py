"""Mutation testing of `lab check` (labctl.diagnose.mutate): each catalogue scenario's broken edit
and each rule fixture's positive shape, applied automatically to the clean configs (the corpus'
clean reference, the lab's baseline rendered). Every mutant must be found at the mutated line by
the static rules (goal >= 95%: the test holds the measured score as a floor, printed); a bounded
sample also by the full `lab check` (nginx, the app, the probes); the unmutated configs have no
finding at all.
"""

from __future__ import annotations

import functools

import pytest

from labctl.diagnose import mutate

# Measured on 2026-12-06: 35/35 killed by the static rules. Raise, never lower.
FLOOR_STATIC_SCORE = 1.0


@functools.cache
def static() -> mutate.MutationScore:
    return mutate.score()


def mutation_summary() -> list[str]:
    return static().lines() if static.cache_info().currsize else []


def test_the_unmutated_configs_have_no_finding() -> None:
    measured = static()
    assert measured.unmutated, "no clean config to mutate"
    assert all(not found for found in measured.unmutated.values()), measured.unmutated


def test_the_static_rules_kill_the_mutants() -> None:
    measured = static()
    made = {v.mutant.operator for v in measured.verdicts}
    idle = {name for name, _, _ in mutate.OPERATORS} - made
    assert not idle, f"operators that made no mutant of any clean config: {idle}"
    assert measured.killed / len(measured.verdicts) >= FLOOR_STATIC_SCORE, "\n".join(measured.lines())


SAMPLE = mutate.sample([m for clean in mutate.clean_configs() for m in mutate.mutants(clean)])


@pytest.mark.parametrize("mutant", SAMPLE, ids=[f"{m.clean.name}: {m.operator}" for m in SAMPLE])
def test_the_full_check_finds_the_mutant_at_the_mutated_line(mutant: mutate.Mutant) -> None:
    verdict = mutate.judge_full(mutant)
    missed = sorted(verdict.expected - verdict.found)
    assert verdict.killed, f"{mutant.operator} ({mutant.source}): not found {missed}"
