"""The bench's own parsing, framing and recording (scripts/labctl/bench): no stack, no network."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import struct
import threading

import pytest

from labctl import endpoints, nginx, paths, venv
from labctl.bench import (
    bench_stack,
    chart,
    ideal_receiver,
    loop,
    record,
    runner,
    sioload,
    upload_rate,
    wrk,
    wsload,
)
from labctl.bench.settings import QUICK, BenchSettings

WRK_STDOUT = """Running 5s test @ https://localhost:8443/healthz
  1 threads and 50 connections
Requests/sec:   1537.09
{"wrk":1,"requests":7811,"duration_us":5081000,"p50_us":32660,"p99_us":173440,"errors":{"connect":0,"read":0,"write":0,"status":2,"timeout":1}}
"""


def test_wrk_report_line_becomes_rates_and_milliseconds():
    result = wrk.parse_report(WRK_STDOUT)
    assert (result.requests, result.seconds, result.rps) == (7811, 5.081, 1537.3)
    assert (result.p50_ms, result.p99_ms) == (32.66, 173.44)
    assert result.errors == {"connect": 0, "read": 0, "write": 0, "status": 2, "timeout": 1}


def test_wrk_output_without_report_line_is_an_error_naming_the_script():
    with pytest.raises(RuntimeError, match=r"report\.lua"):
        wrk.parse_report("Running 5s test @ http://127.0.0.1:8000/\n")


def test_results_hold_exactly_the_issue_keys_and_none_until_measured():
    results = record.empty_results()
    assert {f"{section}.{name}" for section, names in results.items() for name in names} == {
        "proxy.tls_vs_direct_rps_ratio",
        "upload.app_vs_ideal_ratio",
        "upload.unbuffered_vs_discard_ratio",
        "upload.app_rss_growth_mib",
        "ws.connections_held",
        "ws.kib_per_connection",
        "ws.broadcast_ms",
        "ws.large_echo_vs_reference_ratio",
        "ws.large_message_stall_ms",
        "ws.deflate_off_kib_per_connection",
        "ws.deflate_on_kib_per_connection",
        "socketio.connections_held",
        "socketio.kib_per_connection",
        "socketio.broadcast_vs_ws_ratio",
        "hostile.kib_per_slow_upload",
        "hostile.mib_per_unread_websocket",
        "workers.gevent_vs_sync_ratio",
        "loop.native_up_s",
        "loop.integration_s",
        "deploy.failed_requests",
        "deploy.seconds",
        "protocols.h2_vs_h11_rps_ratio",
        "protocols.h3_vs_h2_rps_ratio",
        "protocols.h3_vs_h2_nginx_cpu_ratio",
    }
    assert all(value is None for section in results.values() for value in section.values())
    assert set(record.GOALS) <= {f"{s}.{n}" for s, names in results.items() for n in names}


@pytest.mark.parametrize(
    ("key", "value", "verdict"),
    [
        ("proxy.tls_vs_direct_rps_ratio", 0.85, "met"),
        ("proxy.tls_vs_direct_rps_ratio", 0.84, "MISSED"),
        ("upload.app_rss_growth_mib", 31.9, "met"),
        ("upload.app_rss_growth_mib", 32, "MISSED"),
        ("ws.connections_held", 10_000, "met"),
        ("ws.connections_held", 9999, "MISSED"),
        ("ws.broadcast_ms", 299.9, "met"),
        ("ws.broadcast_ms", 300, "MISSED"),
        ("ws.large_echo_vs_reference_ratio", 1.5, "met"),
        ("ws.large_echo_vs_reference_ratio", 1.51, "MISSED"),
        ("ws.large_message_stall_ms", 49.9, "met"),
        ("ws.large_message_stall_ms", 50, "MISSED"),
        ("upload.app_vs_ideal_ratio", 0.85, "met"),
        ("loop.native_up_s", 1.49, "met"),
        ("loop.native_up_s", 1.5, "MISSED"),
        ("loop.native_up_s", None, "not measured"),
        ("deploy.failed_requests", 0, "met"),
        ("deploy.failed_requests", 1, "MISSED"),
        ("socketio.connections_held", 5_000, "met"),
        ("socketio.kib_per_connection", 48, "MISSED"),
        ("socketio.broadcast_vs_ws_ratio", 1.5, "met"),
        ("socketio.broadcast_vs_ws_ratio", 1.51, "MISSED"),
    ],
)
def test_goal_verdicts_at_the_thresholds(key, value, verdict):
    assert record.GOALS[key].verdict(value) == verdict


def test_table_has_a_row_per_result_with_its_verdict(tmp_path):
    results = record.empty_results()
    results["proxy"]["tls_vs_direct_rps_ratio"] = 0.5
    lines = record.table(results, {"proxy.tls_vs_direct_rps_ratio": "wrk"}).splitlines()
    assert len(lines) == 1 + 24
    assert next(line for line in lines if line.startswith("proxy.")).split()[1:4] == ["0.5", ">=", "0.85"]
    record.write(tmp_path, results, {"machine": {}})
    assert json.loads((tmp_path / "results.json").read_text()) == results


WIDTH_PX = round(chart.WIDTH_IN * chart.DPI)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from a PNG's header, after checking that it is one."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and png[12:16] == b"IHDR", png[:16]
    return struct.unpack_from("!II", png, 16)


def test_bar_groups_render_as_a_png_one_panel_each():
    bars = (chart.Bar("a", 2, "2", reference=True), chart.Bar("b", 1, "1", goal=1.5))
    one = chart.render("t", [chart.Group("g", bars)])
    two = chart.render("t", [chart.Group("g", bars), chart.Group("h", bars)])
    assert png_size(one)[0] == png_size(two)[0] == WIDTH_PX
    assert 100 < png_size(one)[1] < png_size(two)[1] < 2000
    assert len(one) > 5000, "too small for labelled bars"


def test_bench_details_chart_with_every_section():
    details = {
        "proxy": {"direct": {"rps": 6000.0}, "tls": {"rps": 5500.0}},
        "upload": {
            "rounds": [{"ideal": {"mib_per_s": 600.0}, "unbuffered": {"mib_per_s": 550.0}}],
            "references": {"discard": {"mib_per_s": 900.0}},
        },
        "workers": {"classes": {"sync": {"rps": 20.0}, "gevent-websocket": {"rps": 470.0}}},
        "ws": {"held": 4000, "kib_per_connection": 22.1, "clients_per_worker": {"h/1": 2000, "h/2": 2000}},
    }
    results = record.empty_results()
    results["proxy"]["tls_vs_direct_rps_ratio"] = 0.917
    groups = runner.chart_groups(details, results)
    assert [len(group.bars) for group in groups] == [2, 3, 2, 1, 1]
    assert png_size(chart.render("bench", groups))[1] > png_size(chart.render("bench", groups[:1]))[1]
    assert png_size(chart.render("no figures", []))[0] == WIDTH_PX


def test_a_deploy_timeline_renders_as_a_panel():
    served = tuple([50] * 20 + [30, 10, 40] + [50] * 17)
    failed = tuple([0] * 20 + [20, 40, 10] + [0] * 17)
    png = chart.render("deploy", [chart.Timeline("requests per 250 ms", served, failed)])
    width, height = png_size(png)
    assert (width, height) == (WIDTH_PX, round((chart.TITLE_IN + 3.0) * chart.DPI))
    with pytest.raises(ValueError, match="as many failed as served"):
        chart.Timeline("t", served=(1, 2), failed=(0,))


def test_bench_reexecutes_itself_with_the_venv_python(monkeypatch):
    executed = []
    monkeypatch.setattr(venv.sys, "prefix", "/usr")
    monkeypatch.setattr(venv, "ensure_venv", lambda: None)
    monkeypatch.setattr(venv.os, "execv", lambda path, argv: executed.append((path, argv)))
    venv.reexec_in_venv(runner.venv_command(argparse.Namespace(only="proxy,ws", quick=True)))
    lab = str(paths.SCRIPTS / "lab")
    assert executed == [
        (str(paths.VENV_PYTHON), [str(paths.VENV_PYTHON), lab, "bench", "--only", "proxy,ws", "--quick"])
    ]
    executed.clear()
    monkeypatch.setattr(venv.sys, "prefix", str(paths.VENV))
    venv.reexec_in_venv(runner.venv_command(argparse.Namespace(only="proxy", quick=False)))
    assert executed == []


def test_settings_from_env_override_the_quick_preset(monkeypatch):
    monkeypatch.setenv("LAB_BENCH_UPLOAD_MIB", "8")
    monkeypatch.setenv("LAB_BENCH_INTEGRATION", "yes")
    settings = BenchSettings.from_env(quick=True)
    assert (settings.upload_mib, settings.integration) == (8, True)
    assert settings.ws_max_connections == QUICK.ws_max_connections


def test_pytest_summary_is_the_last_line_without_padding():
    assert (
        loop.pytest_summary("..\n===== 12 passed, 1 skipped in 3.10s =====\n")
        == "12 passed, 1 skipped in 3.10s"
    )
    assert loop.pytest_summary("") == ""


def test_percentile_is_nearest_rank():
    samples = [float(n) for n in range(1, 101)]
    assert (wsload.percentile(samples, 0.5), wsload.percentile(samples, 0.99)) == (50.0, 99.0)
    assert wsload.percentile([3.0], 0.99) == 3.0


def test_h2load_summary_is_its_rate_over_the_measured_time():
    from labctl.bench.protocols import parse_h2load

    stdout = (
        "finished in 4.00s, 2046.67 req/s, 485.68KB/s\n"
        "requests: 6140 total, 6140 started, 6140 done, 6140 succeeded, 0 failed, 0 errored, 0 timeout\n"
    )
    load = parse_h2load(stdout, client_cpu_s=0.5)
    assert (load.requests, load.failed, load.client_cpu_s) == (6140, 0, 0.5)
    assert load.rps == pytest.approx(2046.7, abs=0.1)


@pytest.mark.parametrize("protocol", ["h1.1", "h2"])
def test_h2load_rounds_are_counts_no_connection_outlives_keepalive_requests(protocol):
    from labctl.bench.protocols import h2load_shape
    from labctl.bench.settings import BenchSettings

    settings = BenchSettings(protocol_requests=6000, protocol_in_flight=20, protocol_connections=2)
    shape = dict(arg.lstrip("-").split("=") for arg in h2load_shape(protocol, settings, 1000) if "=" in arg)
    assert "duration" not in shape, "h2load by duration did not end (h1) or started nothing (h2)"
    assert int(shape["requests"]) == 6000
    assert int(shape["requests"]) / int(shape["clients"]) <= 1000, shape


def upload(mib_per_s: float, rss: float = 1.0) -> upload_rate.UploadResult:
    return upload_rate.UploadResult(1.0, mib_per_s, rss, 0.1, 0.5, 0.5, 0.3, 0.2, 0.3)


def test_app_vs_ideal_is_the_median_of_the_rounds_ratios():
    outcome = upload_rate.UploadRun(
        rounds=[
            {"unbuffered": upload(300.0, rss=2.0), "ideal": upload(400.0)},
            {"ideal": upload(500.0), "unbuffered": upload(450.0, rss=5.0)},
            {"unbuffered": upload(100.0), "ideal": upload(400.0)},
        ],
        references={"discard": upload(1000.0)},
    )
    assert outcome.round_ratios() == [0.75, 0.9, 0.25]
    assert outcome.app_vs_ideal_ratio == 0.75
    assert (outcome.median_rate("unbuffered"), outcome.median_rate("discard")) == (300.0, 1000.0)
    assert outcome.app_rss_growth_mib == 5.0
    assert upload_rate.UploadRun().app_vs_ideal_ratio is None


def test_ideal_receiver_stores_like_the_app_and_leaves_nothing_partial(tmp_path):
    body = os.urandom(3 * ideal_receiver.CHUNK + 123)
    buffer = memoryview(bytearray(ideal_receiver.CHUNK))
    head = f"PUT /ideal/x.bin HTTP/1.1\r\nHost: a\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    client, server = socket.socketpair()
    with client, server:
        sender = threading.Thread(target=client.sendall, args=(head + body,))
        sender.start()
        ideal_receiver.handle(server, buffer, tmp_path)
        sender.join()
        server.shutdown(socket.SHUT_WR)
        answer = client.makefile("rb").read()
    assert answer.startswith(b"HTTP/1.1 201 ")
    assert json.loads(answer.partition(b"\r\n\r\n")[2]) == {
        "name": "x.bin",
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]
    assert (tmp_path / "x.bin").read_bytes() == body

    client, server = socket.socketpair()
    with client, server:
        client.sendall(head.replace(b"x.bin", b"cut.bin") + body[:1000])
        client.shutdown(socket.SHUT_WR)  # the client went away mid-body
        with pytest.raises(ConnectionError, match="body ended after 1000 of"):
            ideal_receiver.handle(server, buffer, tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["x.bin"]


def test_socketio_memory_is_counted_whole_and_by_side():
    # Two app workers and two nginx workers, 1,000 clients: each side's growth alone, and both.
    result = sioload.SioResult(
        app_pids=["11", "12"],
        rss_before_kib={"11": 60_000, "12": 60_000, "21": 15_000, "22": 15_000},
        rss_after_kib={"11": 76_000, "12": 76_000, "21": 40_000, "22": 40_000},
    )
    sioload.count_shares(result, 1000)
    assert (result.app_kib_per_connection, result.nginx_kib_per_connection) == (32.0, 50.0)
    assert result.kib_per_connection == 82.0


@pytest.mark.parametrize("workers", ["1", "2", "8"])
def test_the_bench_s_own_ports_are_none_of_the_stack_s(monkeypatch, workers):
    """The ideal receiver and the websocket reference beside a stack of any worker count: at the
    app's port + 1 the receiver met a worker's Socket.IO port and the upload section failed."""
    monkeypatch.setenv("GUNICORN_WORKERS", workers)
    stack = {endpoints.app_port(), *nginx.socketio_ports()}
    bench = {bench_stack.bench_port(0), bench_stack.bench_port(1)}
    assert len(bench) == 2 and not bench & stack, (bench, stack)
