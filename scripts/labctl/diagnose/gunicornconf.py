"""`lab check FILE --gunicorn GUNICORN_CONF`: the app server's settings judged with the nginx
config in front of it, for what neither file shows alone (each finding names both file:line).

The gunicorn side is read the way gunicorn reads it: a ``gunicorn.conf.py`` through gunicorn's
own file loading (``Application.load_config_from_module_name_or_filename``: the file runs, the
names that are settings are set through ``Config.set``, which validates them), or a file holding
the command line (a shell line, a Procfile, a Dockerfile CMD) through gunicorn's own argument
parser (``Config.parser``). A config that raises, a value gunicorn refuses, an unknown option,
or a top-level name one typo away from a setting (gunicorn ignores it silently) is one line and
exit 2.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import difflib
import io
import json
import os
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gunicorn.app.base import Application
from gunicorn.config import Config as GunicornConfig

from ..behaviours import BROKEN, NOTE, OK, Behaviour, Finding, Site
from ..behaviours.capacity import CAPACITY
from ..behaviours.core import HIGH, LOW, MEDIUM
from ..behaviours.websockets import WS_OPEN, WS_UPGRADE
from ..probe import MIB
from .config import Config, ConfigError, Directive, effective, proxy_headers, seconds, size_mib

NGINX_UPSTREAM_KEEPALIVE_TIMEOUT_S = 60.0  # the upstream module's default keepalive_timeout
NGINX_PROXY_READ_TIMEOUT_S = 60.0
NGINX_WORKER_CONNECTIONS = 512
NGINX_HEADER_BUFFER = "8k"  # large_client_header_buffers 4 8k
# Worker classes by what they do with an idle kept-alive connection and with a websocket.
SYNC = {"sync", "gunicorn.workers.sync.SyncWorker"}
THREADED = {"gthread", "gunicorn.workers.gthread.ThreadWorker"}
# gevent's pywsgi server (gunicorn's gevent_pywsgi and gevent-websocket's worker) never closes an
# idle connection, and bypasses gunicorn's HTTP parser: its limits, forwarded_allow_ips and
# secure_scheme_headers do not apply.
PYWSGI = {
    "gevent_wsgi",
    "gevent_pywsgi",
    "gunicorn.workers.ggevent.GeventPyWSGIWorker",
    "geventwebsocket.gunicorn.workers.GeventWebSocketWorker",
}

# What only the two configs together show (CAPACITY, the probes' own, is judged here too). Not in
# the behaviours' registry: their rules read a gunicorn config beside nginx's, which no Site holds.
KEEPALIVE_RACE = Behaviour(
    "keepalive-race",
    "nginx's upstream pool never reuses a connection the app server closed",
    "the app server closes idle keep-alive connections before nginx's upstream keepalive_timeout: now "
    "and then a POST gets 502; keep the app server's keep-alive above nginx's",
    MEDIUM,
    ("upstream-keepalive-race",),
)
WORKER_TIMEOUT = Behaviour(
    "worker-timeout",
    "a long request ends in nginx's timeout, not in a killed worker",
    "gunicorn's timeout kills a worker busy longer than it: every request on it gets 502",
    MEDIUM,
    ("event-loop-blocked",),
)
GRACEFUL_TIMEOUT = Behaviour(
    "graceful-timeout",
    "a reload or stop lets running requests finish",
    "gunicorn's graceful_timeout is shorter than requests nginx lets run: a deploy cuts them (502)",
    LOW,
)
FORWARDED_TRUST = Behaviour(
    "forwarded-trust",
    "gunicorn believes nginx's X-Forwarded-Proto",
    "the app builds http:// URLs: gunicorn ignores the forwarded scheme nginx sends",
    HIGH,
    ("scheme-lost",),
)
HEADER_LIMITS = Behaviour(
    "header-limits",
    "what nginx passes, gunicorn accepts",
    "a request line or header nginx passes is over gunicorn's limit: 400 from gunicorn, not in your format",
    LOW,
)
WS_WORKER = Behaviour(
    "ws-worker",
    "the worker class holds the websockets nginx upgrades",
    "a sync or gthread worker spends a worker or thread per websocket for its whole life",
    HIGH,
)


class GunicornConfigError(ConfigError):
    """The gunicorn config cannot be read as gunicorn reads it: one line, exit 2."""


@dataclass(frozen=True)
class Gunicorn:
    path: Path
    cfg: GunicornConfig
    lines: dict[str, tuple[str, int]]  # setting -> the user's file and line that set it

    def value(self, name: str) -> Any:
        return self.cfg.settings[name].get()

    def where(self, name: str) -> str:
        file, line = self.lines.get(name, (self.path.name, 0))
        return f"{file}:{line}" if line else f"{file}: (gunicorn's default)"

    @property
    def worker_class(self) -> str:
        """As gunicorn names it: ``sync`` with threads above 1 runs ``gthread``."""
        return str(self.cfg.worker_class_str)

    def where_worker_class(self) -> str:
        threaded = self.worker_class == "gthread" and "worker_class" not in self.lines
        return self.where("threads" if threaded else "worker_class")


class _Reader(Application):
    """gunicorn's Application, for its config loading only: no command line, no app."""

    def init(self, parser: argparse.ArgumentParser, opts: argparse.Namespace, args: list[str]) -> None:
        return None

    def load_config(self) -> None:
        return None  # gunicorn's reads sys.argv: the caller loads what it was given

    def load(self) -> None:
        raise NotImplementedError


