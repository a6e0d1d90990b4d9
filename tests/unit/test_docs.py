"""The derived parts of the docs (scripts/lab docs) match their sources: a scenario.toml or a
setting edited without `scripts/lab docs` fails here, naming the stale part."""

from __future__ import annotations

import pytest

from labctl import docs

pytestmark = pytest.mark.no_stack


def test_generated_docs_are_current():
    stale = docs.stale_parts(write=False)
    assert stale == [], f"run `scripts/lab docs`: stale parts {stale}"


def test_a_stale_part_is_found(tmp_path):
    text = f"intro\n{docs.begin('demo')}\nold\n{docs.end('demo')}\noutro\n"
    assert (
        docs.rewrite(text, "demo", "new", tmp_path)
        == f"intro\n{docs.begin('demo')}\nnew\n{docs.end('demo')}\noutro\n"
    )
    with pytest.raises(SystemExit, match="no '<!-- generated: other"):
        docs.rewrite(text, "other", "new", tmp_path)
