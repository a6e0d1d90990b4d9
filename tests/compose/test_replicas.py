"""Several app replicas behind the one nginx (LAB_APP_REPLICAS): nginx finds them all by the
service's DNS name (snippets/upstream.conf), spreads requests over them, follows one added or
removed within seconds, and retries a GET on another when one is killed under load (nginx.conf:
proxy_next_upstream, proxy_connect_timeout)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from labctl import compose, traffic
from labctl.stack import access_log_entries as stack_access_log
from support.composectl import Stack
from support.lab import access_log_entry

REPLICAS = 3
SPREAD_GETS = 60
RESOLVER_VALID_S = compose.resolver_valid_s()


@pytest.fixture
def replicas(stack: Stack) -> Iterator[list[str]]:
    """At least REPLICAS app containers for the test; the stack's own count again afterwards."""
    before = len(stack.containers("app"))
    try:
        yield stack.scale_app(max(before, REPLICAS))
    finally:
        stack.scale_app(before)


def replicas_of(stack: Stack, responses: list) -> list[str]:
    """The app container that answered each response: served_by.host of /debug/request (the
    container's hostname, its short id) when the app reports it, else nginx's upstream_addr for
    the request (the access log read once for all of them)."""
    containers = stack.containers("app")
    by_address = {stack.ip_of(c): c for c in containers}
    hosts = [response.json().get("served_by", {}).get("host") for response in responses]
    if all(hosts):
        return [next(c for c in containers if c.startswith(host)) for host in hosts]
    access_log_entry(responses[-1].headers["X-Request-ID"])  # waits until nginx has logged the last
    addresses = {
        entry["request_id"]: entry["upstream_addr"].rsplit(":", 1)[0]
        for entry in (json.loads(line) for line in stack_access_log() if line.startswith("{"))
    }
    return [by_address[addresses[r.headers["X-Request-ID"]]] for r in responses]


def replica_of(stack: Stack, response) -> str:
    return replicas_of(stack, [response])[0]


def test_requests_spread_over_every_replica(stack, lab, http, replicas):
    responses = [http.get(lab.url + "/debug/request", timeout=5) for _ in range(SPREAD_GETS)]
    seen = Counter(replica[:12] for replica in replicas_of(stack, responses))
    print(f"{SPREAD_GETS} GETs over {len(replicas)} replicas: {dict(seen)}")
    assert set(seen) == {c[:12] for c in replicas}, (
        f"nginx sent {SPREAD_GETS} GETs to {dict(seen)} of {len(replicas)} replicas: it should spread "
        "them over every address Docker's DNS gives for the service (snippets/upstream.conf)"
    )


def test_an_added_replica_serves_within_seconds_and_a_removed_one_drops_nothing(stack, lab, http, replicas):
    added = next(c for c in stack.scale_app(len(replicas) + 1) if c not in replicas)
    healthy, first = time.monotonic(), None
    while first is None and time.monotonic() - healthy < RESOLVER_VALID_S + 5:
        if replica_of(stack, http.get(lab.url + "/debug/request", timeout=5)) == added:
            first = time.monotonic() - healthy
    assert first is not None, (
        f"the added replica {added[:12]} served nothing {RESOLVER_VALID_S + 5:.0f} s after"
    )
    print(f"added replica {added[:12]}: served {first:.2f}s after it was healthy")
    with traffic.Load(lab.endpoint, http_threads=4, websockets=0, max_requests=4000, max_seconds=30) as load:
        time.sleep(0.5)
        stack.scale_app(len(replicas))
        time.sleep(RESOLVER_VALID_S + 1)
    print(f"removing a replica under load: {load.recording.summary()}")
    assert added not in stack.containers("app"), "compose did not remove the newest replica"
    assert load.recording.failed == 0, (
        f"GETs failed as a replica was removed: {load.recording.failures()[:10]}"
    )


def test_a_replica_killed_under_load_gets_its_gets_retried_on_another(stack, lab, replicas):
    since = datetime.now(UTC).isoformat()
    victim = replicas[-1]
    with traffic.Load(lab.endpoint, http_threads=8, websockets=0, max_requests=6000, max_seconds=30) as load:
        time.sleep(1)
        compose.docker("kill", victim)
        load.note(f"killed {victim[:12]}")
        time.sleep(RESOLVER_VALID_S + 2)
    entries = [
        json.loads(line)
        for line in compose.docker("logs", "--since", since, stack.container("nginx")).stdout.splitlines()
        if line.startswith("{")
    ]
    retried = Counter(e["upstream_status"] for e in entries if "," in e["upstream_status"])
    print(f"replica killed under load: {load.recording.summary()}; nginx retried: {dict(retried)}")
    recording = load.recording
    # A response whose headers were already on their way when the replica died cannot be sent
    # elsewhere (nginx has answered): at most the GETs in flight at that instant, one per thread.
    assert recording.failed == recording.cut_after_headers <= recording.http_threads, (
        f"GETs failed when a replica was killed: {recording.failures()[:10]}: nginx should send "
        "them to another (proxy_next_upstream error timeout, proxy_connect_timeout in nginx.conf)"
    )
    assert retried, "no GET was retried: the kill hit nothing in flight and no cached address, prove nothing"
