"""An upload of tens of MiB through the page's form: progress to the end, both hashes equal."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request

from browser.browsing import ATTEMPTS_ON_NETWORK_CHANGE, NETWORK_CHANGED, wait_for
from support.lab import MIB, pattern_file


@pytest.fixture(scope="module")
def upload_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A file of LAB_BROWSER_UPLOAD_MB (default 48) MiB on disk, and its sha256."""
    path = tmp_path_factory.mktemp("upload") / "browser-upload.bin"
    size = int(os.environ.get("LAB_BROWSER_UPLOAD_MB", "48")) * MIB
    return path, pattern_file(path, size, seed=b"browser upload")


def upload_through_form(page: Page) -> tuple[dict, list[str]]:
    """Press upload and wait for the page's verdict; again if the host's network changed meanwhile.
    Returns the verdict and the network error of each request that failed in the last attempt."""
    failures: list[str] = []

    def record(request: Request) -> None:
        failures.append(request.failure or "")

    page.on("requestfailed", record)
    try:
        for attempt in range(1, ATTEMPTS_ON_NETWORK_CHANGE + 1):
            seen = len(failures)
            page.click("#upload-form button")
            wait_for(page, "lab.upload && lab.upload.state === 'done'", 90, what="the upload to finish")
            result = page.evaluate("lab.upload")
            if result["status"] != 0 or NETWORK_CHANGED not in failures[seen:]:
                break
            warnings.warn(f"upload attempt {attempt} aborted by Chromium: {NETWORK_CHANGED}", stacklevel=2)
    finally:
        page.remove_listener("requestfailed", record)
    return result, failures[seen:]


# The page hashes with WebCrypto up to lab.webcryptoMaxBytes and with sha256.js in slices above.
@pytest.mark.parametrize("hashing, webcrypto_max", [("webcrypto", None), ("sliced", 0)])
def test_form_upload_arrives_intact(
    open_lab_page: Callable[[], Page],
    state_shot,
    upload_file: tuple[Path, str],
    hashing: str,
    webcrypto_max: int | None,
):
    path, expected_sha256 = upload_file
    page = open_lab_page()
    if webcrypto_max is not None:
        page.evaluate(f"lab.webcryptoMaxBytes = {webcrypto_max}")
    page.set_input_files("#upload-file", path)
    result, failed_requests = upload_through_form(page)
    server = result["server"]
    assert result["status"] == 201, (
        f"POST /upload through the form answered {result['status']}: {server} "
        "(413: client_max_body_size or LAB_MAX_UPLOAD_MB; 502: the app reset the connection, "
        f"see `make logs`; 0: the browser's request failed: {failed_requests})"
    )
    assert server["size"] == path.stat().st_size, f"the server stored {server['size']} bytes: {server}"
    assert server["sha256"] == expected_sha256, (
        f"the server's sha256 differs from the file's: {server} - the body was altered on the way"
    )
    assert result["browser"] == expected_sha256, (
        f"the page's own sha256 ({hashing}) is {result['browser']}, the file's is {expected_sha256}"
    )
    assert result["match"] is True, f"the page shows a mismatch: {result}"
    progress = page.evaluate("document.getElementById('upload-progress').value")
    assert progress == 1, f"the progress bar stopped at {progress:.0%}: XHR upload progress events missing"
    state_shot(page, f"upload-done-{hashing}")
