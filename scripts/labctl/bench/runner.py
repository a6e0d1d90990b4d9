"""Runs the bench's sections on stacks it starts and always stops, then writes
.lab/bench/results.json, details.json and results.png, and prints the table."""

from __future__ import annotations

import argparse
import time
from dataclasses import asdict
from typing import Any

from .. import endpoints, native, paths, stack, traffic
from ..procs import environment
from ..venv import reexec_in_venv
from . import (
    bench_stack,
    chart,
    hostile,
    loop,
    nginxlog,
    protocols,
    proxy,
    record,
    sioload,
    upload_rate,
    workers,
    wsload,
)
from .settings import SECTIONS, BenchSettings, env_help

OUT = paths.LAB / "bench"
OUTPUTS = ("results.json", "details.json", "results.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = "Sizes and durations (environment):\n" + env_help()
    parser.add_argument("--quick", action="store_true", help="tiny sizes, under a minute: a smoke run")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections (default: all of {','.join(SECTIONS)})",
    )


class Run:
    """One bench run: the named results, every raw figure behind them, one note per result."""

    def __init__(self, settings: BenchSettings) -> None:
        self.settings = settings
        self.results = record.empty_results()
        self.details: dict[str, Any] = {
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": record.machine(),
            "settings": asdict(settings),
            "errors": {},
        }
        self.notes: dict[str, str] = {}
        self.deploy_recording: traffic.Recording | None = None

    def measure_loop(self) -> None:
        native_up_s = loop.native_up_seconds()
        self.results["loop"]["native_up_s"] = native_up_s
        self.notes["loop.native_up_s"] = (
            "wall time of `scripts/lab native-up` from a stopped stack to healthy"
        )
        if self.settings.integration:
            suite = loop.integration()
            self.details["loop"] = {"integration": suite.as_dict()}
            self.results["loop"]["integration_s"] = suite.seconds
            self.notes["loop.integration_s"] = (
                f"`scripts/lab integration-test`: {suite.summary or 'no output'}"
            )
        else:
            self.notes["loop.integration_s"] = "not run (--quick or LAB_BENCH_INTEGRATION=0)"
        native.down(quiet=True)

    def measure_proxy(self) -> None:
        s = self.settings
        summary = proxy.run(s)
        self.details["proxy"] = summary
        self.results["proxy"]["tls_vs_direct_rps_ratio"] = summary["ratio"]
        self.notes["proxy.tls_vs_direct_rps_ratio"] = (
            "GET /healthz, one worker, wrk -c{c} {r}x{d:g}s each, median of the rounds' {rr}: "
            "TLS {t[rps]:.0f}/s p50 {t[p50_ms]} p99 {t[p99_ms]} ms; direct {x[rps]:.0f}/s "
            "p50 {x[p50_ms]} p99 {x[p99_ms]} ms; app CPU ms/request {x[cpu_ms_per_request][app]} vs "
            "{t[cpu_ms_per_request][app]}: bound {b}"
        ).format(
            rr=summary["round_ratios"],
            b=summary["app_cpu_bound_ratio"],
            c=s.proxy_connections,
            r=s.proxy_rounds,
            d=s.proxy_seconds,
            t=summary["tls"],
            x=summary["direct"],
        )

    def measure_upload(self) -> None:
        s = self.settings
        outcome = upload_rate.run(s.upload_mib, s.upload_rounds, s.upload_settle_s)
        timings = nginxlog.last_by_uri({t.path for t in upload_rate.TARGETS})
        self.details["upload"] = {
            **outcome.as_dict(),
            "nginx": {t.name: timings[t.path] for t in upload_rate.TARGETS if t.path in timings},
        }
        app, ideal = upload_rate.UNBUFFERED.name, upload_rate.IDEAL_PROXIED.name
        self.results["upload"]["app_vs_ideal_ratio"] = outcome.app_vs_ideal_ratio
        self.results["upload"]["unbuffered_vs_discard_ratio"] = record.ratio(
            outcome.median_rate(app), outcome.median_rate("discard")
        )
        self.results["upload"]["app_rss_growth_mib"] = outcome.app_rss_growth_mib
        last = outcome.rounds[-1]
        self.notes["upload.app_vs_ideal_ratio"] = (
            f"{s.upload_mib} MiB PUT via nginx TLS, median of {outcome.round_ratios()}; MiB/s app "
            + "/".join(f"{one[app].mib_per_s:.0f}" for one in outcome.rounds)
            + ", ideal "
            + "/".join(f"{one[ideal].mib_per_s:.0f}" for one in outcome.rounds)
            + f"; CPU (cores) app {last[app].app_cpu_share}, ideal {last[ideal].ideal_cpu_share}, "
            f"nginx {last[app].nginx_cpu_share}, client {last[app].client_cpu_share}"
        )
        self.notes["upload.unbuffered_vs_discard_ratio"] = "information, MiB/s: " + ", ".join(
            f"{name} {result.mib_per_s:.0f} (client CPU {result.client_cpu_share})"
            for name, result in outcome.references.items()
        )
        self.notes["upload.app_rss_growth_mib"] = (
            "peak VmRSS of the gunicorn worker minus before, largest of the app's uploads"
        )

    def measure_ws(self) -> None:
        # On a stack of its own with the default workers: the clients spread over all of them.
        with bench_stack.native_stack(workers=None):
            result = wsload.run(self.settings)
        self.details["ws"] = asdict(result)
        self.results["ws"].update(
            connections_held=result.held,
            kib_per_connection=result.kib_per_connection,
            broadcast_ms=result.broadcast_ms,
        )
        stop = result.first_error or f"configured max {self.settings.ws_max_connections}"
        spread = "+".join(str(n) for n in sorted(result.clients_per_worker.values(), reverse=True))
        self.notes["ws.connections_held"] = (
            f"wss /ws/chat via nginx on {len(result.clients_per_worker)} workers ({spread}), alive in "
            f"every broadcast; ramp stopped by: {stop}"
        )
        before, after = sum(result.rss_before_kib.values()), sum(result.rss_after_kib.values())
        self.notes["ws.kib_per_connection"] = (
            f"workers' RSS {before // 1024} -> {after // 1024} MiB (nginx's workers, not counted: "
            f"{result.nginx_kib_per_connection} KiB each); echo round trip at that load "
            f"p50 {result.echo_p50_ms} p99 {result.echo_p99_ms} ms"
        )
        self.notes["ws.broadcast_ms"] = (
            f"one message via Redis to the {result.held - 1} others, median of {result.broadcast_runs_ms}; "
            f"CPU ms each: {result.broadcast_cpu_ms}"
        )
        self.measure_large_message()

    def measure_large_message(self) -> None:
        from . import wsmessage  # the `websockets` library: .venv only (the bench re-runs itself there)

        s = self.settings
        with bench_stack.native_stack(workers=1):
            large = wsmessage.run(s.ws_large_message_mib * 1024 * 1024, s.ws_large_rounds)
            deflate_off = wsmessage.kib_per_connection(s.ws_deflate_connections, deflate=True)
        with environment(LAB_WS_DEFLATE="1"), bench_stack.native_stack(workers=1):
            deflate_on = wsmessage.kib_per_connection(s.ws_deflate_connections, deflate=True)
        self.results["ws"].update(
            deflate_off_kib_per_connection=deflate_off, deflate_on_kib_per_connection=deflate_on
        )
        for state in ("off", "on"):
            self.notes[f"ws.deflate_{state}_kib_per_connection"] = (
                f"one worker's RSS growth per /ws/echo client offering permessage-deflate, each having "
                f"echoed one message, {s.ws_deflate_connections} held; LAB_WS_DEFLATE "
                + ("0 (the default: declined)" if state == "off" else "1 (agreed: a zlib pair each)")
            )
        self.details["ws_large_message"] = asdict(large)
        self.results["ws"].update(
            large_echo_vs_reference_ratio=large.ratio, large_message_stall_ms=large.stall_ms
        )
        self.notes["ws.large_echo_vs_reference_ratio"] = (
            f"one {s.ws_large_message_mib} MiB text message echoed, straight to one worker, same client "
            f"({wsmessage.CLIENT}), median of {s.ws_large_rounds}: app s {large.app_s}, "
            f"`websockets` echo server s {large.reference_s}"
        )
        self.notes["ws.large_message_stall_ms"] = (
            f"another client's longest small echo meanwhile, worst of {large.app_stall_ms}; alone "
            f"just before: median {large.idle_round_trip_ms}, longest {large.idle_worst_ms} (the "
            f"machine's noise); beside the reference {large.reference_stall_ms}"
        )

    def measure_socketio(self) -> None:
        # A stack of its own (the default workers), so the raw chat's freed memory is not reused here.
        with bench_stack.native_stack(workers=None):
            result = sioload.run(self.settings)
        self.details["socketio"] = asdict(result)
        ws = self.details.get("ws", {})
        per_client = result.broadcast_ms / (result.held - 1) if result.broadcast_ms and result.held > 1 else 0
        ws_per_client = (
            ws["broadcast_ms"] / (ws["held"] - 1) if ws.get("broadcast_ms") and ws["held"] > 1 else 0
        )
        self.results["socketio"].update(
            connections_held=result.held,
            kib_per_connection=result.kib_per_connection,
            broadcast_vs_ws_ratio=record.ratio(per_client, ws_per_client) if per_client else None,
        )
        stop = result.first_error or f"configured max {self.settings.socketio_max_connections}"
        spread = "+".join(str(n) for n in sorted(result.clients_per_worker.values(), reverse=True))
        self.notes["socketio.connections_held"] = (
            f"Engine.IO websockets on /socket.io/ via nginx on {len(result.clients_per_worker)} workers "
            f"({spread}), alive in every broadcast; {result.pings_answered} pings answered; "
            f"ramp stopped by: {stop}"
        )
        before, after = sum(result.rss_before_kib.values()), sum(result.rss_after_kib.values())
        self.notes["socketio.kib_per_connection"] = (
            f"app workers' + nginx workers' RSS {before // 1024} -> {after // 1024} MiB: app "
            f"{result.app_kib_per_connection} (ws.kib_per_connection counts this share: "
            f"{ws.get('kib_per_connection')}) + nginx {result.nginx_kib_per_connection} KiB "
            f"(the raw chat's nginx share {ws.get('nginx_kib_per_connection')})"
        )
        self.notes["socketio.broadcast_vs_ws_ratio"] = (
            f"ms per client of one chat event via the Redis manager to {result.held - 1} clients "
            f"(median of {result.broadcast_runs_ms}; CPU ms each: {result.broadcast_cpu_ms}) / the raw "
            f"chat's to {ws.get('held', 0) - 1} (same run; CPU ms each: {ws.get('broadcast_cpu_ms')})"
        )

    def measure_hostile(self) -> None:
        # On a stack of its own with the default workers, straight to gunicorn (bench/hostile.py).
        with bench_stack.native_stack(workers=None):
            result = hostile.run(self.settings)
        self.details["hostile"] = asdict(result)
        self.results["hostile"].update(
            kib_per_slow_upload=result.kib_per_slow_upload,
            mib_per_unread_websocket=result.mib_per_unread_websocket,
        )
        self.notes["hostile.kib_per_slow_upload"] = (
            f"workers' VmRSS growth at the peak / {result.slow_uploads} PUTs trickling a byte a second "
            f"for {hostile.TRICKLE_S}s, straight to gunicorn"
        )
        self.notes["hostile.mib_per_unread_websocket"] = (
            f"workers' VmRSS growth at the peak / {result.unread_websockets} /ws/echo clients that sent "
            f"{hostile.UNREAD_MESSAGE // hostile.MIB} MiB and do not read the echo (closed 1008 after "
            "LAB_WS_SEND_TIMEOUT_S)"
        )

    def measure_deploy(self) -> None:
        s = self.settings
        load = traffic.Load(
            endpoints.from_env(),
            http_threads=s.deploy_threads,
            websockets=s.deploy_websockets,
            max_requests=50_000,
            max_seconds=120,
        )
        recording, seconds = traffic.under_load(stack.deploy, load)
        self.deploy_recording = recording
        self.details["deploy"] = {
            "summary": recording.summary(),
            "seconds": round(seconds, 2),
            "served": recording.served,
            "failed": recording.failed,
            "failures": recording.failures()[:20],
            "websocket_closes": {str(c): n for c, n in sorted(recording.close_codes().items())},
            "websockets_reconnected": recording.reconnected,
        }
        self.results["deploy"].update(failed_requests=recording.failed, seconds=round(seconds, 2))
        self.notes["deploy.failed_requests"] = (
            f"`make deploy` (native: kill -HUP) under {s.deploy_threads} GET threads and "
            f"{s.deploy_websockets} websockets: {recording.summary()}"
        )
        self.notes["deploy.seconds"] = "from the HUP until every old worker exited and the new ones answer"

    def measure_workers(self) -> None:
        s = self.settings
        by_class = workers.run(s)
        rps = {name: result.rps for name, result in by_class.items()}
        self.details["workers"] = {
            "classes": {name: result.as_dict() for name, result in by_class.items()},
            "plain_gevent_vs_sync_ratio": record.ratio(rps["gevent"], rps["sync"]),
        }
        self.results["workers"]["gevent_vs_sync_ratio"] = record.ratio(rps["gevent-websocket"], rps["sync"])
        self.notes["workers.gevent_vs_sync_ratio"] = (
            f"baseline worker vs sync, /slow?seconds={s.workers_sleep_s:g} via nginx, "
            f"wrk -c{s.workers_connections}, req/s: " + ", ".join(f"{n} {v:g}" for n, v in rps.items())
        )

    def measure_protocols(self) -> None:
        s = self.settings
        summary = protocols.run(s)
        self.details["protocols"] = summary
        rps = {name: summary[name]["rps"] for name in protocols.PROTOCOLS}
        nginx_cpu = {name: summary[name]["cpu_ms_per_request"]["nginx"] for name in protocols.PROTOCOLS}
        self.results["protocols"].update(
            h2_vs_h11_rps_ratio=record.ratio(rps["h2"], rps["h1.1"]),
            h3_vs_h2_rps_ratio=record.ratio(rps["h3"], rps["h2"]),
            h3_vs_h2_nginx_cpu_ratio=record.ratio(nginx_cpu["h3"], nginx_cpu["h2"]),
        )
        cpu = {name: summary[name]["cpu_ms_per_request"] for name in protocols.PROTOCOLS}
        failed = {name: summary[name]["failed_rounds"] for name in protocols.PROTOCOLS}
        self.notes["protocols.h2_vs_h11_rps_ratio"] = (
            f"GET {protocols.PATH} via nginx, {s.protocol_in_flight} in flight, {s.protocol_rounds} rounds "
            f"(h2load {s.protocol_requests} requests each for h1.1 and h2, h3 {s.protocol_seconds:g}s), "
            f"{summary['stack']}: req/s "
            + ", ".join(f"{name} {value:.0f}" for name, value in rps.items())
            + "; rounds failed (errored requests, not counted): "
            + ", ".join(f"{name} {count}" for name, count in failed.items())
        )
        self.notes["protocols.h3_vs_h2_rps_ratio"] = (
            f"h3 with the aioquic client, its CPU {cpu['h3']['client']} ms/request vs h2load's "
            f"{cpu['h2']['client']}: the client bounds h3's rate"
        )
        self.notes["protocols.h3_vs_h2_nginx_cpu_ratio"] = "nginx CPU ms/request: " + ", ".join(
            f"{name} {value}" for name, value in nginx_cpu.items()
        )

    def run(self, sections: list[str]) -> None:
        started = time.monotonic()
        try:
            if "loop" in sections:
                self._section("loop")
            stacked = [name for name in ("proxy", "upload", "deploy") if name in sections]
            if stacked:
                try:
                    with bench_stack.native_stack():
                        for name in stacked:
                            self._section(name)
                except SystemExit as error:  # the stack did not start: say so, keep the rest
                    self.details["errors"].update(dict.fromkeys(stacked, str(error)))
            if "ws" in sections:
                self._section("ws")  # on a stack of its own: the default workers
            if "socketio" in sections:
                self._section("socketio")  # the same, beside the raw chat's figures
            if "hostile" in sections:
                self._section("hostile")  # the same
            if "workers" in sections:
                self._section("workers")
            if "protocols" in sections:
                native.down(quiet=True)  # its own stack (or the running one that speaks HTTP/3)
                self._section("protocols")
        finally:
            native.down(quiet=True)
            self.details["seconds"] = round(time.monotonic() - started, 1)

    def _section(self, name: str) -> None:
        print(f"bench: {name} ...", flush=True)
        started = time.monotonic()
        try:
            getattr(self, f"measure_{name}")()
        except (RuntimeError, OSError, ValueError, KeyError, SystemExit) as error:
            # One broken section must not hide the others' figures; the exit status reports it.
            self.details["errors"][name] = f"{type(error).__name__}: {error}"
            print(f"bench: {name} FAILED: {error}", flush=True)
        print(f"bench: {name} done in {time.monotonic() - started:.0f}s", flush=True)


