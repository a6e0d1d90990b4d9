"""Debian's Chromium, headless, driven over the DevTools protocol with websocket-client.

No driver binary, no extra dependency and no browser download: Chromium is started with
``--remote-debugging-port=0`` and announces its port in the profile's ``DevToolsActivePort``.
The lab's CA is trusted for this browser only: on Linux Chromium reads trust anchors from the NSS
database in ``$HOME/.pki/nssdb``, so each browser gets a fresh HOME whose database holds the CA
(``certutil -t C,,``). No certificate error is ever ignored.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from collections import deque
from pathlib import Path
from typing import Any

import websocket

CHROMIUM = os.environ.get("LAB_CHROMIUM", "/usr/bin/chromium")
CERTUTIL = "certutil"
# Root without a sandbox and no GPU; the rest stops Chromium's own traffic to Google's hosts,
# which the machines here refuse (and which would otherwise stall start-up).
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-port=0",
]
VIEWPORT = {"width": 1000, "height": 1500, "deviceScaleFactor": 1, "mobile": False}
# Chromium aborts what is in flight when any interface of the host changes (a container's veth
# coming or going on a shared machine): not the lab's doing, so such an attempt may be repeated.
NETWORK_CHANGED = "net::ERR_NETWORK_CHANGED"
ATTEMPTS_ON_NETWORK_CHANGE = 3
INSTALL_HINT = "apt-get install -y chromium libnss3-tools"


class CDPError(RuntimeError):
    """The browser refused a DevTools command or a page script threw."""


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


class DevTools:
    """One DevTools websocket; commands are answered in order, events seen meanwhile are kept."""

    def __init__(self, url: str) -> None:
        # Chromium refuses DevTools connections that carry an Origin it was not told to allow.
        self._ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self._next_id = 0
        self.events: deque[dict] = deque(maxlen=2000)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") != self._next_id:
                if "method" in reply:
                    self.events.append(reply)
                continue
            if "error" in reply:
                raise CDPError(f"{method}: {reply['error'].get('message')}")
            return reply.get("result", {})

    def close(self) -> None:
        self._ws.close()


class Page:
    """A tab in its own browser context (own cookies, own sockets): two pages are two users."""

    def __init__(self, devtools: DevTools, session: str, context: str) -> None:
        self._devtools = devtools
        self._session = session
        self.context = context

    def call(self, method: str, params: dict | None = None) -> dict:
        return self._devtools.call(method, params, self._session)

    def failed_requests(self) -> list[str]:
        """The network error of each of this page's requests that failed (Network.loadingFailed)."""
        return [
            event["params"]["errorText"]
            for event in self._devtools.events
            if event.get("sessionId") == self._session and event["method"] == "Network.loadingFailed"
        ]

    def goto(self, url: str) -> None:
        for _ in range(ATTEMPTS_ON_NETWORK_CHANGE):
            result = self.call("Page.navigate", {"url": url})
            if result.get("errorText") != NETWORK_CHANGED:
                break
        if result.get("errorText"):
            raise AssertionError(
                f"the browser could not load {url}: {result['errorText']} "
                "(ERR_CERT_*: the server certificate is not from the lab's CA, or its SANs miss the host)"
            )
        self.wait_for("document.readyState === 'complete'", what=f"{url} to finish loading")

    def url(self) -> str:
        """The URL of the current history entry: for a failed load, the URL it tried (not chrome-error://)."""
        history = self.call("Page.getNavigationHistory")
        return history["entries"][history["currentIndex"]]["url"]

    def evaluate(self, expression: str) -> Any:
        result = self.call(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True}
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise CDPError(
                f"{expression!r} threw: {details.get('exception', {}).get('description', details)}"
            )
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 10, what: str = "") -> Any:
        """Poll ``expression`` until it is truthy; page scripts see no difference."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression)
            except CDPError as error:  # the context is replaced while a navigation commits
                last = error
            if last and not isinstance(last, CDPError):
                return last
            time.sleep(0.1)
        raise AssertionError(
            f"timed out after {timeout:.0f}s waiting for {what or expression} (last: {last!r})"
        )

    def set_files(self, selector: str, *files: Path) -> None:
        """What choosing files in the dialog does: the input's files are set, change fires."""
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        if not node:
            raise AssertionError(f"no element {selector!r} on the page")
        self.call("DOM.setFileInputFiles", {"nodeId": node, "files": [str(f) for f in files]})

    def screenshot(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", {"format": "png"})["data"]))
        return path


class Chromium:
    """A headless Chromium with its own profile and its own trust store, both under ``workdir``;
    ``ca=None`` gives a store that trusts no lab CA at all."""

    def __init__(self, workdir: Path, ca: Path | None, start_timeout: float = 30) -> None:
        home, profile = workdir / "home", workdir / "profile"
        trust_ca(home, ca)
        self.log_path = workdir / "chromium.log"
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                env={**os.environ, "HOME": str(home)},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.devtools = DevTools(self._devtools_url(profile / "DevToolsActivePort", start_timeout))
        self.pages: list[Page] = []

    def _devtools_url(self, port_file: Path, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"chromium exited ({self._process.returncode}): see {self.log_path}")
            lines = port_file.read_text().split() if port_file.is_file() else []
            if len(lines) == 2:
                return f"ws://127.0.0.1:{lines[0]}{lines[1]}"
            time.sleep(0.1)
        self.close()
        raise RuntimeError(f"chromium did not open its DevTools port in {timeout:.0f}s: see {self.log_path}")

    def new_page(self) -> Page:
        context = self.devtools.call("Target.createBrowserContext")["browserContextId"]
        target = self.devtools.call(
            "Target.createTarget", {"url": "about:blank", "browserContextId": context}
        )
        session = self.devtools.call(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}
        )
        page = Page(self.devtools, session["sessionId"], context)
        page.call("Emulation.setDeviceMetricsOverride", VIEWPORT)
        page.call("Network.enable")
        self.pages.append(page)
        return page

    def close_pages(self) -> None:
        """Disposing a page's context closes the page and everything it had open (sockets too)."""
        for page in self.pages:
            self.devtools.call("Target.disposeBrowserContext", {"browserContextId": page.context})
        self.pages.clear()

    def close(self) -> None:
        try:
            self.devtools.call("Browser.close")
            self.devtools.close()
        except (AttributeError, OSError, CDPError, websocket.WebSocketException):
            pass  # already gone; the process is stopped below either way
        try:
            self._process.wait(10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
