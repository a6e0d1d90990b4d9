"""The deploy's pieces that need no stack: the load's timeline, its plot, the scenario settings
compose reads, the resolver's cache time the rolling deploy waits out."""

from __future__ import annotations

from collections import Counter

import pytest

import labsettings
from labctl import compose, traffic
from labctl.bench import chart
from labctl.traffic import Event, Recording

pytestmark = pytest.mark.no_stack


def recording() -> Recording:
    events = [
        Event(0.1, traffic.SERVED),
        Event(0.2, traffic.SERVED),
        Event(0.3, traffic.NOTE, "stopping app_1"),
        Event(0.4, traffic.FAILED, "GET /healthz: 502 abc"),
        Event(0.6, traffic.WS_CLOSED, "1001"),
        Event(0.7, traffic.WS_CLOSED, "1006"),
        Event(0.9, traffic.WS_RECONNECTED),
    ]
    return Recording(events=events, seconds=1.0, http_threads=1, websockets=2)


def test_a_recording_counts_per_bin_and_in_all():
    rec = recording()
    bins = rec.bins(0.25)
    assert [b.served for b in bins] == [2, 0, 0, 0, 0]
    assert [b.failed for b in bins] == [0, 1, 0, 0, 0]
    assert bins[2].closed == Counter({1001: 1, 1006: 1}) and bins[3].reconnected == 1
    assert bins[1].notes == ("0.30s stopping app_1",)
    assert (rec.served, rec.failed, rec.reconnected, rec.cut_websockets) == (2, 1, 1, 1)
    assert rec.failures() == ["0.40s GET /healthz: 502 abc"] and rec.cut_after_headers == 0
    timeline = rec.timeline(0.25)
    assert "-- 0.30s stopping app_1" in timeline and "1001 x1, 1006 x1" in timeline


def test_failures_can_leave_out_the_responses_cut_after_their_headers():
    rec = recording()
    rec.events.append(Event(0.8, traffic.FAILED, f"GET /slow: {traffic.CUT_AFTER_HEADERS}: IncompleteRead"))
    assert rec.cut_after_headers == 1 and len(rec.failures()) == 2
    assert rec.failures(cut=False) == ["0.40s GET /healthz: 502 abc"]


def test_the_deploy_plot_has_the_websockets_and_the_steps():
    panel = chart.Timeline.from_recording(recording(), "per 250 ms")
    assert panel.closed == (0, 0, 2, 0, 0) and panel.reconnected == (0, 0, 0, 1, 0)
    assert panel.marks == ((0.3, "stopping app_1"),)
    assert chart.render("deploy", [panel]).startswith(b"\x89PNG")
    with pytest.raises(ValueError, match="websocket bins"):
        chart.Timeline("t", served=(1, 2), failed=(0, 0), closed=(1,))


def test_compose_reads_a_scenarios_settings_from_its_app_env():
    assert compose.scenario_settings({"LAB_SCENARIO": "grace-period-kill"}) == {
        "LAB_APP_STOP_GRACE_PERIOD": "1s"
    }
    assert compose.scenario_settings({"LAB_SCENARIO": ""}) == {}
    settings = compose.scenario_settings({"LAB_SCENARIO": "deploy-drops-requests"})
    assert labsettings.FIX_ROLLING_DEPLOY.value(settings) is False


def test_the_rolling_deploy_waits_out_the_resolver_cache_of_the_baseline():
    assert compose.resolver_valid_s() == 1.0


def test_the_app_service_is_healthy_only_when_every_replica_is():
    assert compose._worst(["healthy", "healthy"]) == "healthy"
    assert compose._worst(["healthy", "starting"]) == "starting"
    assert compose._worst(["starting", "unhealthy"]) == "unhealthy"
    assert compose._worst(["healthy", "exited(137)"]) == "exited(137)"