def chart_groups(details: dict[str, Any], results: dict[str, Any]) -> list[chart.Group]:
    groups = []
    if proxy := details.get("proxy"):
        groups.append(
            chart.Group(
                "Proxy: small GET, requests/s",
                (
                    chart.Bar(
                        "direct gunicorn",
                        proxy["direct"]["rps"],
                        f"{proxy['direct']['rps']:.0f}",
                        reference=True,
                    ),
                    chart.Bar("nginx TLS", proxy["tls"]["rps"], f"{proxy['tls']['rps']:.0f}"),
                ),
            )
        )
    if uploads := details.get("upload"):
        last = uploads["rounds"][-1] if uploads["rounds"] else {}
        names = {
            "ideal": "ideal receiver, nginx TLS",
            "discard": "nginx TLS discard",
            "direct": "app, direct",
            "ideal_direct": "ideal receiver, direct",
            "unbuffered": "app, nginx TLS (baseline)",
            "buffered": "app, nginx TLS buffered",
        }
        measured = {"unbuffered", "buffered", "direct"}
        groups.append(
            chart.Group(
                "Upload, MiB/s (last round)",
                tuple(
                    chart.Bar(names[n], u["mib_per_s"], f"{u['mib_per_s']:.0f}", reference=n not in measured)
                    for n, u in {**last, **uploads["references"]}.items()
                ),
            )
        )
    if worker_classes := details.get("workers"):
        groups.append(
            chart.Group(
                "Workers: concurrent /slow, requests/s",
                tuple(
                    chart.Bar(name, r["rps"], f"{r['rps']:g}", reference=name == "sync")
                    for name, r in worker_classes["classes"].items()
                ),
            )
        )
    if by_protocol := details.get("protocols"):
        groups.append(
            chart.Group(
                "Small GET by protocol (h3: aioquic client), requests/s",
                tuple(
                    chart.Bar(
                        name,
                        by_protocol[name]["rps"],
                        f"{by_protocol[name]['rps']:.0f}",
                        reference=name == "h2",
                    )
                    for name in protocols.PROTOCOLS
                ),
            )
        )
    ratios = [
        (key, value, goal)
        for key, goal in record.GOALS.items()
        if "ratio" in key and (value := results[key.split(".")[0]][key.split(".")[1]]) is not None
    ]
    if ratios:
        groups.append(
            chart.Group(
                "Ratios, measured / reference",
                tuple(
                    chart.Bar(key.split(".")[0], value, f"{value:.2f}", goal=goal.threshold)
                    for key, value, goal in ratios
                ),
            )
        )
    if ws := details.get("ws"):
        groups.append(
            chart.Group(
                f"WebSockets held by {len(ws['clients_per_worker'])} workers",
                (
                    chart.Bar(
                        "held",
                        ws["held"],
                        f"{ws['held']}, {ws['kib_per_connection']} KiB/conn",
                        goal=record.GOALS["ws.connections_held"].threshold,
                    ),
                ),
            )
        )
    return groups


