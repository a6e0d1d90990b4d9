"""`make deploy` as the tests drive it, in either mode: the real command with its own bounded load
(GETs and websockets, recorded in .lab/deploy/timeline.json), plus an upload kept in flight until
the process holding it is told to stop, then finished well inside what a graceful stop promises,
and Socket.IO clients of every transport held across it, each left to reconnect by itself."""

from __future__ import annotations

import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests

import labsettings
from labctl import deploy, paths, sioclient, traffic
from support.lab import Lab

CHUNK = 64 * 1024
SLOW_PAUSE_S = 0.1  # 640 KiB/s while waiting for the stop: the upload stays open, it never ends
FINAL_BYTES = 1024 * 1024  # sent at once after the stop: done far inside LAB_LONGEST_REQUEST_S
MAX_SLOW_S = 120  # the upload ends by itself after this, stop or not (bounded like every load)
DEPLOY_TIMEOUT_S = 240


class PacedUpload(threading.Thread):
    """PUT /upload/<name>, chunked: slow until ``finish()``, then the last MiB at once."""

    def __init__(self, lab: Lab) -> None:
        super().__init__(daemon=True)
        self.lab = lab
        self.name = f"deploy-inflight-{uuid.uuid4().hex[:8]}.bin"
        self.sha256 = hashlib.sha256()
        self.sent = 0
        self.finished_on_signal = False  # finish() came while the body was still being sent
        self.response: requests.Response | None = None
        self.error: Exception | None = None
        self._finish = threading.Event()

    def finish(self) -> None:
        self._finish.set()

    def _body(self):
        block = os.urandom(CHUNK)
        end = time.monotonic() + MAX_SLOW_S
        while not self._finish.is_set() and time.monotonic() < end:
            yield self._count(block)
            self._finish.wait(SLOW_PAUSE_S)
        self.finished_on_signal = self._finish.is_set()
        for _ in range(FINAL_BYTES // CHUNK):
            yield self._count(block)

    def _count(self, block: bytes) -> bytes:
        self.sha256.update(block)
        self.sent += len(block)
        return block

    def run(self) -> None:
        try:
            with self.lab.session() as session:
                self.response = session.put(
                    f"{self.lab.url}/upload/{self.name}", data=self._body(), timeout=MAX_SLOW_S + 60
                )
        except requests.RequestException as error:
            self.error = error


@dataclass
class DeployRun:
    returncode: int
    output: list[str]
    timeline: dict
    upload: PacedUpload
    seconds: float
    holder: str  # the host whose process held the upload when the deploy began
    lines_seen: list[str] = field(default_factory=list)

    @property
    def close_codes(self) -> dict[int, int]:
        return {int(code): n for code, n in self.timeline["websocket_closes"].items()}

    def describe(self) -> str:
        return "\n".join(self.output[-60:])


def run_deploy(
    lab: Lab, upload_holder: Callable[[PacedUpload], str], stops_holder: Callable[[str, str], bool]
) -> DeployRun:
    """Start the upload, find which process holds it (``upload_holder``: its host), run
    `scripts/lab deploy`, and finish the upload once a line of the deploy's says that holder is
    being stopped (``stops_holder(line, host)``)."""
    upload = PacedUpload(lab)
    upload.start()
    host = upload_holder(upload)
    started = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, str(paths.SCRIPTS / "lab"), "deploy"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=paths.ROOT,
    )
    output: list[str] = []
    timer = threading.Timer(DEPLOY_TIMEOUT_S, process.kill)  # bounded: a hung deploy fails the test
    timer.start()
    try:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line.rstrip())
            print(line, end="")
            if stops_holder(line, host):
                upload.finish()
        returncode = process.wait()
    finally:
        timer.cancel()
        upload.finish()
        upload.join(timeout=60)
    timeline = json.loads((deploy.OUT / "timeline.json").read_text())
    return DeployRun(returncode, output, timeline, upload, time.monotonic() - started, host)


