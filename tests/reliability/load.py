"""A bounded background load through nginx: a few threads of idempotent GETs while a fault
happens, every outcome counted. Stops at max_requests or max_seconds, whichever comes first."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import requests

from support.lab import Lab

# /slow keeps requests in flight inside the worker when the fault hits; /healthz is the quick path.
DEFAULT_PATHS = ("/slow?seconds=0.3", "/healthz")


def closed_before_response(error: requests.RequestException) -> bool:
    """The keep-alive race: the server closed an idle connection just as this request went out
    on it (nginx's old workers do so on reload). RFC 9112 section 9.3.1 lets a client retry an
    idempotent request then; browsers and urllib3's Retry do."""
    return isinstance(error, requests.ConnectionError) and "RemoteDisconnected" in repr(error)


def cut_after_headers(error: requests.RequestException) -> bool:
    """The response had started (status and headers forwarded) when its worker died: nginx can
    no longer retry it, the client sees a short body."""
    return isinstance(error, requests.exceptions.ChunkedEncodingError)


@dataclass
class LoadResult:
    ok: int = 0
    statuses: Counter = field(default_factory=Counter)
    # Retries of closed_before_response(); each is one request the client sent twice.
    client_retries: int = 0
    cut_responses: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # anything else: never expected

    @property
    def total(self) -> int:
        return self.ok + len(self.cut_responses) + len(self.failures)

    def summary(self) -> str:
        return (
            f"{self.total} requests, {self.ok} ok, {self.client_retries} client retries after a "
            f"keep-alive close, {len(self.cut_responses)} cut after their headers, "
            f"{len(self.failures)} other failures: {self.failures[:5]}"
        )


class BackgroundLoad:
    def __init__(
        self,
        lab: Lab,
        paths: tuple[str, ...] = DEFAULT_PATHS,
        threads: int = 4,
        max_requests: int = 5000,
        max_seconds: float = 60,
        pause: float = 0.01,
    ) -> None:
        self.lab = lab
        self.paths = paths
        self.result = LoadResult()
        self.threads = threads
        self._pause = pause
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._budget = max_requests
        self._deadline = time.monotonic() + max_seconds

    def __enter__(self) -> BackgroundLoad:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _take(self) -> bool:
        with self._lock:
            if self._budget <= 0 or time.monotonic() > self._deadline:
                return False
            self._budget -= 1
            return True

    def _run(self, index: int) -> None:
        path = self.paths[index % len(self.paths)]
        with self.lab.session() as session:
            while not self._stop.is_set() and self._take():
                self._get(session, path)
                # Bounded rate as well as count: the box is shared, and a fault window of ~12 s
                # must stay covered by the budget.
                self._stop.wait(self._pause)

    def _get(self, session: requests.Session, path: str) -> None:
        for attempt in (1, 2):
            try:
                response = session.get(self.lab.url + path, timeout=30)
            except requests.RequestException as error:
                if attempt == 1 and closed_before_response(error):
                    with self._lock:
                        self.result.client_retries += 1
                    continue
                self._record(type(error).__name__, f"GET {path} -> {error!r}"[:300], cut_after_headers(error))
                return
            # The request id names the failure in nginx's access log (which upstream tries failed).
            request_id = response.headers.get("X-Request-ID", "")
            failure = (
                None if response.status_code == 200 else f"GET {path} -> {response.status_code} {request_id}"
            )
            self._record(response.status_code, failure, False)
            return

    def _record(self, outcome: int | str, failure: str | None, cut: bool) -> None:
        with self._lock:
            self.result.statuses[outcome] += 1
            if failure is None:
                self.result.ok += 1
            elif cut:
                self.result.cut_responses.append(failure)
            else:
                self.result.failures.append(failure)