def venv_command(args: argparse.Namespace) -> list[str]:
    """This bench again, as `scripts/lab` arguments: the chart needs matplotlib, from .venv."""
    return ["bench", "--only", args.only, *(["--quick"] if args.quick else [])]


def cmd_bench(args: argparse.Namespace) -> int:
    sections = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(sections) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"lab bench: unknown section(s) {unknown}; choose from {','.join(SECTIONS)}")
    reexec_in_venv(venv_command(args))
    settings = BenchSettings.from_env(quick=args.quick)
    print(
        f"bench: sections {','.join(sections)}; the native stack on :{endpoints.https_port()} is restarted",
        flush=True,
    )
    run = Run(settings)
    run.run(sections)
    record.write(OUT, run.results, run.details)
    title = f"proxylab bench {run.details['started'][:16]} {run.details['machine']['cores']} cores"
    panels: list[chart.Panel] = list(chart_groups(run.details, run.results))
    if run.deploy_recording is not None:
        panels.append(chart.Timeline.from_recording(run.deploy_recording, "Deploy under load, per 250 ms"))
    (OUT / "results.png").write_bytes(chart.render(title, panels))
    print("\n" + record.table(run.results, run.notes))
    if args.quick:
        print("\nbench: --quick sizes are far below the goals' sizes: its verdicts only show the bench works")
    written = ", ".join(str((OUT / name).relative_to(paths.ROOT)) for name in OUTPUTS)
    print(f"\nbench: {run.details['seconds']:.0f}s; wrote {written}")
    if run.details["errors"]:
        print(f"bench: failed sections: {run.details['errors']}")
        return 1
    return 0
