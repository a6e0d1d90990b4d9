"""`scripts/lab doctor`: probe any deployment (LAB_URL, LAB_CA, LAB_HTTP_URL) and print a
checklist where each failure names its likely cause.

The probes are labctl.behaviours'. Against the lab's app (this checkout's stack, or the lab's
app behind your own nginx) every one runs; against any other app the probes that need a lab
route report "not probed", never a failure, and `--redirect-path`, `--ws-url`, `--upload-url`,
`--stream-url` point them at your app's own routes. Where the lab's app answers, the scenario catalogue's
checks run too and a symptom they see names its scenario. Hints speak of nginx and the app;
the lab's own knobs are added only for this checkout's stack.

Standard library only: it runs before .venv exists.
"""

from __future__ import annotations

import argparse
import http.client
import ssl
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import labsettings

from . import behaviours, catalogue, endpoints, probe, stack, venv
from .behaviours import BROKEN, NOT_PROBED, NOTE, OK, Result
from .behaviours.capacity import BUDGET_S, MAX_SOCKETS
from .behaviours.forwarded import CLIENT_ADDR
from .catalogue import Scenario
from .endpoints import Endpoint

MARKS = {OK: "ok  ", BROKEN: "FAIL", NOTE: "note", NOT_PROBED: "skip"}


@dataclass(frozen=True)
class Match:
    """A scenario whose symptom the deployment shows."""

    scenario: Scenario
    seen: str


@dataclass(frozen=True)
class Diagnosis:
    endpoint: Endpoint
    results: list[Result]
    matches: list[Match]

    @property
    def own_stack(self) -> bool:
        """This checkout's stack: the lab's knobs may be named."""
        return self.endpoint.is_local_lab

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.verdict == BROKEN]

    def hints(self) -> set[str]:
        """Every likely cause named: broken behaviours' and matched scenarios'."""
        return {r.hint for r in self.failed} | {m.scenario.hint for m in self.matches}


def _path(value: str | None) -> str | None:
    """A route option given as a path or as a whole URL (wss://host/ws): its path and query."""
    if not value:
        return None
    parts = urlsplit(value)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "") if parts.scheme else value


def options_from(args: argparse.Namespace, endpoint: Endpoint) -> behaviours.Options:
    own = [args.redirect_path, args.ws_url, args.upload_url, args.stream_url]
    routes = behaviours.Routes.for_app(*(_path(v) for v in own)) if any(own) else behaviours.Routes()
    return behaviours.Options(
        routes=replace(routes, socketio=_path(args.socketio_path)),
        idle_s=args.idle,
        hold_websockets=args.hold_websockets,
        declared_limit_mib=args.max_body_mib,
        lab_contract=endpoint.is_local_lab,
    )


def lab_app_declared(endpoint: Endpoint, name: str) -> float | None:
    """A limit the lab's app declares (/debug/settings: ``max_upload_mb``, ``max_header_kib``),
    when it is the lab's app."""
    try:
        reply = probe.request(endpoint, "GET", "/debug/settings")
    except OSError:
        return None
    settings = reply.json()
    limit = settings.get(name) if isinstance(settings, dict) else None
    return float(limit) if reply.status == 200 and isinstance(limit, int | float) else None


def scenario_matches(endpoint: Endpoint) -> list[Match]:
    """The catalogue's symptoms this deployment shows (the checks the doctor names)."""
    candidates = [s for s in catalogue.scenarios() if s.doctor and not s.compose_only]
    return [Match(scenario, seen.seen) for scenario, seen in catalogue.matching(candidates, endpoint)]


def http3_unjudged(endpoint: Endpoint) -> str:
    """Why this checkout's own stack cannot speak HTTP/3 ('' when it can, or for any other)."""
    if endpoint.is_local_lab and stack.nginx_has_http3() is False:
        return "this stack's nginx is built without --with-http_v3_module (nginx -V): no QUIC to probe"
    return ""


def diagnose(endpoint: Endpoint, options: behaviours.Options) -> Diagnosis:
    if options.declared_limit_mib is None and options.routes.debug:
        options = replace(options, declared_limit_mib=lab_app_declared(endpoint, "max_upload_mb"))
    if options.declared_header_kib is None and options.routes.debug:
        header_kib = lab_app_declared(endpoint, "max_header_kib")
        options = replace(options, declared_header_kib=int(header_kib) if header_kib else None)
    if not options.http3_unjudged:
        options = replace(options, http3_unjudged=http3_unjudged(endpoint))
    results = behaviours.run(endpoint, options)
    lab_app = any(r.behaviour is CLIENT_ADDR and r.verdict != NOT_PROBED for r in results)
    matches = scenario_matches(endpoint) if lab_app else []
    return Diagnosis(endpoint, results, matches)