def _quietly(what: str, call: Any, *args: Any) -> Any:
    """``call(*args)`` with gunicorn's own printing captured; what it said, as one line, on failure."""
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said), contextlib.redirect_stdout(said):
            return call(*args)
    except (Exception, SystemExit) as error:  # noqa: BLE001 (a user's config may raise anything)
        lines = [line.strip() for line in said.getvalue().splitlines() if line.strip()]
        detail = lines[-1] if lines else f"{type(error).__name__}: {error}"
        raise GunicornConfigError(f"{what}: {detail}") from None


def _assignment_lines(path: Path) -> dict[str, int]:
    lines: dict[str, int] = {}
    for node in ast.parse(path.read_text(), str(path)).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign | ast.AugAssign):
            targets = [node.target]
        if isinstance(node, ast.FunctionDef):
            lines[node.name] = node.lineno
        for target in targets:
            if isinstance(target, ast.Name):
                lines[target.id] = node.lineno
    return lines


def _load_python(path: Path, reader: _Reader) -> dict[str, tuple[str, int]]:
    names = _quietly(str(path), reader.load_config_from_module_name_or_filename, str(path))
    settings = reader.cfg.settings
    for name, value in names.items():
        if name in settings or name.startswith("_") or callable(value) or isinstance(value, type(os)):
            continue
        near = difflib.get_close_matches(name, settings, n=1, cutoff=0.6)
        if near:
            raise GunicornConfigError(
                f"{path}: {name!r} is not a gunicorn setting (gunicorn ignores it silently); {near[0]!r}?"
            )
    lines = _assignment_lines(path)
    return {name: (path.name, line) for name, line in lines.items() if name in settings}


def _is_gunicorn(word: str) -> bool:
    return Path(word).name == "gunicorn"  # also a path to it, and systemd's ExecStart=/.../gunicorn


def _words(text: str) -> list[str]:
    if text.split()[:1] and text.split()[0].upper() in {"CMD", "ENTRYPOINT"} and "[" in text:
        return [str(word) for word in json.loads(text[text.index("[") :])]  # a Dockerfile's exec form
    return shlex.split(text.partition(":")[2] if text.startswith("web:") else text, comments=True)


def _command_tokens(path: Path) -> list[tuple[str, int]]:
    """The words after ``gunicorn`` on the first command line running it (continued lines
    joined), each with its line."""
    command: list[tuple[str, int]] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        try:
            command.extend((word, number) for word in _words(raw.strip().removesuffix("\\")))
        except ValueError as error:  # unbalanced quotes, a CMD that is not JSON
            raise GunicornConfigError(f"{path}:{number}: {error}") from None
        if raw.rstrip().endswith("\\"):
            continue  # the command goes on
        if any(_is_gunicorn(word) for word, _ in command):
            break
        command = []
    start = next((i for i, (word, _) in enumerate(command) if _is_gunicorn(word)), None)
    if start is None:
        raise GunicornConfigError(f"{path}: neither a gunicorn.conf.py nor a line running gunicorn")
    return command[start + 1 :]