def temp_file_holder(list_names: Callable[[], list[str]], timeout: float = 10) -> str:
    """The host part of the upload's temp file name (.partial-<host>-<pid>-...): which
    container (or machine) holds it."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        partial = [n for n in list_names() if n.startswith(".partial-")]
        if partial:
            return partial[0].removeprefix(".partial-").rsplit("-", 2)[0]
        time.sleep(0.1)
    raise AssertionError("the paced upload left no .partial-* temp file: it never reached the app")


def assert_dropped_nothing(run: DeployRun, partial_files: Callable[[], list[str]]) -> None:
    """The contract of `make deploy`, with the counts in every message."""
    timeline, upload = run.timeline, run.upload
    summary = (
        f"{timeline['served']} served, {timeline['failed']} failed, websocket closes "
        f"{run.close_codes}, reconnected {timeline['websockets_reconnected']}"
    )
    print(f"deploy under load ({timeline['mode']}): {timeline['deploy_seconds']}s; {summary}")
    failed = [e for e in timeline["events"] if e["kind"] == traffic.FAILED]
    assert timeline["failed"] == 0, f"requests failed during the deploy: {failed[:10]}; {summary}"
    assert timeline["served"] > 0, f"the deploy's load served nothing: {summary}"
    assert upload.finished_on_signal, (
        f"the upload was not in flight when its holder ({run.holder}) was told to stop: nothing was "
        f"proved about it (upload error: {upload.error}; sent {upload.sent} bytes)"
    )
    assert upload.error is None and upload.response is not None, (
        f"the upload in flight failed: {upload.error}"
    )
    assert upload.response.status_code == 201, (
        f"an upload in flight across the deploy got {upload.response.status_code} "
        f"{upload.response.text[:200]}: it was within LAB_LONGEST_REQUEST_S "
        f"({labsettings.LONGEST_REQUEST_S.value():g} s) of the stop and must finish"
    )
    stored = upload.response.json()
    assert (stored["size"], stored["sha256"]) == (upload.sent, upload.sha256.hexdigest())
    assert partial_files() == [], f"temp files left after the deploy: {partial_files()}"
    assert run.close_codes, (
        f"no websocket was closed by the deploy: the old processes were not stopped? {summary}"
    )
    assert set(run.close_codes) <= traffic.GRACEFUL_CLOSES, (
        f"websockets closed with {run.close_codes}: a deploy closes them with 1001 or 1012 and a "
        "reason, never cuts them (1006)"
    )
    assert timeline["websockets_reconnected"] >= sum(run.close_codes.values()), (
        f"not every closed websocket reconnected: {summary}"
    )
    assert run.returncode == 0, f"`scripts/lab deploy` exited {run.returncode}:\n{run.describe()}"


def delete_upload(lab: Lab, name: str) -> None:
    with lab.session() as session:
        session.delete(f"{lab.url}/files/{name}", timeout=10)


def names_in(directory: Path) -> Callable[[], list[str]]:
    return lambda: sorted(p.name for p in directory.iterdir()) if directory.is_dir() else []


# Socket.IO clients held across a deploy, connected BATCH at a time (sioclient.connect_batch: the
# kernel spreads connections in flight together over the workers): websocket ones first (one
# connection holds the session, no routing needed), which find the processes nginx hands sessions
# to; then polling and default (polling, then the upgrade) ones, SIO_PER_PROCESS per process found
# (6 in compose and on Swarm: 16 + 12 + 12 clients).
SIO_WEBSOCKETS = 16
SIO_PER_PROCESS = 2
# Each client reconnects on its own backoff (python-socketio: 1 s doubling to 5 s, jittered), also
# again when its first try met a process that was stopping too.
SIO_SETTLE_S = 30


@dataclass
class HeldSocketio:
    clients: list[sioclient.SioClient]
    before: set[tuple[str, int]]  # the processes (host, pid) holding their sessions before

    def spread(self) -> str:
        """How many clients of each transport, on how many processes."""
        of = {t: [c for c in self.clients if c.transport == t] for t in sioclient.TRANSPORTS}
        return ", ".join(f"{t} {len(cs)} on {len(sioclient.workers(cs))}" for t, cs in of.items())

    def _back(self, client: sioclient.SioClient) -> bool:
        kinds = [kind for _, kind in client.history]
        return client.connected and "disconnect" in kinds and kinds[-1] == "connect"

    def assert_every_client_came_back(self) -> str:
        """Each client was sent away by the deploy, connected again by itself (a new session, on
        a process the deploy started) and answers an ``echo``: a line saying how long it took."""
        deadline = time.monotonic() + SIO_SETTLE_S
        while not all(self._back(c) for c in self.clients) and time.monotonic() < deadline:
            time.sleep(0.2)
        away = [(c.transport, c.worker, [k for _, k in c.history]) for c in self.clients if not self._back(c)]
        assert not away, (
            f"{len(away)} of {len(self.clients)} Socket.IO clients were not connected again "
            f"{SIO_SETTLE_S} s after the deploy (or the deploy never sent them away): {away[:5]}"
        )
        after: set[tuple[str, int]] = set()
        for client in self.clients:
            served = client.info()["served_by"]
            after.add((served["host"], served["pid"]))
            assert (served["host"], served["pid"]) not in self.before, (
                f"a {client.transport} client is still on a process from before the deploy: {served}"
            )
            text = f"after the deploy {uuid.uuid4().hex[:8]}"
            assert client.call("echo", text) == text, f"{client.transport} client on {served}: echo's ack"
        gaps = [gap for c in self.clients for gap in c.reconnect_seconds()]
        twice = sum(len(c.reconnect_seconds()) > 1 for c in self.clients)
        return (
            f"{len(self.clients)} Socket.IO clients ({self.spread()}) on {len(self.before)} "
            f"processes, each reconnected by itself (now on {len(after)} new process(es)), echo ok; "
            f"reconnect {min(gaps):.2f}-{max(gaps):.2f} s (median {statistics.median(gaps):.2f} s), "
            f"{twice} of them twice or more"
        )


@contextmanager
def socketio_held(lab: Lab) -> Iterator[HeldSocketio]:
    """Socket.IO clients of every transport spread over the app's processes, reconnecting by
    themselves (python-socketio's own reconnection); all closed at the end."""
    clients: list[sioclient.SioClient] = []
    try:
        for _ in range(SIO_WEBSOCKETS // sioclient.BATCH):
            clients.extend(sioclient.connect_batch(lab.endpoint, "websocket", reconnect=True))
        found = sioclient.workers(clients)
        assert len(found) >= 2, f"{len(clients)} Socket.IO websocket clients all sat on {found}"
        for transport in ("polling", "default"):
            for _ in range(math.ceil(SIO_PER_PROCESS * len(found) / sioclient.BATCH)):
                clients.extend(sioclient.connect_batch(lab.endpoint, transport, reconnect=True))
        yield HeldSocketio(clients, sioclient.workers(clients))
    finally:
        sioclient.close_all(clients)
