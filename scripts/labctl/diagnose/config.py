"""A user's nginx config as nginx reads it, parsed with crossplane (NGINX's own parser), with
every directive's origin (file and line) kept, and nginx's rules for what applies where: which
server takes a request (listen port, server_name, default_server), which location (exact,
^~ and plain prefixes, regexes in order, nested), what a location inherits (an array directive
such as proxy_set_header only when the location sets none of its own).

Includes are resolved next to the user's file, then in the system's nginx conf dir (Debian's
proxy_params, mime.types); a directive from a system file is reported at the user's include line.
"""

from __future__ import annotations

import functools
import glob
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_CONF_DIR = Path("/etc/nginx")
# Where Certbot keeps what it writes for a site: present only on a machine that got certificates.
CERTBOT_DIR = "/etc/letsencrypt/"


class ConfigError(ValueError):
    """The config cannot be read: the message names the file and line, as nginx does."""


@dataclass(eq=False)
class Directive:
    name: str
    args: list[str]
    file: str
    line: int
    block: list[Directive] | None = None
    parent: Directive | None = field(default=None, repr=False)
    # The include directive of the user's own file that brought this one in from a system file.
    via: Directive | None = field(default=None, repr=False)

    @property
    def where(self) -> tuple[str, int]:
        """The user's file and line to point at: this one, or the include that brought it in."""
        origin = self.via or self
        return origin.file, origin.line

    def text(self) -> str:
        return " ".join([self.name, *self.args])

    def children(self, name: str | None = None) -> list[Directive]:
        return [d for d in self.block or [] if name is None or d.name == name]

    def walk(self) -> Iterator[Directive]:
        for child in self.block or []:
            yield child
            yield from child.walk()

    def enclosing(self, name: str) -> Directive | None:
        node = self.parent
        while node is not None and node.name != name:
            node = node.parent
        return node


@dataclass(frozen=True)
class Listen:
    directive: Directive
    address: str  # "" for every address; an IPv6 one without brackets; a unix socket's path
    port: int  # 0 for a unix socket
    ssl: bool
    default_server: bool
    quic: bool
    unix: bool = False

    @property
    def ipv6(self) -> bool:
        return ":" in self.address


@dataclass
class Config:
    path: Path  # the user's file
    root: Directive  # the main context (a synthetic block around the top-level directives)
    wrapped: bool  # the file is server blocks (no http{}): it is run inside an http{} of ours

    @property
    def http(self) -> Directive:
        found = self.root.children("http")
        return found[0] if found else self.root

    def servers(self) -> list[Directive]:
        return self.http.children("server")

    def upstreams(self) -> dict[str, Directive]:
        return {d.args[0]: d for d in self.http.children("upstream") if d.args}


def parse_listen(directive: Directive) -> Listen:
    """One listen directive as nginx reads it: ``80``, ``127.0.0.1:8443``, ``[::]:443``, ``[::]``,
    ``localhost``, ``unix:/run/x.sock``, then its parameters."""
    target, *params = directive.args or ["80"]
    flags = {
        "ssl": "ssl" in params,
        "default_server": "default_server" in params or "default" in params,
        "quic": "quic" in params,
    }
    if target.startswith("unix:"):
        return Listen(directive, target[5:], 0, unix=True, **flags)
    if target.startswith("["):  # IPv6, with or without a port
        address, _, rest = target[1:].partition("]")
        port = rest.lstrip(":")
        return Listen(directive, address, int(port) if port.isdigit() else 80, **flags)
    if target.isdigit():
        return Listen(directive, "", int(target), **flags)
    address, _, port = target.rpartition(":")
    if port.isdigit() and address:
        return Listen(directive, address, int(port), **flags)
    return Listen(directive, target, 80, **flags)  # "listen localhost;": the default port


def listens(server: Directive) -> list[Listen]:
    found = [parse_listen(d) for d in server.children("listen")]
    return found or [Listen(server, "", 80, False, False, False)]


def tls_listens(server: Directive) -> list[Listen]:
    """Its TLS listeners: `listen ... ssl`, or every one under the old `ssl on;`."""
    old_style = any(d.args == ["on"] for d in server.children("ssl"))
    return [lst for lst in listens(server) if (lst.ssl or old_style) and not lst.unix]


def plain_listens(server: Directive) -> list[Listen]:
    tls = {id(lst.directive) for lst in tls_listens(server)}
    return [lst for lst in listens(server) if id(lst.directive) not in tls and not lst.unix]