def _load_command(path: Path, reader: _Reader) -> dict[str, tuple[str, int]]:
    tokens = _command_tokens(path)
    parser = reader.cfg.parser()
    options, unknown = _quietly(str(path), parser.parse_known_args, [word for word, _ in tokens])
    if unknown:
        raise GunicornConfigError(f"{path}: gunicorn has no option {unknown[0]!r}")
    lines: dict[str, tuple[str, int]] = {}
    if options.config:  # -c FILE: read first, the command line's options then override it
        lines = _load_python((path.parent / options.config).resolve(), reader)
    for name, value in vars(options).items():
        if value is None or name == "args":
            continue
        _quietly(f"{path}: {name}", reader.cfg.set, name.lower(), value)
    for word, line in tokens:
        action = parser._option_string_actions.get(word.split("=", 1)[0])
        if action is not None:
            lines[action.dest] = (path.name, line)
    return lines


def load_gunicorn(path: Path) -> Gunicorn:
    if not path.is_file():
        raise GunicornConfigError(f"{path}: no such file")
    reader = _Reader(prog="gunicorn")
    if path.suffix == ".py":
        lines = _load_python(path.resolve(), reader)
    else:
        lines = _load_command(path.resolve(), reader)
    return Gunicorn(path, reader.cfg, lines)


@dataclass(frozen=True)
class Judged:
    """A judgement of both configs: nginx's side as a rule's Finding (the behaviour, the directive
    as written or "missing: ...", where, the fix), gunicorn's setting beside it, the verdict."""

    finding: Finding
    verdict: str  # broken, note or ok
    seen: str
    gunicorn: str  # file:line
    confirmed_by: tuple[Behaviour, ...] = ()  # the probes whose broken result confirms it
    confirmed: str = ""  # what a probe saw of it, with the user's settings in front of the lab's app

    @property
    def behaviour(self) -> Behaviour:
        return self.finding.behaviour

    @property
    def nginx(self) -> str:
        """file:line (directive), the directive as written or what nginx uses when unset."""
        file, line = self.finding.where
        return f"{Path(file).name}:{line or ''} ({self.finding.directive})"

    def as_json(self) -> dict[str, str]:
        return {
            "behaviour": self.behaviour.id,
            "verdict": self.verdict,
            "seen": self.seen,
            "nginx": self.nginx,
            "gunicorn": self.gunicorn,
            "fix": self.finding.fix,
            "confirmed": self.confirmed,
        }


def _judged(
    behaviour: Behaviour,
    verdict: str,
    seen: str,
    nginx: tuple[Directive | None, Directive, str],
    gunicorn: str,
    fix: str = "",
    confirmed_by: tuple[Behaviour, ...] = (),
) -> Judged:
    """``nginx``: the directive (None when unset), the block it belongs in, and what nginx uses then."""
    directive, block, unset = nginx
    at = directive or block
    written = " ".join([directive.name, *directive.args]) if directive else f"missing: {unset}"
    return Judged(Finding(behaviour, at.where, written, fix), verdict, seen, gunicorn, confirmed_by)


# The user's settings `lab check` runs the lab's app with (where they apply: how gunicorn serves,
# not what it serves), passed as gunicorn's own flags after the lab's config file.
APPLIED = (
    "worker_class",
    "workers",
    "threads",
    "worker_connections",
    "keepalive",
    "timeout",
    "graceful_timeout",
    "limit_request_line",
    "limit_request_fields",
    "limit_request_field_size",
)


def applied_flags(gunicorn: Gunicorn) -> list[str]:
    """The command-line flags that set the user's APPLIED settings (those the file sets)."""
    flags: list[str] = []
    for name in APPLIED:
        if name in gunicorn.lines or (name == "worker_class" and "threads" in gunicorn.lines):
            value = gunicorn.worker_class if name == "worker_class" else gunicorn.value(name)
            flags += [gunicorn.cfg.settings[name].cli[0], str(value)]
    return flags


def websocket_slots(gunicorn: Gunicorn) -> int | None:
    """How many websockets the user's workers hold at most when each holds a worker (sync) or a
    thread (gthread) for its whole life; None for an async worker."""
    workers = int(gunicorn.value("workers"))
    if gunicorn.worker_class in SYNC:
        return workers
    if gunicorn.worker_class in THREADED:
        return workers * int(gunicorn.value("threads"))
    return None


