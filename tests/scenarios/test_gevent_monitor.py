"""gevent's monitor (LAB_GEVENT_MONITOR=1, on in event-loop-blocked's app.env) names the function
that held the loop in the app's log: what a user reads to find their own."""

from __future__ import annotations

from labctl import catalogue
from scenarios.conftest import NativeStacks


def test_monitor_names_the_function_that_blocked_the_loop(stacks: NativeStacks) -> None:
    endpoint = stacks.use("event-loop-blocked")
    observation = catalogue.load("event-loop-blocked").observe(endpoint)
    assert observation.present is True, observation.seen
    assert "gevent's monitor: the loop was held in labapp/views/cpu.py:" in observation.seen, (
        f"no report of gevent's monitor naming /cpu's work in the app's log: {observation.seen}; "
        "is gevent.config.monitor_thread set before the worker's hub starts (gunicorn.conf.py post_fork)?"
    )
    assert observation.seen.endswith(" in burn_cpu"), observation.seen
