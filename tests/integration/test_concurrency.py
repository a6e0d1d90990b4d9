"""Under gevent, concurrent requests are served at once and never see each other's data."""

from __future__ import annotations

import json
import uuid
from collections import Counter
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
    # in the same process. Each process counts its own (workers and replicas share the load): the
    # busiest one must have had a quarter of its share in flight at once.
    process = [json.dumps(body["served_by"], sort_keys=True) for _, body, _ in results]
    by_process = Counter(process)
    busiest, served = by_process.most_common(1)[0]
    peak = max(
        body["in_flight_at_start"]
        for (_, body, _), who in zip(results, process, strict=True)
        if who == busiest
    )
    assert peak >= served // 4, (
        f"at most {peak} of the {served} requests {busiest} served were in flight at once: the worker "
        f"serialised them (spread: {sorted(by_process.values())})"
    )