def confirm(found: list[Judged], broken: dict[Behaviour, str]) -> list[Judged]:
    """Each finding a probe confirmed (``broken``: a broken behaviour -> what it saw) says so."""
    confirmed = []
    for judged in found:
        seen = next((broken[b] for b in judged.confirmed_by if b in broken), "")
        confirmed.append(replace(judged, confirmed=seen) if seen and judged.verdict == BROKEN else judged)
    return confirmed


def _proxied(config: Config) -> list[Directive]:
    return [d.parent for d in config.root.walk() if d.name == "proxy_pass" and d.parent is not None]


def _upstream(config: Config, location: Directive) -> Directive | None:
    target = next(iter(location.children("proxy_pass")), None)
    if target is None or not target.args:
        return None
    name = target.args[0].split("://", 1)[-1].split("/", 1)[0]
    return config.upstreams().get(name)


def _keepalive(config: Config, gunicorn: Gunicorn, locations: list[Directive]) -> list[Judged]:
    pooled = [
        u for u in {_upstream(config, loc) for loc in locations} if u is not None and u.children("keepalive")
    ]
    if not pooled:
        return []
    upstream = pooled[0]
    timeout_directive = next(iter(upstream.children("keepalive_timeout")), None)
    nginx_s = seconds(timeout_directive.args[0]) if timeout_directive else NGINX_UPSTREAM_KEEPALIVE_TIMEOUT_S
    nginx = (timeout_directive, upstream.children("keepalive")[0], "keepalive_timeout 60s, the default")
    worker = gunicorn.worker_class
    if worker in SYNC or worker in PYWSGI:
        why = (
            "closes each connection after its response"
            if worker in SYNC
            else "never closes an idle connection"
        )
        seen = f"{worker} {why}: nginx's pool meets no close"
        return [_judged(KEEPALIVE_RACE, OK, seen, nginx, gunicorn.where_worker_class())]
    app_s = float(gunicorn.value("keepalive"))
    if app_s > nginx_s:
        seen = f"gunicorn keepalive {app_s:g}s above nginx's upstream keepalive_timeout {nginx_s:g}s"
        return [_judged(KEEPALIVE_RACE, OK, seen, nginx, gunicorn.where("keepalive"))]
    return [
        _judged(
            KEEPALIVE_RACE,
            BROKEN,
            f"gunicorn closes idle connections after keepalive {app_s:g}s, nginx reuses them for "
            f"{nginx_s:g}s: now and then a POST gets 502 (upstream-keepalive-race)",
            nginx,
            gunicorn.where("keepalive"),
            f"keepalive above {nginx_s:g} in gunicorn (e.g. {nginx_s + 15:g}), or nginx's "
            f"upstream keepalive_timeout below {app_s:g}s",
            confirmed_by=(KEEPALIVE_RACE,),  # check.between_layers: a POST held in nginx across the close
        )
    ]


def _timeouts(site: Site, gunicorn: Gunicorn, locations: list[Directive]) -> list[Judged]:
    found: list[Judged] = []
    websockets = site.websocket_locations()
    location = next((loc for loc in locations if loc not in websockets), locations[0])
    directive = next(iter(effective(location, "proxy_read_timeout")), None)
    read_s = seconds(directive.args[0]) if directive else NGINX_PROXY_READ_TIMEOUT_S
    nginx = (directive, location, "proxy_read_timeout 60s, the default")
    timeout = float(gunicorn.value("timeout"))
    worker = gunicorn.worker_class
    if worker in SYNC and timeout and timeout < read_s:
        found.append(
            _judged(
                WORKER_TIMEOUT,
                BROKEN,
                f"a request longer than gunicorn's timeout {timeout:g}s kills its {worker} worker (WORKER "
                f"TIMEOUT, 502) while nginx would wait {read_s:g}s: what should be a 504 is a 502 and a "
                "lost worker",
                nginx,
                gunicorn.where("timeout"),
                f"timeout above proxy_read_timeout ({read_s:g}s), or move long work out of the request",
            )
        )
    elif timeout and worker not in THREADED:  # gthread's heartbeat runs beside its request threads
        found.append(
            _judged(
                WORKER_TIMEOUT,
                NOTE,
                f"{worker}: timeout {timeout:g}s is a heartbeat deadline; code that holds the loop longer "
                "gets the worker killed with every request on it (event-loop-blocked)",
                nginx,
                gunicorn.where("timeout"),
            )
        )
    graceful = float(gunicorn.value("graceful_timeout"))
    if graceful < read_s:
        found.append(
            _judged(
                GRACEFUL_TIMEOUT,
                NOTE,
                f"a reload or stop cuts requests still running after graceful_timeout {graceful:g}s; "
                f"nginx lets them run {read_s:g}s: during a deploy they end in 502",
                nginx,
                gunicorn.where("graceful_timeout"),
                "graceful_timeout above your longest request",
            )
        )
    return found


