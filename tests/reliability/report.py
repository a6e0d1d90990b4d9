"""Counts the suite prints at its end ("reliability counts"), quoted by docs/RELIABILITY.md."""

from __future__ import annotations

from collections import Counter, defaultdict

LINES: list[str] = []
TALLIES: defaultdict[str, Counter] = defaultdict(Counter)


def note(case: str, counts: str) -> None:
    LINES.append(f"{case}: {counts}")


def tally(group: str, outcome: object) -> None:
    """One case of a table: printed as "group: N cases, outcome x count, ..."."""
    TALLIES[group][str(outcome)] += 1


def lines() -> list[str]:
    tallied = [
        f"{group}: {sum(c.values())} cases, " + ", ".join(f"{k} x{v}" for k, v in sorted(c.items()))
        for group, c in TALLIES.items()
    ]
    return tallied + LINES
