"""Debian's Chromium under Playwright, trusting the lab's CA for the test browser only.

Playwright drives the system binary (``executable_path``): nothing is downloaded, and
``playwright install`` is never needed. On Linux Chromium reads its trust anchors from the NSS
database in ``$HOME/.pki/nssdb``, so each browser is launched with a fresh HOME whose database
holds the CA (``certutil -t C,,``). No certificate error is ever ignored.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Error, Page, Playwright, Request
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

import labsettings

CHROMIUM = labsettings.CHROMIUM.value()
CERTUTIL = "certutil"
INSTALL_HINT = "`make setup` installs them (Debian: apt-get install -y chromium libnss3-tools)"
# The machines here reach no host but the loopback: these stop Chromium's own traffic to Google's
# hosts (which would stall start-up), whatever Playwright's defaults are.
FLAGS = [
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
VIEWPORT = {"width": 1000, "height": 1500}
# Chromium aborts what is in flight when any interface of the host changes (a container's veth
# coming or going on a shared machine): not the lab's doing, so such an attempt may be repeated.
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"
ATTEMPTS_ON_NETWORK_CHANGE = 3


def missing_tools() -> list[str]:
    return [tool for tool in (CHROMIUM, CERTUTIL) if shutil.which(tool) is None]


def trust_ca(home: Path, ca: Path | None) -> None:
    """An NSS database under ``home`` that trusts ``ca`` to issue server certificates (or nothing)."""
    nssdb = home / ".pki" / "nssdb"
    nssdb.mkdir(parents=True)
    db = f"sql:{nssdb}"
    subprocess.run([CERTUTIL, "-d", db, "-N", "--empty-password"], check=True, capture_output=True)
    if ca is None:
        return
    subprocess.run(
        [CERTUTIL, "-d", db, "-A", "-t", "C,,", "-n", "proxylab test CA", "-i", str(ca)],
        check=True,
        capture_output=True,
    )


def quic_flags(origin: str) -> list[str]:
    """HTTP/3 from the first request to ``origin`` (host:port) on, without waiting for Alt-Svc:
    QUIC enabled, and forced for that one origin (every other stays off QUIC, as in FLAGS).

    Chromium sends QUIC for localhost to [::1] and does not try 127.0.0.1 after a refusal (TCP
    does), while Docker publishes the UDP port on 127.0.0.1 only: localhost is mapped there."""
    flags = [*(flag for flag in FLAGS if flag != "--disable-quic"), "--enable-quic"]
    flags.append(f"--origin-to-force-quic-on={origin}")
    if origin.rpartition(":")[0] == "localhost":
        flags.append("--host-resolver-rules=MAP localhost 127.0.0.1")
    return flags


def launch(playwright: Playwright, workdir: Path, ca: Path | None, args: list[str] | None = None) -> Browser:
    """A headless Chromium whose trust store, under ``workdir``, holds ``ca`` (``None``: no lab CA);
    ``args`` in place of FLAGS (quic_flags)."""
    home = workdir / "home"
    trust_ca(home, ca)
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=args or FLAGS,
        # Chromium's sandbox needs a normal user; as root it refuses to start with one.
        chromium_sandbox=os.geteuid() != 0,
        env={**os.environ, "HOME": str(home)},
    )


def goto(page: Page, url: str) -> None:
    """Load ``url`` and wait for its load event; again only if the host's network changed meanwhile,
    aborting the page itself or one of its resources (a lost lab.js leaves a page that does nothing)."""
    for attempt in range(1, ATTEMPTS_ON_NETWORK_CHANGE + 1):
        aborted: list[str] = []

        def record(request: Request, aborted: list[str] = aborted) -> None:
            if NETWORK_CHANGED in (request.failure or ""):
                aborted.append(request.url)

        page.on("requestfailed", record)
        try:
            page.goto(url)
            failure = f"{NETWORK_CHANGED} for {', '.join(aborted)}" if aborted else ""
        except Error as error:
            failure = error.message.splitlines()[0]
            if NETWORK_CHANGED not in failure:
                raise AssertionError(
                    f"the browser could not load {url}: {failure} (ERR_CERT_*: the server certificate "
                    "is not from the lab's CA, or its SANs miss the host)"
                ) from None
        finally:
            page.remove_listener("requestfailed", record)
        if not failure:
            return
        if attempt == ATTEMPTS_ON_NETWORK_CHANGE:
            raise AssertionError(f"the browser could not load {url}: {failure}, {attempt} times")
        warnings.warn(f"load of {url}, attempt {attempt}, aborted by Chromium: {failure}", stacklevel=2)


def wait_for(page: Page, expression: str, timeout: float = 10, what: str = "") -> Any:
    """Poll the JavaScript ``expression`` until it is truthy and return its value."""
    try:
        return page.wait_for_function(expression, timeout=timeout * 1000, polling=100).json_value()
    except PlaywrightTimeoutError:
        try:
            last = page.evaluate(expression)
        except Error as error:
            last = error.message
        raise AssertionError(
            f"timed out after {timeout:.0f}s waiting for {what or expression} (last: {last!r})"
        ) from None


def say(page: Page, text: str, box: str = "chat") -> None:
    """Type into a chat box (``chat``: /ws/chat's, ``sio``: Socket.IO's) and press send, as a
    person would."""
    page.fill(f"#{box}-input", text)
    page.click(f"#{box}-form button")


def wait_for_chat(page: Page, box: str, text: str, how: str) -> dict:
    """The message ``text`` once it is in ``lab.<box>.received``."""
    return wait_for(
        page,
        f"lab.{box}.received.find(m => m.msg === {json.dumps(text)})",
        what=f"the chat message {text!r} to arrive ({how})",
    )
