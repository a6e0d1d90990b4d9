"""The user's config made runnable here, changed only where it must be, each change recorded:
certificates (one the lab's CA signs for the config's own names), upstream targets (the lab's
app), paths nginx writes (pid, logs, temp files) and the paths it serves (an empty dir) under
.lab/check/, and the workers' user. In a private network namespace listen ports stay the user's;
otherwise they move to the lab's ports. Everything else is the user's, as written.

The config is rebuilt one directive per line, so a line of nginx's own error message maps back
to the user's file and line.
"""

from __future__ import annotations

import os
import pwd
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..nginx import ipv6_loopback, nginx_has_http3
from .config import (
    Config,
    Directive,
    line_of,
    listens,
    literal_names,
    parse_listen,
    probe_host,
    tls_listens,
    usable_name,
)

LOGS = {"access_log", "error_log"}
SERVED_PATHS = {"root", "alias"}
# TLS files the run can do without; each dropped, with why.
DROPPED_TLS = {
    "ssl_dhparam": "only DHE ciphers use it; the lab's certificate is ECDSA",
    "ssl_trusted_certificate": "for OCSP stapling and client certificates, which the probes do not use",
    "ssl_client_certificate": "client certificates are not probed",
    "ssl_stapling": "OCSP stapling needs the real certificate's responder",
    "ssl_stapling_verify": "OCSP stapling needs the real certificate's responder",
    "ssl_crl": "client certificates are not probed",
    "ssl_password_file": "the lab's key has no password",
    "ssl_session_ticket_key": "a key file of your machine; nginx's own random key serves the probes",
}
TEMP_DIRECTIVES = (
    "client_body_temp_path",
    "proxy_temp_path",
    "fastcgi_temp_path",
    "uwsgi_temp_path",
    "scgi_temp_path",
)
# Directives whose only argument is a file nginx writes, or serves from.
WRITTEN_PATHS = {*TEMP_DIRECTIVES, "proxy_cache_path"}
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
WILDCARD_ADDRESSES = {"", "*", "0.0.0.0", "::"}
# Where a proxy_pass URL's authority ends: at the URI's "/", or at a variable after a written
# address (127.0.0.1:8000$request_uri); one that starts with a variable ($backend) is all variable.
AUTHORITY = re.compile(r"(?P<authority>\$[^/]*|[^/$]*)(?P<rest>.*)", re.DOTALL)
LISTEN_PORT_VARIABLE = "lab_listen_port"  # $server_port as the config's own listen port


@dataclass(frozen=True)
class Change:
    where: tuple[str, int]  # the user's file and line
    was: str
    now: str
    why: str


@dataclass
class Plan:
    """What runs: the config text, where each of its lines came from, and what the app binds."""

    text: str = ""
    origin: dict[int, tuple[str, int]] = field(default_factory=dict)  # rendered line -> user's file:line
    changes: list[Change] = field(default_factory=list)
    app_binds: list[str] = field(default_factory=list)  # gunicorn --bind values
    ports: dict[int, int] = field(default_factory=dict)  # the config's listen port -> where it listens here
    names: list[str] = field(default_factory=list)  # what the certificate must hold


@dataclass(frozen=True)
class Where:
    """The run's own directories (all under .lab/check/) and its ports outside a namespace."""

    base: Path
    certs: Path
    in_namespace: bool
    https_port: int  # used only outside a namespace
    http_port: int
    app_port: int  # where the app listens for a target that cannot be kept

    @property
    def logs(self) -> Path:
        return self.base / "logs"

    @property
    def run(self) -> Path:
        return self.base / "run"

    @property
    def www(self) -> Path:
        return self.base / "www"

    @property
    def tmp(self) -> Path:
        return self.base / "tmp"