def server_names(server: Directive) -> list[str]:
    return [name for d in server.children("server_name") for name in d.args]


def literal_names(names: list[str]) -> list[str]:
    """The server_name arguments that are names as written: not "_", a regex, a wildcard
    (``*.example.com``, ``.example.com``, ``www.example.*``) or a variable."""
    return [
        n for n in names if n and n != "_" and not n.startswith(("~", ".")) and "*" not in n and "$" not in n
    ]


def usable_name(server: Directive) -> str | None:
    """A name a client can send and a certificate can hold: the first literal one, else one a
    wildcard matches (``*.example.com`` -> ``www.example.com``); None for "_" or regexes only."""
    names = server_names(server)
    if literal := [n for n in literal_names(names) if _hostname(n)]:
        return literal[0]
    for name in names:
        if name and not name.startswith("~") and "$" not in name and name != "_":
            # As nginx matches them: `*.example.com` only below example.com, `.example.com` both,
            # `www.example.*` any last label.
            if name.startswith("*."):
                return "www." + name[2:]
            return name[:-1] + "com" if name.endswith(".*") else name.lstrip(".")
    return None


def _hostname(name: str) -> bool:
    """A name a client can resolve and send: no empty label (`aiqa..com`, a typo nginx accepts),
    none over 63 characters."""
    return all(0 < len(label) <= 63 for label in name.rstrip(".").split("."))


def probe_host(name: str) -> str:
    """The Host the probes send for a server_name: the name itself, or, for a placeholder a
    client cannot send as it is (``your_domain``: Werkzeug refuses "_" in a Host and the app sees
    an empty one), the same name with "-" (lab check adds it to that server_name)."""
    return re.sub(r"[^A-Za-z0-9.-]", "-", name)


@functools.cache
def pcre(pattern: str, ignore_case: bool = False) -> re.Pattern[str] | None:
    """An nginx (PCRE) regex as Python's: named groups ``(?<name>...)`` become ``(?P<name>...)``;
    one Python cannot read matches nothing here rather than stopping the check."""
    try:
        return re.compile(re.sub(r"\(\?<(?=[A-Za-z_])", "(?P<", pattern), re.IGNORECASE if ignore_case else 0)
    except re.error:
        return None


def _name_rank(pattern: str, host: str) -> tuple[int, int] | None:
    """How a server_name matches ``host``, ranked as nginx ranks them: an exact name first, then
    the longest leading wildcard (``*.example.com``, ``.example.com``), the longest trailing
    one (``www.example.*``), then regexes in the order written. None: no match."""
    host = host.lower()
    if pattern.startswith("~"):
        compiled = pcre(pattern[1:], ignore_case=True)
        return (3, 0) if compiled is not None and compiled.search(host) else None
    name = pattern.lower()
    if host in (name, probe_host(name)):
        return (0, 0)
    if name.startswith("*.") and host.endswith(name[1:]):
        return (1, -len(name))
    if name.startswith(".") and (host == name[1:] or host.endswith(name)):
        return (1, -len(name))
    if name.endswith(".*") and host.startswith(name[:-1]):
        return (2, -len(name))
    return None


def server_for(config: Config, port: int, host: str) -> Directive | None:
    """The server nginx picks for a request to ``port`` with Host ``host``: the best-ranked
    name among the servers listening there (the first one written, for a tie), else that
    port's default server (the first one, unless one says default_server)."""
    ranked = []
    for order, server in enumerate(config.servers()):
        if any(lst.port == port for lst in listens(server)):
            ranks = [r for name in server_names(server) if (r := _name_rank(name, host)) is not None]
            if ranks:
                ranked.append((min(ranks), order, server))
    if ranked:
        return min(ranked, key=lambda item: (item[0], item[1]))[2]
    return default_server(config, port)


def default_server(config: Config, port: int) -> Directive | None:
    on_port = [s for s in config.servers() if any(lst.port == port for lst in listens(s))]
    for server in on_port:
        if any(lst.port == port and lst.default_server for lst in listens(server)):
            return server
    return on_port[0] if on_port else None


def _locations(block: Directive) -> list[Directive]:
    return block.children("location")


def location_pattern(location: Directive) -> tuple[str, str]:
    """(modifier, pattern): modifier is "=", "^~", "~", "~*", "@" or "" for a plain prefix."""
    args = location.args
    if len(args) >= 2:
        return args[0], args[1]
    arg = args[0] if args else ""
    for modifier in ("=", "^~", "~*", "~", "@"):
        if arg.startswith(modifier) and len(arg) > len(modifier):
            return modifier, arg[len(modifier) :]
    return "", arg


