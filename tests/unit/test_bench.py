"""The bench's own parsing, framing and recording (scripts/labctl/bench): no stack, no network."""

from __future__ import annotations

import json
import struct
import zlib

import pytest

from labctl.bench import chart, loop, record, wrk, wsload
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
        "upload.unbuffered_vs_discard_ratio",
        "upload.app_rss_growth_mib",
        "ws.connections_held",
        "ws.kib_per_connection",
        "ws.broadcast_ms",
        "workers.gevent_vs_sync_ratio",
        "loop.native_up_s",
        "loop.integration_s",
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
        ("ws.connections_held", 5000, "met"),
        ("loop.native_up_s", None, "not measured"),
    ],
)
def test_goal_verdicts_at_the_thresholds(key, value, verdict):
    assert record.GOALS[key].verdict(value) == verdict


def test_table_has_a_row_per_result_with_its_verdict(tmp_path):
    results = record.empty_results()
    results["proxy"]["tls_vs_direct_rps_ratio"] = 0.5
    lines = record.table(results, {"proxy.tls_vs_direct_rps_ratio": "wrk"}).splitlines()
    assert len(lines) == 1 + 9
    assert next(line for line in lines if line.startswith("proxy.")).split()[1:4] == ["0.5", ">=", "0.85"]
    record.write(tmp_path, results, {"machine": {}})
    assert json.loads((tmp_path / "results.json").read_text()) == results


def test_png_is_well_formed():
    png = chart.render(
        "t", [chart.Group("g", (chart.Bar("a", 2, "2", reference=True), chart.Bar("b", 1, "1")))]
    )
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    offset, chunks = 8, {}
    while offset < len(png):
        (length,) = struct.unpack_from("!I", png, offset)
        kind, data = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack_from("!I", png, offset + 8 + length)
        assert crc == zlib.crc32(kind + data), f"bad CRC in {kind!r}"
        chunks[kind] = data
        offset += 12 + length
    width, height = struct.unpack_from("!II", chunks[b"IHDR"])
    assert width == chart.WIDTH
    assert len(zlib.decompress(chunks[b"IDAT"])) == (width * 3 + 1) * height


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