class Adapter:
    def __init__(self, config: Config, where: Where) -> None:
        self.config = config
        self.where = where
        self.plan = Plan()
        self._sockets: dict[str, str] = {}
        self._unix_listeners = 0
        self._listen_ports = {lst.port for s in config.servers() for lst in listens(s) if not lst.unix}
        # The account the run is, by uid: inside `unshare --map-root-user` that is root (the only
        # mapped uid), whatever $USER says.
        self.user = pwd.getpwuid(os.geteuid()).pw_name
        if not where.in_namespace:
            self.plan.ports = self._lab_ports()
        self.app_port = self._free_app_port()
        # Outside a namespace $server_port is the lab's port: the run maps it back to the config's.
        self.rewrites_server_port = not where.in_namespace and any(
            "$server_port" in arg for d in config.root.walk() for arg in d.args
        )

    def _lab_ports(self) -> dict[int, int]:
        """Each listen port of the config -> the lab's port it runs on outside a namespace: TLS
        ports from LAB_HTTPS_PORT up, plain ones from LAB_HTTP_PORT up."""
        ports: dict[int, int] = {}
        for server in self.config.servers():
            tls = {lst.port for lst in tls_listens(server)}
            for lst in listens(server):
                if lst.port not in ports and not lst.unix:
                    start = self.where.https_port if lst.port in tls else self.where.http_port
                    ports[lst.port] = next(p for p in range(start, start + 100) if p not in ports.values())
        return ports

    def _free_app_port(self) -> int:
        """Where the lab's app listens in place of a target the run cannot keep: LAB_APP_PORT, or
        the next port that neither the config listens on nor anything here holds (the lab's own
        stack may be running on LAB_APP_PORT when there is no namespace)."""
        taken = set(self._listen_ports) | set(self.plan.ports.values())
        for port in range(self.where.app_port, self.where.app_port + 100):
            if port not in taken and _bindable(port):
                return port
        raise RuntimeError(f"no free port for the app from {self.where.app_port}")

    def change(self, directive: Directive, now: str, why: str) -> None:
        self.plan.changes.append(Change(directive.where, line_of(directive), now, why))

    # Upstream targets -------------------------------------------------------------------------

    def _socket_for(self, path: str) -> str:
        if path not in self._sockets:
            self._sockets[path] = str(self.where.run / f"app-{len(self._sockets) + 1}.sock")
            self.plan.app_binds.append(f"unix:{self._sockets[path]}")
        return self._sockets[path]

    def _bind(self, address: str) -> None:
        if address not in self.plan.app_binds:
            self.plan.app_binds.append(address)

    def target(self, target: str) -> tuple[str, str | None]:
        """An upstream address (host:port, unix:/path, a name) as the run needs it, and why it
        changed (None: kept as written, the app listens there)."""
        if target.startswith("unix:"):
            return (
                f"unix:{self._socket_for(target[5:])}",
                "the lab's app listens on a socket under .lab/check/",
            )
        host, _, port = target.rpartition(":") if re.search(r":\d+$", target) else (target, "", "")
        keep = (
            self.where.in_namespace
            and host in LOOPBACK_HOSTS
            and port
            and int(port) not in self._listen_ports
        )
        if keep:
            bind_host = "[::1]" if host in ("::1", "[::1]") else "127.0.0.1"
            self._bind(f"{bind_host}:{port}")
            return target, None
        address = f"127.0.0.1:{self.app_port}"
        self._bind(address)
        return address, "the lab's app listens here in place of the config's app"

    def proxy_pass(self, directive: Directive) -> Directive:
        url = directive.args[0] if directive.args else ""
        scheme, _, rest = url.partition("://")
        if scheme not in ("http", "https"):
            raise ValueError(
                f"{directive.file}:{directive.line}: {line_of(directive)}: cannot follow this target"
            )
        authority, tail = self._split(rest)
        if authority in self.config.upstreams():
            new_url = f"http://{authority}{tail}"
            if scheme == "https":
                self.change(directive, f"proxy_pass {new_url};", "the lab's app speaks plain HTTP")
            return Directive(directive.name, [new_url, *directive.args[1:]], directive.file, directive.line)
        why: str | None
        if "$" in authority:
            new_target, why = (
                f"127.0.0.1:{self.app_port}",
                "a variable (a template filled in at deploy time?)",
            )
            self._bind(new_target)
        else:
            new_target, why = self.target(authority)
        if scheme == "https" and why is None:
            why = "the lab's app speaks plain HTTP"
        # A unix socket's URI follows a colon: http://unix:/run/app.sock:/uri
        joint = ":" if new_target.startswith("unix:") and tail.startswith("/") else ""
        new_url = f"http://{new_target}{joint}{tail}"
        rebuilt = Directive(directive.name, [new_url, *directive.args[1:]], directive.file, directive.line)
        if why:
            self.change(directive, line_of(rebuilt), why)
        return rebuilt

    @staticmethod
    def _split(rest: str) -> tuple[str, str]:
        """A proxy_pass URL after its scheme -> (the target, what follows it): ``app:8000/api/``
        -> ("app:8000", "/api/"), ``127.0.0.1:8000$request_uri`` -> ("127.0.0.1:8000",
        "$request_uri"), ``unix:/run/app.sock:/uri`` -> ("unix:/run/app.sock", ":/uri" less its colon)."""
        if rest.startswith("unix:"):
            path, colon, uri = rest[len("unix:") :].partition(":")
            return f"unix:{path}", uri if colon else ""
        found = AUTHORITY.fullmatch(rest)
        assert found is not None  # the pattern matches any text
        return found["authority"], found["rest"]

    def upstream_server(self, directive: Directive) -> Directive:
        target, *params = directive.args
        new_target, why = self.target(target)
        rebuilt = Directive(directive.name, [new_target, *params], directive.file, directive.line)
        if why:
            self.change(directive, line_of(rebuilt), why)
        return rebuilt

    # Listeners and TLS ------------------------------------------------------------------------

    def listen(self, directive: Directive) -> Directive | None:
        listen = parse_listen(directive)
        params = directive.args[1:]
        if listen.quic and not nginx_has_http3():
            self.change(directive, "(left out)", "this machine's nginx has no HTTP/3 module")
            return None
        if listen.unix:
            self._unix_listeners += 1
            path = self.where.run / f"listen-{self._unix_listeners}.sock"
            new = Directive(directive.name, [f"unix:{path}", *params], directive.file, directive.line)
            self.change(directive, line_of(new), "nothing is written outside .lab/ (the probes use TCP)")
            return new
        loopback = "[::1]" if listen.ipv6 else "127.0.0.1"
        if self.where.in_namespace:
            self.plan.ports[listen.port] = listen.port
            if listen.address in WILDCARD_ADDRESSES or listen.address in LOOPBACK_HOSTS:
                return directive
            new = Directive(
                directive.name, [f"{loopback}:{listen.port}", *params], directive.file, directive.line
            )
            self.change(directive, line_of(new), "only loopback exists in the private network namespace")
            return new
        if listen.ipv6 and not ipv6_loopback():
            self.change(directive, "(left out)", "this machine has no IPv6 loopback")
            return None
        local = self.plan.ports[listen.port]
        new = Directive(directive.name, [f"{loopback}:{local}", *params], directive.file, directive.line)
        self.change(
            directive,
            line_of(new),
            f"the lab's port for :{listen.port} (the probes still judge :{listen.port})",
        )
        return new

    def certificate(self, directive: Directive) -> Directive:
        name = "server.pem" if directive.name == "ssl_certificate" else "server-key.pem"
        new = Directive(directive.name, [str(self.where.certs / name)], directive.file, directive.line)
        self.change(directive, line_of(new), "a certificate the lab's CA signed for the config's names")
        return new

    # The tree ---------------------------------------------------------------------------------

    def directive(self, directive: Directive) -> Iterator[Directive]:
        """What ``directive`` becomes in the run: itself, a changed copy, or nothing."""
        name = directive.name
        if (
            self.rewrites_server_port
            and name != "listen"
            and any("$server_port" in a for a in directive.args)
        ):
            args = [a.replace("$server_port", f"${LISTEN_PORT_VARIABLE}") for a in directive.args]
            new = Directive(
                name, args, directive.file, directive.line, directive.block, directive.parent, directive.via
            )
            self.change(directive, line_of(new), "$server_port is the lab's port here: mapped back to yours")
            directive = new
        if name == "proxy_pass":
            yield self.proxy_pass(directive)
        elif name == "server" and directive.parent is not None and directive.parent.name == "upstream":
            yield self.upstream_server(directive)
        elif name == "listen":
            if (kept := self.listen(directive)) is not None:
                yield kept
        elif name == "server_name" and any(probe_host(n) != n for n in literal_names(directive.args)):
            aliases = [probe_host(n) for n in literal_names(directive.args) if probe_host(n) != n]
            new = Directive(name, [*directive.args, *aliases], directive.file, directive.line)
            self.change(directive, line_of(new), 'a client cannot send "_" in a Host (Werkzeug empties it)')
            yield new
        elif name in ("ssl_certificate", "ssl_certificate_key"):
            yield self.certificate(directive)
        elif name in DROPPED_TLS:
            self.change(directive, "(left out)", DROPPED_TLS[name])
        elif name == "user":
            new = Directive(name, [self.user], directive.file, directive.line)
            if os.geteuid() != 0:
                self.change(directive, "(left out)", "nginx runs as you here")
            else:
                self.change(directive, line_of(new), "the run's files are yours")
                yield new
        elif name in ("daemon", "master_process"):
            self.change(directive, "(left out)", "the lab runs nginx in the foreground and stops it")
        elif name in LOGS and directive.args and directive.args[0] not in ("off", "stderr"):
            path = self.where.logs / (Path(directive.args[0]).name or "log")
            new = Directive(name, [str(path), *directive.args[1:]], directive.file, directive.line)
            self.change(directive, line_of(new), "nothing is written outside .lab/")
            yield new
        elif name in WRITTEN_PATHS and directive.args:
            path = self.where.tmp / Path(directive.args[0]).name
            new = Directive(name, [str(path), *directive.args[1:]], directive.file, directive.line)
            self.change(directive, line_of(new), "nothing is written outside .lab/")
            yield new
        elif name in SERVED_PATHS and directive.args:
            new = Directive(name, [f"{self.where.www}/", *directive.args[1:]], directive.file, directive.line)
            self.change(directive, line_of(new), "an empty directory: nothing of this machine is served")
            yield new
        else:
            yield directive

    def server_tls(self, server: Directive) -> list[Directive]:
        """The certificate a TLS server needs when the config names none (nginx -t refuses it)."""
        if (
            not tls_listens(server)
            or server.children("ssl_certificate")
            or server.children("ssl_reject_handshake")
        ):
            return []
        if self.config.http.children("ssl_certificate"):
            return []
        self.plan.changes.append(
            Change(server.where, "(no ssl_certificate)", f"ssl_certificate {self.where.certs}/server.pem;",
                   "a TLS server needs one: the lab's CA signed it for the config's names")
        )  # fmt: skip
        return [
            Directive("ssl_certificate", [str(self.where.certs / "server.pem")], server.file, server.line),
            Directive(
                "ssl_certificate_key", [str(self.where.certs / "server-key.pem")], server.file, server.line
            ),
        ]