def _find_location(block: Directive, path: str) -> tuple[Directive | None, bool]:
    """nginx's ngx_http_core_find_location at one level: (the location, settled). An exact match
    settles it; else the longest prefix, whose nested locations are searched first (a nested
    exact or regex match settles it); then, unless that prefix is ``^~``, this level's regexes in
    the order written (the first that matches wins, with its own nested locations searched)."""
    prefixes, regexes = [], []
    for location in _locations(block):
        modifier, pattern = location_pattern(location)
        if modifier == "=" and path == pattern:
            return location, True
        if modifier in ("", "^~") and path.startswith(pattern):
            prefixes.append((len(pattern), modifier, location))
        elif modifier in ("~", "~*"):
            regexes.append((modifier, pattern, location))
    best = max(prefixes, key=lambda item: item[0], default=None)
    chosen = best[2] if best is not None else None
    if best is not None:
        nested, settled = _find_location(best[2], path)
        if settled:
            return nested, True
        chosen = nested or chosen
        if best[1] == "^~":
            return chosen, False
    for modifier, pattern, location in regexes:
        compiled = pcre(pattern, ignore_case=modifier == "~*")
        if compiled is not None and compiled.search(path):
            nested, _ = _find_location(location, path)
            return nested or location, True
    return chosen, False


def location_for(block: Directive, uri: str) -> Directive | None:
    """The location nginx picks for ``uri`` in a server (or location) block."""
    return _find_location(block, uri.split("?", 1)[0])[0]


def named_location(server: Directive, name: str) -> Directive | None:
    return next((loc for loc in _locations(server) if location_pattern(loc) == ("@", name.lstrip("@"))), None)


def proxying_location(server: Directive, uri: str) -> Directive | None:
    """The location that proxies ``uri`` to the app: the one nginx picks, or the named location
    its try_files falls back to (``try_files $uri @app``); None when ``uri`` is not proxied."""
    location = location_for(server, uri)
    if location is None:
        return None
    if location.children("proxy_pass"):
        return location
    for try_files in location.children("try_files"):
        fallback = try_files.args[-1] if try_files.args else ""
        named = named_location(server, fallback) if fallback.startswith("@") else None
        if named is not None and named.children("proxy_pass"):
            return named
    return None


def upstream_path(location: Directive, path: str) -> str | None:
    """The path nginx sends upstream for ``path`` in ``location`` when its proxy_pass carries a
    URI (``proxy_pass http://app/;``): that URI replaces the part of the path the location's
    prefix matched (nginx's proxy_pass docs). None where the path goes upstream as requested
    (no URI, or one with variables) or where the location is no prefix or exact match."""
    passes = location.children("proxy_pass")
    url = passes[0].args[0] if passes and passes[0].args else ""
    rest = url.partition("://")[2]
    if "$" in url or not rest:
        return None
    # A unix socket's URI follows a colon: http://unix:/run/app.sock:/uri
    uri = (
        rest[len("unix:") :].partition(":")[2]
        if rest.startswith("unix:")
        else rest[len(rest.split("/")[0]) :]
    )
    modifier, prefix = location_pattern(location)
    if not uri or modifier not in ("", "^~", "=") or not path.startswith(prefix):
        return None
    return uri + path[len(prefix) :]


def effective(node: Directive, name: str) -> list[Directive]:
    """The ``name`` directives in force at ``node`` (a location, server or http block): its own,
    else the nearest enclosing level's (nginx inherits a directive only where it is not set)."""
    level: Directive | None = node
    while level is not None:
        own = level.children(name)
        if own:
            return own
        level = level.parent
    return []


def proxy_headers(location: Directive) -> dict[str, Directive]:
    """Header name (lower-case) -> the proxy_set_header that sets it, as nginx applies them."""
    return {d.args[0].lower(): d for d in effective(location, "proxy_set_header") if d.args}


def line_of(directive: Directive) -> str:
    """One directive as nginx reads it, quoted where its arguments need it (crossplane's own rules)."""
    import crossplane  # .venv only: the doctor imports this model (the rules' types) without it

    built: str = crossplane.build([{"directive": directive.name, "args": directive.args, "line": 1}])
    return built.rstrip()


