"""The browser suite: Debian's Chromium (headless, under Playwright) through nginx over verified TLS.

It reuses the stack running from this checkout, or starts a native one for the session (and
stops it). Every page a test opens is traced; when the test fails, its screenshot and its
Playwright trace are kept under .lab/browser/.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

import labsettings
from browser.browsing import INSTALL_HINT, VIEWPORT, goto, launch, missing_tools, wait_for
from labctl import native, paths, stack
from labctl.procs import environment
from support.lab import Lab, lab_from_env

SHOTS = paths.LAB / "browser"


def _healthy(lab: Lab) -> Lab:
    try:
        lab.session().get(lab.url + "/healthz", timeout=5).raise_for_status()
    except requests.RequestException as error:
        pytest.fail(f"the lab at {lab.url} is not answering ({error}): start it or set LAB_URL")
    return lab


def _local_stack_is_ours() -> bool:
    return "LAB_URL" not in os.environ


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    started = False
    if stack.running_mode() is None and _local_stack_is_ours():
        native.up()
        started = True
    try:
        yield _healthy(lab_from_env())
    finally:
        if started:
            native.down()


@pytest.fixture
def stack_under(lab: Lab) -> Iterator[Callable[[str], Lab]]:
    """``stack_under(name)`` restarts the local native stack with that scenario ("" = baseline);
    the stack the session started with is restored after the test."""
    wanted_at_start = labsettings.SCENARIO.value()
    switched = []

    def switch(scenario: str) -> Lab:
        if scenario == wanted_at_start:
            return lab
        if not _local_stack_is_ours() or stack.running_mode() != "native":
            pytest.skip("switching scenarios needs the native stack of this checkout (`make native-up`)")
        with environment(LAB_SCENARIO=scenario):
            native.up()
        switched.append(scenario)
        return _healthy(lab_from_env())

    yield switch
    if switched:
        native.up()  # LAB_SCENARIO is back to what the session started with


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    if missing := missing_tools():
        pytest.fail(f"{', '.join(missing)} not found: {INSTALL_HINT}")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def chromium(playwright: Playwright, tmp_path_factory: pytest.TempPathFactory, lab: Lab) -> Iterator[Browser]:
    browser = launch(playwright, tmp_path_factory.mktemp("chromium"), lab.ca)
    yield browser
    browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> object:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.stash[FAILED] = report.failed


FAILED = pytest.StashKey[bool]()


def shot_name(item: pytest.Item) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", item.name)


def keep_evidence(context: BrowserContext, name: str) -> None:
    """The context's trace (``playwright show-trace``) and a screenshot of its page, under .lab/browser/;
    the trace first: it holds the most, and a crashed page cannot be shot."""
    context.tracing.stop(path=SHOTS / f"{name}.zip")
    for page in context.pages:
        page.screenshot(path=SHOTS / f"{name}.png")
    print(f"page at failure: {SHOTS / name}.png and .zip")


@pytest.fixture
def new_page(request: pytest.FixtureRequest, chromium: Browser) -> Iterator[Callable[[], Page]]:
    """A factory of pages, each in its own browser context (own cookies, own sockets: two pages
    are two users), traced; closed after the test, with the evidence kept when it failed."""
    contexts: list[BrowserContext] = []

    def open_page() -> Page:
        context = chromium.new_context(viewport=VIEWPORT)
        contexts.append(context)
        context.tracing.start(screenshots=True, snapshots=True)
        return context.new_page()

    yield open_page
    failed = request.node.stash.get(FAILED, False)
    for index, context in enumerate(contexts):
        try:
            if failed:
                keep_evidence(context, f"FAILED-{shot_name(request.node)}-{index}")
        finally:
            context.close()  # an unsaved trace is discarded with it


@pytest.fixture
def open_lab_page(lab: Lab, new_page: Callable[[], Page]) -> Callable[[], Page]:
    """A fresh page on / once it has shown what the app sees and its chat socket settled."""

    def open_page() -> Page:
        page = new_page()
        goto(page, lab.url + "/")
        wait_for(page, "window.lab && lab.request !== null", what="the page to fetch /debug/request")
        wait_for(
            page,
            "lab.chat.events.some(e => e.state !== 'connecting')",
            what="the chat socket to open or fail",
        )
        return page

    return open_page


@pytest.fixture
def state_shot() -> Callable[[Page, str], Path]:
    """``state_shot(page, name)``: the page in a named state, kept under .lab/browser/ to look at."""

    def shoot(page: Page, name: str) -> Path:
        path = SHOTS / f"{name}.png"
        page.screenshot(path=path)
        return path

    return shoot