class Builder:
    """Writes directives one per line and remembers each line's origin."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.lines: list[str] = []

    def emit(self, text: str, origin: Directive | None, depth: int) -> None:
        self.lines.append("    " * depth + text)
        if origin is not None and origin.line:
            self.plan.origin[len(self.lines)] = origin.where

    def block(self, adapter: Adapter, directives: list[Directive], depth: int) -> None:
        for directive in directives:
            for kept in adapter.directive(directive):
                if directive.block is None:
                    self.emit(line_of(kept), directive, depth)
                    continue
                self.emit(line_of(kept).removesuffix(";") + " {", directive, depth)
                if directive.name == "server" and (
                    directive.parent is None or directive.parent.name != "upstream"
                ):
                    for extra in adapter.server_tls(directive):
                        self.emit(line_of(extra), directive, depth + 1)
                self.block(adapter, directive.block, depth + 1)
                self.emit("}", None, depth)


def _defaults(where: Where, config: Config, adapter: Adapter) -> list[str]:
    """What the run adds at http level: nothing written outside .lab/ (nginx's compiled-in log
    and temp paths, unless the config sets them), and, on the lab's ports, $server_port mapped
    back to the config's own listen port."""
    http = config.http
    lines = []
    if adapter.rewrites_server_port:
        pairs = " ".join(f"{local} {port};" for port, local in adapter.plan.ports.items())
        lines.append(f"map $server_port ${LISTEN_PORT_VARIABLE} {{ {pairs} default $server_port; }}")
    if not http.children("access_log"):
        lines.append(f"access_log {where.logs}/access.log;")
    for name in TEMP_DIRECTIVES:
        if not http.children(name):
            lines.append(f"{name} {where.tmp}/{name.removesuffix('_temp_path')};")
    return lines


