"""The compose-only deploy scenarios, each under itself (symptom) and under the baseline (none), on
the side stack (one app replica, its own ports): deploy-drops-requests (the app recreated in
place under load: 502s while the new container starts) and grace-period-kill (stop_grace_period
below gunicorn's graceful_timeout: Docker SIGKILLs a request gunicorn was still finishing)."""

from __future__ import annotations

import threading
import time
from collections import Counter

import requests

import labsettings
from labctl import catalogue, compose, traffic
from labctl.endpoints import Endpoint
from support.composectl import Stack
from support.lab import Lab

# A request the baseline's graceful stop promises to finish (LAB_LONGEST_REQUEST_S), in the app
# when the stop begins: under the scenario it is still running when the 1 s grace runs out.
SLOW_S = labsettings.LONGEST_REQUEST_S.value()
IN_FLIGHT_AFTER_S = 0.3


def failed_by_outcome(recording: traffic.Recording) -> Counter:
    """ "502", "RemoteDisconnected", ...: what the failed GETs got."""
    return Counter(failure.split(": ", 1)[-1].split(" ")[0] for failure in recording.failures())


def deploy_under_load(side: Stack, lab: Lab) -> traffic.Recording:
    load = traffic.Load(
        Endpoint(side.url, lab.ca, None), http_threads=4, websockets=2, max_requests=8000, max_seconds=120
    )
    recording, seconds = traffic.under_load(
        lambda note: compose.deploy(note, side.project, dict(side.env)), load
    )
    print(
        f"deploy under {side.env['LAB_SCENARIO'] or 'the baseline'}: {seconds:.1f}s; {recording.summary()}; "
        f"failed: {dict(failed_by_outcome(recording))}"
    )
    return recording


def test_deploy_drops_requests_when_the_app_is_recreated_in_place(side, lab):
    scenario = catalogue.load("deploy-drops-requests")
    side.up(scenario.name)
    recording = deploy_under_load(side, lab)
    statuses = failed_by_outcome(recording)
    assert recording.failed > 0 and statuses.get("502", 0) > 0, (
        f"under {scenario.name}, recreating the app in place under load should give 502s while the new "
        f"container starts; saw {recording.summary()}, failures {dict(statuses)}. {scenario.hint}"
    )


def test_a_rolling_deploy_drops_nothing_under_the_baseline(side, lab):
    side.up("")
    recording = deploy_under_load(side, lab)
    assert recording.failed == 0, (
        f"the baseline's rolling deploy dropped requests: {recording.failures()[:10]}"
    )


def stop_with_a_request_in_flight(side: Stack, lab: Lab) -> tuple[int | str, int, float]:
    """GET /slow (SLOW_S), then stop the app container while it is inside the app: the GET's
    status, the container's exit code and how long the stop took. The app is started again after.
    `docker stop` is what `docker compose stop` runs, without Compose's own start-up time (v1
    takes most of a second), which would let the request finish before the grace period ends."""
    outcome: dict[str, int | str] = {}

    def slow_get() -> None:
        with lab.session() as session:
            try:
                response = session.get(side.url + "/slow", params={"seconds": SLOW_S}, timeout=30)
                outcome["status"] = response.status_code
            except requests.RequestException as error:
                outcome["status"] = type(error).__name__

    getter = threading.Thread(target=slow_get)
    getter.start()
    app = side.container("app")
    time.sleep(IN_FLIGHT_AFTER_S)
    started = time.monotonic()
    compose.docker("stop", app)  # the container's own stop_grace_period, then SIGKILL
    took = time.monotonic() - started
    code = compose.inspect(app)["State"]["ExitCode"]
    getter.join(timeout=40)
    side.compose("start", "app")
    side.wait_healthy("app")
    return outcome.get("status", "no answer"), code, took


def test_grace_period_kill_cuts_a_request_in_flight(side, lab):
    scenario = catalogue.load("grace-period-kill")
    side.up(scenario.name)
    grace = labsettings.APP_STOP_GRACE_PERIOD.value(compose.compose_env(side.env))
    status, code, took = stop_with_a_request_in_flight(side, lab)
    print(f"{scenario.name}: stop_grace_period {grace:g}s; GET /slow {status}, exit {code}, stop {took:.1f}s")
    assert (status, code) == (502, 137), (
        f"under {scenario.name} (stop_grace_period {grace:g}s < graceful_timeout) a {SLOW_S:g} s request "
        f"in flight should get 502 and the app exit 137 (SIGKILL); got {status}, exit {code}. {scenario.hint}"
    )


def test_a_graceful_stop_lets_the_request_finish_under_the_baseline(side, lab):
    side.up("")
    status, code, took = stop_with_a_request_in_flight(side, lab)
    print(f"baseline: GET /slow {status}, exit code {code}, stop {took:.1f}s")
    assert (status, code) == (200, 0), (
        f"a {SLOW_S:g} s request in flight when the app is stopped should finish (200) and gunicorn "
        f"exit by itself (0); got {status}, exit {code}"
    )