def _capacity(site: Site, gunicorn: Gunicorn) -> list[Judged]:
    config = site.config
    events = next(iter(config.root.children("events")), None)
    connections = next(iter(events.children("worker_connections")), None) if events else None
    per_worker = int(connections.args[0]) if connections else NGINX_WORKER_CONNECTIONS
    processes = next(iter(config.root.children("worker_processes")), None)
    auto = processes is not None and processes.args[0] == "auto"
    nginx_workers = (os.cpu_count() or 1) if auto else int(processes.args[0]) if processes else 1
    nginx_sockets = nginx_workers * per_worker // 2
    worker = gunicorn.worker_class
    workers = int(gunicorn.value("workers"))
    per_app_worker = (
        1
        if worker in SYNC
        else int(gunicorn.value("threads"))
        if worker in THREADED
        else int(gunicorn.value("worker_connections"))
    )
    app_sockets = workers * per_app_worker
    seen = (
        f"nginx holds {nginx_sockets} proxied connections ({nginx_workers} workers x {per_worker} "
        f"worker_connections / 2: a websocket takes two); gunicorn {app_sockets} ({workers} workers x "
        f"{per_app_worker}); past the lower, new requests hang while the CPU idles (connection-capacity)"
    )
    nginx = (
        connections,
        events or config.root,
        f"worker_connections {NGINX_WORKER_CONNECTIONS}, the default, unless your nginx.conf sets it",
    )
    verdict = BROKEN if site.websocket_locations() and min(nginx_sockets, app_sockets) < 100 else NOTE
    where = (
        "worker_connections"
        if worker not in SYNC | THREADED
        else "threads"
        if worker in THREADED
        else "workers"
    )
    return [
        _judged(
            CAPACITY,
            verdict,
            seen,
            nginx,
            gunicorn.where(where),
            "size both above the websockets and streams you hold open",
        )
    ]


def _forwarded(config: Config, gunicorn: Gunicorn, locations: list[Directive]) -> list[Judged]:
    location = locations[0]
    proto = proxy_headers(location).get("x-forwarded-proto")
    worker = gunicorn.worker_class
    gunicorn_at = gunicorn.where("forwarded_allow_ips")
    nginx = (proto, location, "proxy_set_header X-Forwarded-Proto")
    if worker in PYWSGI:
        return [
            _judged(
                FORWARDED_TRUST,
                NOTE,
                f"{worker} bypasses gunicorn's HTTP layer: forwarded_allow_ips and secure_scheme_headers "
                "are ignored, the app sees http:// and nginx's address unless it applies ProxyFix (one "
                "trusted hop)",
                nginx,
                gunicorn_at,
                "werkzeug.middleware.proxy_fix.ProxyFix(app, x_for=1, x_proto=1, x_host=1) in the app",
            )
        ]
    secure = {name.lower() for name in gunicorn.value("secure_scheme_headers")}
    if proto is None or "x-forwarded-proto" not in secure:
        return [
            _judged(
                FORWARDED_TRUST,
                BROKEN,
                "nginx sends no X-Forwarded-Proto that gunicorn's secure_scheme_headers know: the app "
                "builds http:// URLs",
                nginx,
                gunicorn.where("secure_scheme_headers"),
                "proxy_set_header X-Forwarded-Proto $scheme; "
                "(gunicorn's default secure_scheme_headers read it)",
            )
        ]
    allowed = gunicorn.value("forwarded_allow_ips")
    target = next(iter(location.children("proxy_pass"))).args[0].split("://", 1)[-1]
    upstream = _upstream(config, location)
    servers = [s.args[0] for s in upstream.children("server")] if upstream else [target]
    local = all(s.startswith(("unix:", "127.", "localhost", "[::1]")) for s in servers)
    if "*" in allowed or local:
        seen = f"gunicorn trusts nginx's X-Forwarded-Proto (forwarded_allow_ips {','.join(allowed)})"
        return [_judged(FORWARDED_TRUST, OK, seen, nginx, gunicorn_at)]
    return [
        _judged(
            FORWARDED_TRUST,
            BROKEN,
            f"nginx reaches gunicorn at {', '.join(servers)}, from an address outside forwarded_allow_ips "
            f"({','.join(allowed)}): gunicorn ignores X-Forwarded-Proto and the app builds http:// URLs "
            "(scheme-lost)",
            nginx,
            gunicorn_at,
            "forwarded_allow_ips = nginx's address as gunicorn sees it",
        )
    ]