def adapt(config: Config, where: Where) -> Plan:
    adapter = Adapter(config, where)
    builder = Builder(adapter.plan)
    top = config.root.block or []
    builder.emit(f"pid {where.run}/nginx.pid;", None, 0)
    if os.geteuid() == 0 and not config.root.children("user"):
        # As root nginx's workers become "nobody", which a user namespace does not map.
        builder.emit(f"user {adapter.user};", None, 0)
    if config.wrapped:
        builder.emit("events {}", None, 0)
        builder.emit("http {", None, 0)
        mime = Path("/etc/nginx/mime.types")
        if mime.is_file():
            builder.emit(f"include {mime};", None, 1)
        builder.emit("default_type application/octet-stream;", None, 1)
        for line in _defaults(where, config, adapter):
            builder.emit(line, None, 1)
        builder.block(adapter, top, 1)
        builder.emit("}", None, 0)
    else:
        for directive in top:
            if directive.name == "pid":
                adapter.change(directive, f"pid {where.run}/nginx.pid;", "nothing is written outside .lab/")
                continue
            if directive.name == "http":
                builder.emit("http {", directive, 0)
                for line in _defaults(where, config, adapter):
                    builder.emit(line, None, 1)
                builder.block(adapter, directive.block or [], 1)
                builder.emit("}", None, 0)
            else:
                builder.block(adapter, [directive], 0)
    adapter.plan.text = "\n".join(builder.lines) + "\n"
    adapter.plan.names = certificate_names(config)
    if not adapter.plan.app_binds:
        adapter.plan.app_binds.append(f"127.0.0.1:{adapter.app_port}")
    return adapter.plan


def certificate_names(config: Config) -> list[str]:
    names = {"localhost"}
    for server in config.servers():
        if (name := usable_name(server)) is not None:
            names.add(probe_host(name))
    return sorted(names)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True
