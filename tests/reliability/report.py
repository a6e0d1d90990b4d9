"""Counts the suite prints at its end ("reliability counts"), quoted by docs/RELIABILITY.md."""

from __future__ import annotations

LINES: list[str] = []


def note(case: str, counts: str) -> None:
    LINES.append(f"{case}: {counts}")
