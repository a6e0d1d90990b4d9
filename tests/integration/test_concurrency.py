"""Under gevent, concurrent requests are served at once and never see each other's data."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

CLIENTS = 100
SLEEP_S = 1.0


def test_100_concurrent_slow_requests_each_get_their_own_token(lab):
    tokens = [uuid.uuid4().hex for _ in range(CLIENTS)]

    def call(token: str) -> tuple[str, dict, str]:
        with lab.session() as session:
            response = session.get(lab.url + "/slow", params={"seconds": SLEEP_S, "token": token}, timeout=60)
            response.raise_for_status()
            return token, response.json(), response.headers["X-Request-ID"]

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        results = list(pool.map(call, tokens))

    for token, body, request_id in results:
        assert body["token"] == token == body["token_at_start"], "a request saw another request's data"
        assert body["request_id"] == request_id
    assert len({r[2] for r in results}) == CLIENTS, "request ids must be unique"
    # Served concurrently, shown without timing: while one request slept, many others had started
    # in the same process. Each worker process (of every replica) counts its own, so the figure is
    # the sum of each one's peak: a worker that serialised its requests would add 1.
    peaks: dict[tuple[str, int], int] = {}
    for _, body, _ in results:
        process = (body["served_by"]["host"], body["served_by"]["pid"])
        peaks[process] = max(peaks.get(process, 0), body["in_flight_at_start"])
    assert sum(peaks.values()) >= CLIENTS // 4, (
        f"at most {peaks} requests were in flight at once per worker process: the workers serialised them"
    )