def _limits(gunicorn: Gunicorn, locations: list[Directive]) -> list[Judged]:
    directive = next(iter(effective(locations[0], "large_client_header_buffers")), None)
    buffer = directive.args[1] if directive and len(directive.args) > 1 else NGINX_HEADER_BUFFER
    size = round(size_mib(buffer) * MIB)
    nginx = (directive, locations[0], f"large_client_header_buffers 4 {NGINX_HEADER_BUFFER}, the default")
    if gunicorn.worker_class in PYWSGI:
        return []  # gevent's pywsgi has its own limits, not gunicorn's settings
    found = []
    for name, what in (("limit_request_line", "request line"), ("limit_request_field_size", "header field")):
        limit = int(gunicorn.value(name))
        if limit and limit < size - 2:
            found.append(
                _judged(
                    HEADER_LIMITS,
                    BROKEN,
                    f"a {what} of {limit + 1} to {size} bytes passes nginx and gunicorn answers 400 (its "
                    f"{name} {limit}), not in your error format",
                    nginx,
                    gunicorn.where(name),
                    f"{name} = {size} in gunicorn (or the same bound in nginx)",
                )
            )
    return found


def _websocket_worker(site: Site, gunicorn: Gunicorn) -> list[Judged]:
    websockets = site.websocket_locations()
    worker = gunicorn.worker_class
    if not websockets or not (worker in SYNC or worker in THREADED):
        return []
    holds = (
        f"a whole worker (of {gunicorn.value('workers')}), and timeout kills it"
        if worker in SYNC
        else f"a thread (of {gunicorn.value('threads')} per worker)"
    )
    return [
        _judged(
            WS_WORKER,
            BROKEN,
            f"location {' '.join(websockets[0].args)} upgrades websockets, but gunicorn's {worker} worker "
            f"cannot hold them: each takes {holds} for its whole life",
            (websockets[0], websockets[0], ""),
            gunicorn.where_worker_class(),
            "an async worker: geventwebsocket.gunicorn.workers.GeventWebSocketWorker, or eventlet "
            "(Flask-SocketIO)",
            # a websocket refused, or the slots held (`lab check` holds one more than the workers have)
            confirmed_by=(WS_UPGRADE, WS_OPEN, CAPACITY),
        )
    ]


def judge(site: Site, gunicorn: Gunicorn) -> list[Judged]:
    """The findings of the two configs together: the nginx config as `lab check` reads it and
    the gunicorn config as gunicorn does (load_gunicorn)."""
    locations = _proxied(site.config)
    return [
        *_keepalive(site.config, gunicorn, locations),
        *_timeouts(site, gunicorn, locations),
        *_capacity(site, gunicorn),
        *_forwarded(site.config, gunicorn, locations),
        *_limits(gunicorn, locations),
        *_websocket_worker(site, gunicorn),
    ]


def report(found: list[Judged]) -> str:
    lines = ["", "between nginx and gunicorn (--gunicorn):"]
    for judged in found:
        verdict = judged.verdict.upper() if judged.verdict == BROKEN else judged.verdict
        lines.append(f"  {judged.behaviour.id:<17} {verdict:<8} {judged.seen}")
        lines.append(f"  {'':<26} nginx {judged.nginx}; gunicorn {judged.gunicorn}")
        if judged.verdict == BROKEN:
            how = f"confirmed: {judged.confirmed}" if judged.confirmed else "read from the configs"
            lines.append(f"  {'':<26}   {how}")
        if judged.finding.fix and judged.verdict == BROKEN:
            lines.append(f"  {'':<26}   fix: {judged.finding.fix}")
    return "\n".join(lines)
