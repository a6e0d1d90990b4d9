"""An upload of tens of MiB through the page's form: progress to the end, both hashes equal."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

from support.chromium import ATTEMPTS_ON_NETWORK_CHANGE, NETWORK_CHANGED, Page
from support.lab import MIB, pattern_file


@pytest.fixture(scope="module")
def upload_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A file of LAB_BROWSER_UPLOAD_MB (default 48) MiB on disk, and its sha256."""
    path = tmp_path_factory.mktemp("upload") / "browser-upload.bin"
    size = int(os.environ.get("LAB_BROWSER_UPLOAD_MB", "48")) * MIB
    return path, pattern_file(path, size, seed=b"browser upload")


def upload_through_form(page: Page) -> dict:
    """Press upload and wait for the page's verdict; again if the host's network changed meanwhile."""
    for attempt in range(1, ATTEMPTS_ON_NETWORK_CHANGE + 1):
        seen_failures = len(page.failed_requests())
        page.evaluate("document.querySelector('#upload-form button').click()")
        page.wait_for("lab.upload && lab.upload.state === 'done'", timeout=90, what="the upload to finish")
        result = page.evaluate("lab.upload")
        if result["status"] != 0 or NETWORK_CHANGED not in page.failed_requests()[seen_failures:]:
            return result
        warnings.warn(f"upload attempt {attempt} aborted by Chromium: {NETWORK_CHANGED}", stacklevel=2)
    return result


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
    page.set_files("#upload-file", path)
    result = upload_through_form(page)
    server = result["server"]
    assert result["status"] == 201, (
        f"POST /upload through the form answered {result['status']}: {server} "
        "(413: client_max_body_size or LAB_MAX_UPLOAD_MB; 502: the app reset the connection, "
        f"see `make logs`; 0: the browser's request failed: {page.failed_requests()})"
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