def _crossplane(path: Path) -> list[dict[str, object]]:
    import crossplane  # .venv only: the doctor imports this model (the rules' types) without it

    payload = crossplane.parse(str(path), single=True, check_ctx=False, check_args=False, comments=False)
    for entry in payload["config"]:
        for error in entry["errors"]:
            raise ConfigError(f"{entry['file']}:{error['line']}: {error['error']}")
    return payload["config"][0]["parsed"]


def _resolve_include(pattern: str, user_dir: Path) -> list[str]:
    """The files an include names: next to the user's file first, then in the system's conf
    dir. An absolute pattern under the conf dir (a copied nginx.conf's /etc/nginx/sites-enabled/*)
    is looked for beside the user's file first too: this machine's own sites are not theirs."""
    path = Path(pattern)
    if not path.is_absolute():
        candidates = [user_dir / pattern, SYSTEM_CONF_DIR / pattern]
    elif path.is_relative_to(SYSTEM_CONF_DIR):
        candidates = [user_dir / path.relative_to(SYSTEM_CONF_DIR), path]
    else:
        candidates = [path]
    for candidate in candidates:
        found = sorted(glob.glob(str(candidate)))
        if found:
            return found
    return []


def _build(
    items: list[dict[str, object]],
    file: Path,
    parent: Directive,
    via: Directive | None,
    config: Config,
    depth: int = 0,
) -> list[Directive]:
    if depth > 16:
        raise ConfigError(f"{file}: includes nested more than 16 deep (a cycle?)")
    out: list[Directive] = []
    for item in items:
        args = item.get("args", [])
        directive = Directive(
            str(item["directive"]),
            [str(a) for a in args] if isinstance(args, list) else [],
            str(file),
            int(str(item["line"])),
            parent=parent,
            via=via,
        )
        if directive.name == "include" and directive.args:
            pattern = directive.args[0]
            files = _resolve_include(pattern, config.path.parent)
            user_own = all(Path(f).resolve().is_relative_to(config.path.parent) for f in files)
            if not files:
                if pattern.startswith(CERTBOT_DIR) or "*" in pattern:
                    continue  # Certbot's own file, or a glob that matches nothing: nginx skips both
                raise ConfigError(
                    f"{file}:{directive.line}: include {pattern}: not found next to {config.path.name} "
                    f"({config.path.parent}) nor in {SYSTEM_CONF_DIR}"
                )
            for included in files:
                child_via = via or (None if user_own else directive)
                out.extend(
                    _build(_crossplane(Path(included)), Path(included), parent, child_via, config, depth + 1)
                )
            continue
        block = item.get("block")
        if isinstance(block, list):
            directive.block = _build(block, file, directive, via, config, depth)
        out.append(directive)
    return out


def load(path: Path) -> Config:
    """Parse ``path`` (a whole nginx.conf or a file of server blocks) and everything it includes."""
    import crossplane  # .venv only: the doctor imports this model (the rules' types) without it

    path = path.resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        parsed = _crossplane(path)
    except crossplane.errors.NgxParserBaseException as error:
        raise ConfigError(f"{error.filename}:{error.lineno}: {error.strerror}") from error
    root = Directive("main", [], str(path), 0, block=[])
    config = Config(path, root, wrapped=False)
    try:
        root.block = _build(parsed, path, root, None, config)
    except crossplane.errors.NgxParserBaseException as error:
        raise ConfigError(f"{error.filename}:{error.lineno}: {error.strerror}") from error
    config.wrapped = not root.children("http")
    if not config.servers():
        raise ConfigError(f"{path}: no server block: nothing to run (is it an nginx config of sites?)")
    if not any(d.name in ("proxy_pass", "uwsgi_pass", "fastcgi_pass") for d in root.walk()):
        raise ConfigError(f"{path}: nothing here proxies to an app (no proxy_pass): nothing to check")
    return config


def seconds(value: str) -> float:
    """An nginx time (60s, 1h, 1h30m, 500ms, a bare number of seconds) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    total = 0.0
    for number, unit in re.findall(r"(\d+)(ms|s|m|h|d|w)?", value):
        total += int(number) * units[unit or "s"]
    return total


def size_mib(value: str) -> float:
    """An nginx size (1m, 10M, 4G, 512k, bytes) in MiB."""
    match = re.fullmatch(r"(\d+)([kKmMgG]?)", value.strip())
    if match is None:
        return 0
    number, unit = int(match.group(1)), match.group(2).lower()
    return number * {"": 1 / (1024 * 1024), "k": 1 / 1024, "m": 1, "g": 1024}[unit]
