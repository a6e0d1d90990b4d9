"""`scripts/lab check FILE` (`make check CONF=FILE`): a user's nginx config, as they have it, run
in front of the lab's app; every behaviour probed, every catalogue symptom looked for; one table:
behaviour, ok or broken, what was seen, the directive responsible at the user's file:line, the fix.

Exit 0 when everything holds, 1 when something is broken, 2 when it cannot run (nginx's own
message, pointing at the user's file and line). The file is never modified; everything the run
writes is under .lab/check/.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import labsettings

from .. import behaviours, catalogue, keepalive, native, paths, procs
from .. import probe as http_probe
from ..behaviours import BROKEN, NOT_PROBED, NOTE, OK, Behaviour, Finding, Site
from ..behaviours.body import REQUEST_BODY, body_limit_mib
from ..behaviours.capacity import CAPACITY, MAX_SOCKETS, probe_capacity
from ..behaviours.core import EVIL_HOST
from ..behaviours.errors import ERROR_FORMAT
from ..behaviours.prefix import probe_path as prefix_probe_path
from ..behaviours.redirects import REDIRECT_PORT
from ..behaviours.socketio import DEFAULT_PATH as SOCKETIO_PATH
from ..behaviours.socketio import SIO_STICKY, read_timeout_s, socketio_location
from ..behaviours.websockets import ALL as WEBSOCKET_BEHAVIOURS
from ..endpoints import Endpoint
from ..nginx import nginx_has_http3, nginx_version
from . import gunicornconf, refusals, sandbox
from .adapt import Plan, adapt
from .config import (
    Config,
    ConfigError,
    Directive,
    listens,
    load,
    location_for,
    location_pattern,
    plain_listens,
    probe_host,
    tls_listens,
    usable_name,
)

STATIC = "static"  # broken by the config's text, no probe could confirm it


@dataclass(frozen=True)
class Row:
    behaviour: Behaviour
    verdict: str  # ok, broken, static, note, not probed
    seen: str
    file: str = ""  # where in the user's own files (an include line for a system file's directive)
    line: int = 0
    directive: str = ""
    fix: str = ""

    def as_json(self) -> dict[str, object]:
        """The row for --json: the behaviour by its id."""
        return {f.name: getattr(self, f.name) for f in fields(self)} | {"behaviour": self.behaviour.id}


@dataclass
class Outcome:
    rows: list[Row]
    matches: list[tuple[str, str]]  # (scenario, what its check saw)
    notes: list[str]
    # With --gunicorn: what the probes between the layers saw broken (its behaviour -> what it saw).
    between: dict[Behaviour, str] = field(default_factory=dict)

    @property
    def broken(self) -> list[Row]:
        return [r for r in self.rows if r.verdict in (BROKEN, STATIC)]


@dataclass(frozen=True)
class Layered:
    """With --gunicorn: the lab's app under the user's settings, and what to probe between the layers."""

    app_command: list[str]
    slots: int | None  # the websockets its workers hold at most (sync, gthread)
    keepalive_s: float | None  # gunicorn's keepalive, where nginx's pool outlives it (keepalive-race)


def _proxies(server: Directive) -> bool:
    return any(d.name == "proxy_pass" for d in server.walk())


def site_for(
    config: Config, public_https: int | None, public_http: int | None, version: tuple[int, ...] | None = None
) -> Site:
    """The site the probes ask for: the TLS server that proxies (else a plain one), its name;
    judged as ``version`` of nginx (this machine's when not given)."""
    proxying = [s for s in config.servers() if _proxies(s)]
    main = ([s for s in proxying if tls_listens(s)] or proxying)[0]
    host = probe_host(usable_name(main) or "localhost")
    tls_port = next((lst.port for lst in tls_listens(main)), None)
    return Site(
        config,
        host,
        main,
        tls_port,
        (http_port := _http_port(config, main, tls_port)),
        public_https or tls_port or 443,
        public_http or http_port or 80,
        version or nginx_version(),
    )


def _http_port(config: Config, main: Directive, tls_port: int | None) -> int | None:
    """The plain-HTTP port of the site: for a TLS site the port other servers listen on in plain
    HTTP (80 first: where clients are sent on to HTTPS), else the main server's own (one server
    for both, or a plain site); None when there is none. A TLS server's own plain listen beside a
    redirecting server is a hop behind the site (a balancer's), not its HTTP entry."""
    own = [lst.port for lst in plain_listens(main)]
    others = sorted({lst.port for s in config.servers() if s is not main for lst in plain_listens(s)})
    if tls_port is not None and others:
        return 80 if 80 in others else others[0]
    return own[0] if own else None


def _loopback(server: Directive, port: int) -> str:
    """Where the probes connect for ``port``: ::1 when the server listens there on IPv6 only."""
    on_port = [lst for lst in listens(server) if lst.port == port]
    return "::1" if on_port and all(lst.ipv6 for lst in on_port) else "127.0.0.1"


def endpoint_for(site: Site, plan: Plan) -> Endpoint:
    def url(scheme: str, port: int) -> str:
        default = 443 if scheme == "https" else 80
        return f"{scheme}://{site.host}" + ("" if port == default else f":{port}")

    connect = []
    if site.tls_port is not None:
        local = plan.ports.get(site.tls_port, site.tls_port)
        connect.append((site.public_https_port, (_loopback(site.app_server, site.tls_port), local)))
    if site.http_port is not None and (server := site.http_server) is not None:
        local = plan.ports.get(site.http_port, site.http_port)
        connect.append((site.public_http_port, (_loopback(server, site.http_port), local)))
    main = url("https", site.public_https_port) if site.tls else url("http", site.public_http_port)
    http_url = url("http", site.public_http_port) if site.http_port is not None and site.tls else None
    return Endpoint(main, paths.CA, http_url, tuple(connect))


def _row(result: behaviours.Result, found: list[Finding]) -> list[Row]:
    """One row per directive responsible; a probe's verdict decides what the finding is."""
    if not found:
        return [
            Row(
                result.behaviour,
                result.verdict,
                result.seen,
                fix=result.hint if result.verdict == BROKEN else "",
            )
        ]
    verdict = {BROKEN: BROKEN, NOT_PROBED: STATIC}.get(result.verdict)
    if result.verdict == OK and result.behaviour.config_decides:
        verdict = STATIC  # what the probe met is this machine's, not what the config allows
    if verdict is None:  # the probe saw it work: the text is not the whole story (say so, count nothing)
        return [Row(result.behaviour, result.verdict, result.seen)]
    return [
        Row(result.behaviour, verdict, result.seen, f.where[0], f.where[1], f.directive, f.fix) for f in found
    ]


def merge(results: list[behaviours.Result], found: list[Finding]) -> list[Row]:
    """The probes' results in order, each behaviour's findings attached to the result that
    decides it: its first broken one, else its first not probed one, else its first."""
    by_behaviour: dict[Behaviour, list[Finding]] = {}
    for finding in found:
        by_behaviour.setdefault(finding.behaviour, []).append(finding)
    deciding: dict[Behaviour, behaviours.Result] = {}
    for verdict in (BROKEN, NOT_PROBED, NOTE, OK):
        for result in results:
            if result.verdict == verdict:
                deciding.setdefault(result.behaviour, result)
    rows: list[Row] = []
    for result in results:
        if deciding[result.behaviour] is result:
            rows.extend(_row(result, by_behaviour.pop(result.behaviour, [])))
        elif result.verdict != OK:  # a second probe of the behaviour (error-format: 413, 502)
            rows.append(Row(result.behaviour, result.verdict, result.seen))
    for behaviour, rest in by_behaviour.items():  # read in the config, no probe for it at all
        rows.extend(
            Row(behaviour, STATIC, "not probed", f.where[0], f.where[1], f.directive, f.fix) for f in rest
        )
    return rows


def port_notes(site: Site, rows: list[Row]) -> list[str]:
    """Behaviours right on the default ports that would break behind another public port."""
    notes = []
    if (
        site.tls
        and site.public_https_port == 443
        and not any(r.behaviour is REDIRECT_PORT for r in rows if r.verdict != OK)
    ):
        notes.append(
            "the public HTTPS port is 443, where URLs carry no port: behind a port mapping or a balancer "
            "on another port, run again with --public-https-port to see whether the app's URLs keep it"
        )
    return notes


def not_reached(site: Site, results: list[behaviours.Result]) -> list[behaviours.Result]:
    """A probe whose path the config never sends to the app saw nginx's own answer (a 404 of a
    config that proxies only /api/): "not reached", never "ok". A forged Host reflected stays
    broken: nginx itself reflects it in a `return ... $host`."""
    judged = []
    for r in results:
        path = getattr(site.routes, r.behaviour.route) if r.behaviour.route else None
        reflected = r.verdict == BROKEN and EVIL_HOST in r.seen
        if path is None or reflected or site.location(path) is not None:
            judged.append(r)
            continue
        landed = location_for(site.app_server, path)
        where = (
            f"location {' '.join(landed.args)}, line {landed.line}"
            if landed is not None
            else f"the server at line {site.app_server.line}: no location"
        )
        judged.append(
            behaviours.Result(r.behaviour, NOT_PROBED, f"not reached: {path} is answered by nginx ({where})")
        )
    return judged


def judged_where_probed(site: Site, results: list[behaviours.Result]) -> list[behaviours.Result]:
    """When the lab's /ws/* requests land outside the config's websocket location (it serves
    /socket.io), what they saw says nothing of it: those rows are judged from the config's text."""
    results = not_reached(site, results)
    if not site.probes_miss_the_websocket_location():
        return results
    landed = site.location(site.routes.ws)
    where = f"location {' '.join(landed.args)} (line {landed.line})" if landed is not None else "no location"
    dedicated = ", ".join(f"{' '.join(d.args)} (line {d.line})" for d in site.websocket_locations())
    seen = (
        f"the lab's /ws/* land in {where}, not in your websocket location {dedicated}: read from the config"
    )
    return [
        behaviours.Result(r.behaviour, NOT_PROBED, seen) if r.behaviour in WEBSOCKET_BEHAVIOURS else r
        for r in results
    ]


def _waits_on_a_body(scenario: catalogue.Scenario) -> bool:
    """A check that sends a body with no deadline of its own (a 2 MiB upload may take 60 s)."""
    return any((c.body_mib or c.body_kib) and not c.timeout_s for c in scenario.checks)


def sticky_from_text(results: list[behaviours.Result]) -> list[behaviours.Result]:
    """One app process answers every upstream address here, so no Socket.IO session can reach
    another: whether the config routes sessions to one server is read from its upstream."""
    seen = "one app process answers every upstream address here: read from the config's upstream"
    return [
        behaviours.Result(r.behaviour, NOT_PROBED, seen) if r.behaviour is SIO_STICKY else r for r in results
    ]


def scenario_candidates(routes: behaviours.Routes) -> list[catalogue.Scenario]:
    """The catalogue's scenarios whose symptom a run can show: not those whose check reads this
    checkout's own stack (early-reject counts its kernel's resets), nor the websocket ones when the
    probes go to the config's own websocket location (their checks ask the lab's /ws/*, which such
    a config does not serve as websockets)."""
    own_websocket = routes.ws != behaviours.Routes().ws
    return [
        s
        for s in catalogue.scenarios()
        if s.checked
        and not s.compose_only
        and not s.lab_stack_only
        and not (own_websocket and s.behaviour in WEBSOCKET_BEHAVIOURS)
    ]


def peers_marked_down(config: Config) -> bool:
    """An upstream of several servers: nginx takes one out for fail_timeout after a failed request
    (max_fails 1 by default), so a check's failure (a header too big) beside the probes would send
    them to another server, or to none ("no live upstreams")."""
    return any(len(upstream.children("server")) > 1 for upstream in config.upstreams().values())


def probed_and_matched(
    endpoint: Endpoint,
    routes: behaviours.Routes,
    probing: Callable[[], list[behaviours.Result]],
    side_by_side: bool = True,
) -> tuple[list[behaviours.Result], list[tuple[str, str]]]:
    """The probes (``probing``) and the catalogue's symptoms the run shows. With ``side_by_side``
    the checks, each a few independent requests (some waiting seconds on purpose), run while the
    probes do; else after them (peers_marked_down). Not matched: a scenario whose behaviour a probe
    found broken (its row says it, with the line). A check that sends a body with no deadline of
    its own waits for the probes and, where they saw a request body go unanswered, is not run (it
    would wait out its upload's deadline for "no answer": neither symptom nor health, never a match)."""
    candidates = scenario_candidates(routes)
    early = [s for s in candidates if side_by_side and not _waits_on_a_body(s)]
    with ThreadPoolExecutor(max_workers=max(1, len(early))) as pool:
        pending = {s.name: pool.submit(s.observe, endpoint) for s in early}
        results = probing()
        observed = {name: future.result() for name, future in pending.items()}
    hang = any(r.behaviour is REQUEST_BODY and "no answer" in r.seen for r in results)
    shown = {r.behaviour for r in results if r.verdict == BROKEN}
    late = [
        s
        for s in candidates
        if s.name not in observed and s.behaviour not in shown and not (hang and _waits_on_a_body(s))
    ]
    observed.update((s.name, seen) for s, seen in catalogue.matching(late, endpoint))
    matches = [
        (s.name, observed[s.name].seen)
        for s in candidates
        if s.name in observed and s.behaviour not in shown and observed[s.name].present is True
    ]
    return results, matches


def websocket_probe_path(site: Site, location: Directive) -> str | None:
    """A path nginx sends to ``location`` (a websocket one of the config): its prefix (with a
    "/" after a bare name, as clients ask: /socket.io -> /socket.io/), its exact URI, or a
    regex's literal start when that lands there; None when no such path is found."""
    modifier, pattern = location_pattern(location)
    if modifier == "=":
        candidate = pattern
    elif modifier in ("", "^~"):
        candidate = pattern if pattern.endswith("/") else pattern + "/"
    elif modifier in ("~", "~*"):
        candidate = re.split(r"[(.*+?\[\]{}|$\\]", pattern.lstrip("^"), maxsplit=1)[0]
    else:
        return None
    return candidate if candidate.startswith("/") and site.location(candidate) is location else None


def routes_for(site: Site) -> behaviours.Routes:
    """The lab's routes, with the websocket probes sent to the config's own websocket location
    when the lab's /ws/* would land elsewhere (the app runs with LAB_WS_ANY_PATH: an echo there);
    the prefix probed is the one the config strips before the app (none: not probed)."""
    routes = behaviours.Routes(prefix=prefix_probe_path(site))
    if not site.probes_miss_the_websocket_location():
        return routes
    for location in site.websocket_locations():
        if (path := websocket_probe_path(site, location)) is not None:
            return replace(routes, ws=path, ws_info=path)
    return routes


# The lab's websocket routes, for the location a config upgrades in.
WEBSOCKET_ROUTES = ("/ws/echo", "/socket.io/?EIO=4&transport=websocket")
RACE_MAX_S = 10.0  # the keep-alive race is probed only this far (it waits about 1.5 x keepalive)


def hold_slots(site: Site, endpoint: Endpoint, slots: int) -> behaviours.Result | None:
    """One websocket more than ``slots`` through the config's websocket location (a lab route that
    lands there), then a request: the capacity probe's verdict, or None where no route lands."""
    dedicated = site.websocket_locations()
    route = next((r for r in WEBSOCKET_ROUTES if site.location(r) in dedicated), None)
    if route is None or slots >= MAX_SOCKETS:
        return None
    handshake, conn = http_probe.websocket(endpoint, route)
    if conn is None:  # the lab's app upgrades only under an async worker (gevent-websocket)
        seen = f"{route}: the handshake answered {handshake.status} under your worker class"
        return behaviours.Result(CAPACITY, BROKEN if handshake.status != 404 else NOT_PROBED, seen)
    conn.close()
    options = behaviours.Options(behaviours.Routes(ws=route), hold_websockets=slots + 1)
    return next(iter(probe_capacity(behaviours.Probe(endpoint, options))), None)


def between_layers(
    site: Site, endpoint: Endpoint, layered: Layered, nginx_master: int
) -> dict[Behaviour, str]:
    """The --gunicorn findings a probe can confirm, probed: the worker's websocket slots held
    (ws-worker), a POST on a pooled connection across gunicorn's keepalive (keepalive-race)."""
    seen: dict[Behaviour, str] = {}
    held = hold_slots(site, endpoint, layered.slots) if layered.slots else None
    if held is not None and held.verdict == BROKEN:
        seen[held.behaviour] = held.seen
    if layered.keepalive_s is not None and layered.keepalive_s <= RACE_MAX_S:
        try:
            workers = sorted(procs.children(nginx_master))
            post = keepalive.paused(endpoint, workers, layered.keepalive_s, "POST")
        except (OSError, http.client.HTTPException):
            return seen
        if post == 502:
            seen[gunicornconf.KEEPALIVE_RACE] = (
                f"POST {keepalive.PATH} on a connection nginx pooled, held in nginx (paused) across "
                f"gunicorn's keepalive {layered.keepalive_s:g} s: 502"
            )
    return seen


def run(
    site: Site, args: argparse.Namespace, in_namespace: bool, layered: Layered | None = None
) -> tuple[Outcome, Plan, Site, list[str]]:
    """``site``: the user's config (site_for); ``layered``: the lab's app under the user's gunicorn
    settings (--gunicorn), else the lab's."""
    config = site.config
    site = replace(site, routes=replace(routes_for(site), socketio=args.socketio_path or SOCKETIO_PATH))
    sio_location = socketio_location(site)
    if sio_location is None:  # no Socket.IO in this config: nothing to probe
        site = replace(site, routes=replace(site.routes, socketio=None))
    place = sandbox.where(
        in_namespace,
        labsettings.HTTPS_PORT.value(),
        labsettings.HTTP_PORT.value(),
        labsettings.APP_PORT.value(),
        args.workdir,
    )
    sandbox.prepare(place)
    try:
        plan = adapt(config, place)
    except ValueError as error:
        raise ConfigError(str(error)) from error
    sandbox.mint_certificate(plan.names, place.certs)
    warnings = sandbox.nginx_test(plan, place)
    endpoint = endpoint_for(site, plan)
    upload_location = site.location(site.routes.upload)
    declared = body_limit_mib(upload_location) if upload_location is not None else None
    options = behaviours.Options(
        site.routes,
        idle_s=args.idle,
        declared_limit_mib=declared,
        http3_unjudged=""
        if nginx_has_http3()
        else "this machine's nginx has no HTTP/3 module: quic listens left out",
        socketio_read_timeout_s=read_timeout_s(sio_location) if sio_location is not None else None,
    )
    with sandbox.running(
        plan, place, layered.app_command if layered else None, socketio_path=site.routes.socketio
    ) as server:
        results, matches = probed_and_matched(
            endpoint,
            site.routes,
            lambda: sticky_from_text(judged_where_probed(site, behaviours.run(endpoint, options))),
            side_by_side=not peers_marked_down(config),
        )
        between = between_layers(site, endpoint, layered, server.pid) if layered else {}
    answered = next((r.status for r in results if r.behaviour is ERROR_FORMAT and r.status), None)
    rows = merge(results, behaviours.findings(replace(site, bad_gateway_answered=answered)))
    return Outcome(rows, matches, port_notes(site, rows), between), plan, site, warnings


def _short(file: str, path: Path) -> str:
    """The user's own files by name (they sit beside the one given), system files in full."""
    return Path(file).name if Path(file).parent == path.resolve().parent else file


def report(
    path: Path, outcome: Outcome, plan: Plan, site: Site, warnings: list[str], mode: str, seconds: float
) -> str:
    lines = [f"lab check: {path}", f"  {mode}; probed as {endpoint_for(site, plan).url}"]
    if plan.changes:
        lines.append("  changed to run here (your file is never modified):")
        for change in plan.changes:
            lines.append(
                f"    {_short(change.where[0], path)}:{change.where[1]}  {change.was}  ->  {change.now}"
                f"  ({change.why})"
            )
    for warning in warnings:
        lines.append(f"  nginx -t: {warning}")
        if (fix := refusals.fix_for(warning)) is not None:
            lines.append(f"    fix: {fix}")
    lines.append("")
    width = max(len(r.behaviour.id) for r in outcome.rows)
    marks = {OK: "ok", BROKEN: "BROKEN", STATIC: "broken*", NOTE: "note", NOT_PROBED: "-"}
    previous: Row | None = None
    for row in outcome.rows:
        again = previous is not None and (previous.behaviour, previous.seen) == (row.behaviour, row.seen)
        lines.append(
            f"  {row.behaviour.id:<{width}}  {marks[row.verdict]:<8} {'(same)' if again else row.seen}"
        )
        previous = row
        if row.file:
            lines.append(f"  {'':<{width}}  {'':<8} {_short(row.file, path)}:{row.line}  {row.directive}")
        if row.fix and row.verdict in (BROKEN, STATIC):
            lines.append(f"  {'':<{width}}  {'':<8}   fix: {row.fix}")
    for name, seen in outcome.matches:
        lines.append(f"  the same symptom as the catalogue's {name} (nginx/scenarios/{name}/): {seen}")
    lines.extend(f"  note: {note}" for note in outcome.notes)
    confirmed = sum(r.verdict == BROKEN for r in outcome.rows)
    static = sum(r.verdict == STATIC for r in outcome.rows)
    lines.append(
        f"{len(outcome.rows)} rows: {sum(r.verdict == OK for r in outcome.rows)} ok, {confirmed} broken "
        f"(seen by a probe), {static} broken* (read in the config, not confirmed by a probe); {seconds:.1f} s"
    )
    return "\n".join(lines)


def main(args: argparse.Namespace, argv: list[str]) -> int:
    started = time.monotonic()
    namespace = None if args.no_namespace else sandbox.namespace_command()
    if namespace is not None:
        env = {**os.environ, sandbox.IN_NAMESPACE: "1"}
        return subprocess.run(
            [*namespace, sys.executable, str(paths.SCRIPTS / "lab"), *argv], env=env
        ).returncode
    in_namespace = bool(os.environ.get(sandbox.IN_NAMESPACE))
    if in_namespace:
        sandbox.loopback_up()
    mode = (
        "ran verbatim in a private network namespace (your listen ports and upstream addresses)"
        if in_namespace
        else f"ran on the lab's ports ({labsettings.HTTPS_PORT.value()}, {labsettings.HTTP_PORT.value()}), "
        "judged as your public ports"
    )
    try:
        site = site_for(load(args.conf), args.public_https_port, args.public_http_port)
        users = gunicornconf.load_gunicorn(args.gunicorn) if args.gunicorn else None
        layers = gunicornconf.judge(site, users) if users else []
        flags = gunicornconf.applied_flags(users) if users else []
        layered = None
        if users is not None:
            race = any(f.behaviour is gunicornconf.KEEPALIVE_RACE and f.verdict == BROKEN for f in layers)
            keepalive_s = float(users.value("keepalive")) if race else None
            layered = Layered(
                [*native.gunicorn_command(), *flags], gunicornconf.websocket_slots(users), keepalive_s
            )
        outcome, plan, site, warnings = run(site, args, in_namespace, layered)
        broken = {r.behaviour: r.seen for r in outcome.rows if r.verdict == BROKEN}
        layers = gunicornconf.confirm(layers, {**broken, **outcome.between})
        if flags:
            mode += f"; the lab's app ran with your gunicorn settings: {' '.join(flags)}"
    except ConfigError as error:
        print(f"lab check: {error}", file=sys.stderr)
        return 2
    except (RuntimeError, OSError, ValueError, subprocess.CalledProcessError) as error:
        logs = (args.workdir or sandbox.BASE) / "logs"
        print(f"lab check: could not run {args.conf}: {error} (logs: {logs})", file=sys.stderr)
        return 2
    if args.html is not None:
        from . import page  # imports this module: only when asked

        probed_as = endpoint_for(site, plan).url
        args.html.write_text(page.render(args.conf, outcome, plan.changes, warnings, probed_as))
    if args.json:
        print(
            json.dumps(
                {
                    "rows": [r.as_json() for r in outcome.rows],
                    "matches": outcome.matches,
                    "changes": [asdict(c) for c in plan.changes],
                    "gunicorn": [f.as_json() for f in layers],
                    "warnings": [{"message": w, "fix": refusals.fix_for(w) or ""} for w in warnings],
                },
                indent=1,
            )
        )
    else:
        print(report(args.conf, outcome, plan, site, warnings, mode, time.monotonic() - started))
        if layers:
            print(gunicornconf.report(layers))
    return 1 if outcome.broken or any(f.verdict == BROKEN for f in layers) else 0
