"""The lab page shows the running stack's verdict and follows each reload: `make reload` into a
broken scenario turns its behaviour broken on the open page (with the scenario's name and
symptom), the reload back turns it ok again, without the page being reloaded."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from browser.browsing import wait_for
from labctl import paths, runstate, stack
from support.lab import Lab

BROKEN_SCENARIO = "ws-no-upgrade"  # an nginx-only scenario: a reload applies it whole


def reload(scenario: str) -> None:
    env = {**os.environ, "LAB_SCENARIO": scenario}
    done = subprocess.run(
        [sys.executable, str(paths.SCRIPTS / "lab"), "reload"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "lab: verdict for the lab page" in done.stdout, done.stdout


def row_verdict(behaviour: str) -> str:
    """The JavaScript that reads the verdict the page shows for ``behaviour``."""
    return f"document.querySelector('#verdict-table tr[data-behaviour=\\'{behaviour}\\']')?.dataset.verdict"


def test_the_page_shows_the_running_stack_s_verdict_after_each_reload(
    lab: Lab, open_lab_page: Callable[[], Page], state_shot
) -> None:
    if "LAB_URL" in os.environ or stack.running_mode() != "native":
        pytest.skip("reloading into a scenario needs the native stack of this checkout")
    started_with = runstate.read().get("LAB_SCENARIO", "")
    reload(started_with)
    page = open_lab_page()
    wait_for(page, "lab.verdict !== null", what="the page to fetch /lab/verdict")
    assert page.evaluate(row_verdict("ws-upgrade")) == "ok", page.inner_text("#verdict")
    first = page.evaluate("lab.verdict.written")
    try:
        reload(BROKEN_SCENARIO)
        wait_for(
            page,
            row_verdict("ws-upgrade") + " === 'broken'",
            timeout=15,
            what="the open page to show the reload's verdict",
        )
        assert page.evaluate("lab.verdict.written") != first
        assert page.inner_text("#verdict-scenario") == BROKEN_SCENARIO
        assert page.inner_text("#verdict-symptom").startswith("Its symptom: "), (
            "the running scenario's symptom"
        )
        assert "ws-upgrade" in page.inner_text("#verdict-summary")
        assert BROKEN_SCENARIO in page.inner_text("#verdict-matches")
        state_shot(page, "verdict-broken")
    finally:
        reload(started_with)
    wait_for(
        page,
        row_verdict("ws-upgrade") + " === 'ok'",
        timeout=15,
        what="the page to show the baseline's verdict again",
    )
    assert page.inner_text("#verdict-scenario") == (started_with or "baseline")