def run(endpoint: Endpoint) -> Diagnosis:
    """The doctor with its defaults (the lab's routes), as the scenario suite runs it."""
    return diagnose(endpoint, behaviours.Options(lab_contract=endpoint.is_local_lab))


def _lines(diagnosis: Diagnosis) -> Iterable[str]:
    endpoint = diagnosis.endpoint
    yield f"lab doctor: {endpoint.url} (CA: {endpoint.ca or 'system trust store'})"
    for r in diagnosis.results:
        yield f"  [{MARKS[r.verdict]}] {r.title}: {r.seen}"
        if r.verdict == BROKEN:
            yield f"         likely cause: {r.hint}"
    for match in diagnosis.matches:
        yield f"  this is scenario {match.scenario.name}: {match.seen}"
        yield f"         likely cause: {match.scenario.hint}"
        if diagnosis.own_stack and match.scenario.lab_hint:
            readme = f"nginx/scenarios/{match.scenario.name}/README.md"
            yield f"         in the lab: {match.scenario.lab_hint} ({readme})"
    counts = {verdict: sum(r.verdict == verdict for r in diagnosis.results) for verdict in MARKS}
    yield (
        f"{len(diagnosis.results)} checks: {counts[OK]} ok, {counts[BROKEN]} failed, {counts[NOTE]} notes, "
        f"{counts[NOT_PROBED]} not probed"
    )


def report(diagnosis: Diagnosis) -> str:
    return "\n".join(_lines(diagnosis))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = labsettings
    parser.add_argument(
        "--redirect-path",
        default=env.DOCTOR_REDIRECT_PATH.value() or None,
        help="a route of your app that answers with an absolute redirect (LAB_DOCTOR_REDIRECT_PATH)",
    )
    parser.add_argument(
        "--ws-url",
        default=env.DOCTOR_WS_URL.value() or None,
        help="a websocket route of your app (LAB_DOCTOR_WS_URL)",
    )
    parser.add_argument(
        "--upload-url",
        default=env.DOCTOR_UPLOAD_URL.value() or None,
        help="a route of your app that takes a PUT body (LAB_DOCTOR_UPLOAD_URL)",
    )
    parser.add_argument(
        "--socketio-path",
        default=env.DOCTOR_SOCKETIO_PATH.value(),
        help="where your app answers Socket.IO (LAB_DOCTOR_SOCKETIO_PATH; '' for none)",
    )
    parser.add_argument(
        "--stream-url",
        default=env.DOCTOR_STREAM_URL.value() or None,
        help="a Server-Sent Events route of your app: are its events held? (LAB_DOCTOR_STREAM_URL)",
    )
    parser.add_argument(
        "--idle",
        type=float,
        default=env.DOCTOR_IDLE_S.value(),
        metavar="SECONDS",
        help="hold a websocket (and a quiet Socket.IO client) idle this long, e.g. 65 (past nginx's 60s "
        "default) (LAB_DOCTOR_IDLE_S)",
    )
    parser.add_argument(
        "--hold-websockets",
        type=int,
        default=0,
        metavar="N",
        help=f"open up to N websockets (at most {MAX_SOCKETS}, {BUDGET_S:g} s), then a request: does it hang",
    )
    parser.add_argument(
        "--max-body-mib", type=float, default=None, help="the upload limit you declared: check that it holds"
    )


def main(args: argparse.Namespace) -> int:
    # Standard library only, but HTTP/3's probe needs aioquic: from .venv when there is one.
    venv.reexec_in_venv(args.lab_argv, create=False)
    try:
        endpoint = endpoints.from_env()
        diagnosis = diagnose(endpoint, options_from(args, endpoint))
    except SystemExit as error:
        print(error, file=sys.stderr)
        return 2
    except (OSError, http.client.HTTPException, ssl.SSLError) as error:
        url = labsettings.URL.value() or "the local stack"
        print(
            f"lab doctor: cannot reach {url}: {error} (start a stack, or set LAB_URL / LAB_CA)",
            file=sys.stderr,
        )
        return 2
    print(report(diagnosis))
    return 1 if diagnosis.failed else 0
