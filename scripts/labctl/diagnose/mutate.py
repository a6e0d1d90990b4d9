"""Mutation testing of `lab check`: each catalogue scenario's broken edit, and each behaviour's rule
fixture's positive shape, written as an operator on a parsed config (delete a directive, replace its
value, add a location's own directive, drop the catch-all server) and applied automatically to every
clean config: the development corpus' clean reference and the lab's own baseline, rendered. A mutant
is killed when `lab check` reports each finding the edit must cause, at the mutated line.

Every mutant is judged by the static rules (labctl.behaviours, no nginx: milliseconds each); a
bounded sample also through the full `lab check` (nginx, the lab's app, the probes: seconds each).
The unmutated configs must come out with no finding at all.
"""

from __future__ import annotations

import shutil
import tempfile
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .. import behaviours, nginx, paths
from ..behaviours.core import Site
from . import check, config
from .config import Directive
from .score import directive_key, reported_keys, run_check

HTTP11_DEFAULT = (1, 29, 7)  # nginx proxies with HTTP/1.1 by default from this version on
WS, APP = "/ws/echo", "/redirect/external"  # the lab's routes the probes use
Key = tuple[str, str, int, str]  # behaviour, file, line, directive


@dataclass(frozen=True)
class Clean:
    """A config expected to come out clean, and the public ports it is judged for."""

    name: str
    root: Path  # the folder copied for each mutant (the config and what it includes)
    conf: Path  # the file lab check is given, inside root
    public_https: int | None
    public_http: int | None


@dataclass(frozen=True)
class Edit:
    """One line of one file rewritten (a deletion keeps the line, as a comment: lines stay put)."""

    file: str
    line: int
    text: str
    insert: bool = False  # add `text` after the line instead of replacing it


@dataclass(frozen=True)
class Mutant:
    clean: Clean
    operator: str
    source: str  # the scenario or rule fixture it expresses
    edits: tuple[Edit, ...]
    expected: frozenset[Key]


# An operator: from a clean config's site, the mutants it makes (none where it does not apply).
Operator = Callable[[Clean, Site], Iterator[Mutant]]
OPERATORS: list[tuple[str, str, Operator]] = []


def operator(name: str, source: str) -> Callable[[Operator], Operator]:
    def register(function: Operator) -> Operator:
        OPERATORS.append((name, source, function))
        return function

    return register


def _own_line(directive: Directive) -> bool:
    """The directive alone on its line (so a line edit changes nothing else)."""
    text = Path(directive.file).read_text().splitlines()[directive.line - 1].split("#")[0].strip()
    return text.startswith(directive.name) and text.count(";") == 1 and "{" not in text


def _delete(directive: Directive) -> Edit:
    line = Path(directive.file).read_text().splitlines()[directive.line - 1]
    indent = line[: len(line) - len(line.lstrip())]
    return Edit(directive.file, directive.line, f"{indent}# mutant: deleted: {line.strip()}")


def _replace(directive: Directive, new: str) -> Edit:
    line = Path(directive.file).read_text().splitlines()[directive.line - 1]
    indent = line[: len(line) - len(line.lstrip())]
    return Edit(directive.file, directive.line, f"{indent}{new}")


def _header(location: Directive | None, name: str) -> Directive | None:
    if location is None:
        return None
    for d in location.children("proxy_set_header"):
        if d.args and d.args[0].lower() == name.lower() and _own_line(d):
            return d
    return None


def _key(behaviour: str, where: tuple[str, int], directive: str) -> Key:
    return (behaviour, where[0], where[1], directive_key(directive))


def _mutant(clean: Clean, name: str, source: str, edits: list[Edit], expected: list[Key]) -> Mutant:
    return Mutant(clean, name, source, tuple(edits), frozenset(expected))


def _missing_header(
    clean: Clean, site: Site, uri: str, header: str, name: str, source: str, found: list[str]
) -> Iterator[Mutant]:
    location = site.location(uri)
    target = _header(location, header)
    if location is None or target is None:
        return
    text = f"missing: proxy_set_header {header}"
    yield _mutant(clean, name, source, [_delete(target)], [_key(b, location.where, text) for b in found])


def _deleting(header: str, found: list[str], source: str) -> Operator:
    def make(clean: Clean, site: Site) -> Iterator[Mutant]:
        yield from _missing_header(clean, site, APP, header, f"delete {header}", source, found)

    return make


# A header of the app's location deleted: what its absence breaks.
for _header_name, _found, _source in (
    ("X-Forwarded-For", ["client-addr", "forged-for"], "client-addr/no_forwarded_for.conf"),
    ("X-Forwarded-Host", ["forged-host"], "forged-host/passes_client_value.conf"),
    ("X-Forwarded-Port", ["forged-port"], "forged-port/unset.conf"),
):
    operator(f"delete {_header_name}", _source)(_deleting(_header_name, _found, _source))


def _from_client(clean: Clean, site: Site, header: str, behaviour: str, source: str) -> Iterator[Mutant]:
    """HEADER passed through from the client (``$http_x_...``) instead of set by nginx."""
    target = _header(site.location(APP), header)
    if target is not None:
        value = "$http_" + header.lower().replace("-", "_")
        yield _mutant(
            clean,
            f"{header} from the client",
            source,
            [_replace(target, f"proxy_set_header {header} {value};")],
            [_key(behaviour, target.where, f"proxy_set_header {header}")],
        )


@operator("X-Forwarded-For from the client", "scenario xff-spoofing; forged-for/passes_client_value.conf")
def xff_spoofing(clean: Clean, site: Site) -> Iterator[Mutant]:
    yield from _from_client(clean, site, "X-Forwarded-For", "forged-for", "scenario xff-spoofing")


@operator("delete X-Forwarded-Proto", "scenario scheme-lost; redirect-scheme/no_forwarded_proto.conf")
def scheme_lost(clean: Clean, site: Site) -> Iterator[Mutant]:
    found = ["forged-proto", "redirect-scheme"] if site.tls else ["forged-proto"]
    yield from _missing_header(
        clean, site, APP, "X-Forwarded-Proto", "delete X-Forwarded-Proto", "scenario scheme-lost", found
    )


@operator("X-Forwarded-Proto from the client", "forged-proto/passes_client_value.conf")
def xfp_spoofing(clean: Clean, site: Site) -> Iterator[Mutant]:
    yield from _from_client(
        clean, site, "X-Forwarded-Proto", "forged-proto", "forged-proto/passes_client_value.conf"
    )


@operator("delete Host and X-Forwarded-Host", "scenario upstream-host; redirect-host/no_host.conf")
def upstream_host(clean: Clean, site: Site) -> Iterator[Mutant]:
    location = site.location(APP)
    host, xfh = _header(location, "Host"), _header(location, "X-Forwarded-Host")
    if location is None or host is None or xfh is None:
        return
    expected = [
        _key("redirect-host", location.where, "missing: proxy_set_header Host"),
        _key("forged-host", location.where, "missing: proxy_set_header X-Forwarded-Host"),
    ]
    yield _mutant(
        clean,
        "delete Host and X-Forwarded-Host",
        "scenario upstream-host",
        [_delete(host), _delete(xfh)],
        expected,
    )


@operator("Host $http_host, no X-Forwarded-Host", "scenario h3-http-host; absolute-form-host/http_host.conf")
def http_host(clean: Clean, site: Site) -> Iterator[Mutant]:
    """`$http_host` reaches the app's URLs only where no X-Forwarded-Host overrides it (ProxyFix)."""
    location = site.location(APP)
    host, xfh = _header(location, "Host"), _header(location, "X-Forwarded-Host")
    if location is None or host is None or xfh is None or host.args[1:] != ["$host"]:
        return
    expected = [
        _key("absolute-form-host", host.where, "proxy_set_header Host"),
        _key("forged-host", location.where, "missing: proxy_set_header X-Forwarded-Host"),
    ]
    edits = [_replace(host, "proxy_set_header Host $http_host;"), _delete(xfh)]
    yield _mutant(clean, "Host $http_host, no X-Forwarded-Host", "scenario h3-http-host", edits, expected)


@operator("delete client_max_body_size", "scenario body-limit; upload-limit/small_limit.conf")
def body_limit(clean: Clean, site: Site) -> Iterator[Mutant]:
    for where in (site.location("/upload/x"), site.app_server):
        for limit in where.children("client_max_body_size") if where else []:
            if _own_line(limit):
                yield _mutant(
                    clean,
                    "delete client_max_body_size",
                    "scenario body-limit",
                    [_delete(limit)],
                    [_key("upload-limit", site.app_server.where, "missing: client_max_body_size")],
                )
                yield _mutant(
                    clean,
                    "client_max_body_size 1m",
                    "upload-limit/small_limit.conf",
                    [_replace(limit, "client_max_body_size 1m;")],
                    [_key("upload-limit", limit.where, "client_max_body_size")],
                )
                return


@operator(
    "constant Connection upgrade", "scenario connection-upgrade-always; request-body/constant_upgrade.conf"
)
def connection_upgrade_always(clean: Clean, site: Site) -> Iterator[Mutant]:
    location = site.location("/landing")
    anchor = next((d for d in (location.children("proxy_pass") if location else []) if _own_line(d)), None)
    if location is None or anchor is None or _header(location, "Connection") is not None:
        return
    line = Path(anchor.file).read_text().splitlines()[anchor.line - 1]
    indent = line[: len(line) - len(line.lstrip())]
    edit = Edit(anchor.file, anchor.line, f'{indent}proxy_set_header Connection "upgrade";', insert=True)
    yield _mutant(
        clean,
        "constant Connection upgrade",
        "scenario connection-upgrade-always",
        [edit],
        [_key("request-body", (anchor.file, anchor.line + 1), "proxy_set_header Connection")],
    )


def _deleting_in_location(
    clean: Clean, location: Directive | None, name: str, source: str, behaviour: str, missing: str
) -> Iterator[Mutant]:
    """A location's own ``name`` deleted (operator "delete <name>"): found ``missing`` at the location."""
    for directive in location.children(name) if location else []:
        if location is not None and _own_line(directive):
            yield _mutant(
                clean,
                f"delete {name}",
                source,
                [_delete(directive)],
                [_key(behaviour, location.where, f"missing: {missing}")],
            )


def _ws(site: Site) -> Directive | None:
    return site.location(WS)


@operator("delete Upgrade", "scenario ws-no-upgrade; ws-upgrade/no_upgrade_headers.conf")
def ws_no_upgrade(clean: Clean, site: Site) -> Iterator[Mutant]:
    yield from _missing_header(
        clean, site, WS, "Upgrade", "delete Upgrade", "scenario ws-no-upgrade", ["ws-upgrade"]
    )
    yield from _missing_header(
        clean, site, WS, "Connection", "delete Connection", "scenario ws-no-upgrade", ["ws-upgrade"]
    )


@operator("delete proxy_http_version", "scenario ws-http10")
def ws_http10(clean: Clean, site: Site) -> Iterator[Mutant]:
    if site.nginx_version < HTTP11_DEFAULT:
        yield from _deleting_in_location(
            clean,
            _ws(site),
            "proxy_http_version",
            "scenario ws-http10",
            "ws-upgrade",
            "proxy_http_version 1.1",
        )


@operator("proxy_read_timeout 2s", "scenario ws-idle-timeout")
def ws_idle(clean: Clean, site: Site) -> Iterator[Mutant]:
    location = _ws(site)
    for timeout in location.children("proxy_read_timeout") if location else []:
        if _own_line(timeout):
            yield _mutant(
                clean,
                "proxy_read_timeout 2s",
                "scenario ws-idle-timeout",
                [_replace(timeout, "proxy_read_timeout 2s;")],
                [_key("ws-idle", timeout.where, "proxy_read_timeout")],
            )


@operator("delete proxy_buffering", "scenario stream-buffered; stream/default_buffering.conf")
def stream_buffered(clean: Clean, site: Site) -> Iterator[Mutant]:
    location = site.location(site.routes.stream)
    # Only where no enclosing level sets proxy_buffering (it would take over once deleted).
    if (
        location is not None
        and location.parent is not None
        and not config.effective(location.parent, "proxy_buffering")
    ):
        yield from _deleting_in_location(
            clean,
            location,
            "proxy_buffering",
            "scenario stream-buffered",
            "stream",
            "proxy_buffering off",
        )


@operator(
    "websocket location without X-Forwarded-Proto", "scenario location-drops-headers; ws-scheme fixtures"
)
def location_drops_headers(clean: Clean, site: Site) -> Iterator[Mutant]:
    if site.tls and _ws(site) is not site.location(APP):
        yield from _missing_header(
            clean,
            site,
            WS,
            "X-Forwarded-Proto",
            "websocket location without X-Forwarded-Proto",
            "scenario location-drops-headers",
            ["ws-scheme"],
        )


@operator("ssl_protocols TLSv1 TLSv1.1 TLSv1.2", "tls-versions/old_protocols.conf")
def old_tls(clean: Clean, site: Site) -> Iterator[Mutant]:
    for protocols in site.app_server.children("ssl_protocols"):
        if _own_line(protocols):
            yield _mutant(
                clean,
                "ssl_protocols TLSv1 TLSv1.1 TLSv1.2",
                "tls-versions/old_protocols.conf",
                [_replace(protocols, "ssl_protocols TLSv1 TLSv1.1 TLSv1.2;")],
                [_key("tls-versions", protocols.where, "ssl_protocols")],
            )


def _block_end(directive: Directive) -> int:
    """The line of the brace that closes ``directive``'s block."""
    lines = Path(directive.file).read_text().splitlines()
    depth = 0
    for number in range(directive.line, len(lines) + 1):
        text = lines[number - 1].split("#")[0]
        depth += text.count("{") - text.count("}")
        if depth == 0 and "}" in text:
            return number
    raise ValueError(f"no closing brace for {directive.name} at {directive.file}:{directive.line}")


@operator("drop the catch-all default server", "unknown-host/app_is_default.conf")
def no_catch_all(clean: Clean, site: Site) -> Iterator[Mutant]:
    refusing = [
        s
        for s in site.config.servers()
        if s is not site.app_server and s.children("return") and s.children("return")[0].args[:1] == ["444"]
    ]
    tls = next((d for d in site.app_server.children("listen") if "ssl" in d.args), None)
    for server in refusing[:1]:
        if tls is None or server.file != site.app_server.file:
            continue
        lines = Path(server.file).read_text().splitlines()
        edits = [
            Edit(server.file, n, f"# mutant: deleted: {lines[n - 1].strip()}")
            for n in range(server.line, _block_end(server) + 1)
        ]
        yield _mutant(
            clean,
            "drop the catch-all default server",
            "unknown-host/app_is_default.conf",
            edits,
            [_key("unknown-host", tls.where, "listen")],
        )


def write(mutant: Mutant, into: Path) -> Path:
    """The mutant's files under ``into`` (a copy of the clean config's folder); the file to check."""
    shutil.copytree(mutant.clean.root, into, dirs_exist_ok=True)
    by_file: dict[str, list[Edit]] = {}
    for edit in mutant.edits:
        by_file.setdefault(edit.file, []).append(edit)
    for name, edits in by_file.items():
        target = into / Path(name).relative_to(mutant.clean.root)
        lines = target.read_text().splitlines()
        for edit in sorted(edits, key=lambda e: e.line, reverse=True):
            if edit.insert:
                lines.insert(edit.line, edit.text)
            else:
                lines[edit.line - 1] = edit.text
        target.write_text("\n".join(lines) + "\n")
    return into / mutant.clean.conf.relative_to(mutant.clean.root)


def relocated(keys: frozenset[Key], clean: Clean, into: Path) -> frozenset[Key]:
    """Keys in the clean config's files, as the same lines of the mutant's copy."""
    return frozenset((b, str(into / Path(f).relative_to(clean.root)), line, d) for b, f, line, d in keys)


def site(clean: Clean, conf: Path) -> Site:
    return check.site_for(config.load(conf), clean.public_https, clean.public_http)


def static_keys(clean: Clean, conf: Path) -> frozenset[Key]:
    """What the static rules find in the config at ``conf`` (no nginx)."""
    return frozenset(
        (f.behaviour.id, f.where[0], f.where[1], directive_key(f.directive))
        for f in behaviours.findings(site(clean, conf))
    )


def mutants(clean: Clean) -> list[Mutant]:
    parsed = site(clean, clean.conf)
    return [m for _, _, make in OPERATORS for m in make(clean, parsed)]


@dataclass(frozen=True)
class Verdict:
    mutant: Mutant
    found: frozenset[Key]  # in the mutant's copy
    expected: frozenset[Key]  # in the mutant's copy

    @property
    def killed(self) -> bool:
        return self.expected <= self.found


def judge_static(mutant: Mutant) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="lab-mutant-") as tmp:
        conf = write(mutant, Path(tmp))
        expected = relocated(mutant.expected, mutant.clean, Path(tmp))
        return Verdict(mutant, static_keys(mutant.clean, conf), expected)


def judge_full(mutant: Mutant) -> Verdict:
    """The mutant through the real `lab check` (nginx, the app, the probes)."""
    with tempfile.TemporaryDirectory(prefix="lab-mutant-") as tmp:
        conf = write(mutant, Path(tmp))
        expected = relocated(mutant.expected, mutant.clean, Path(tmp))
        extra = []
        if mutant.clean.public_https:
            extra += ["--public-https-port", str(mutant.clean.public_https)]
        _, report, _ = run_check(conf, extra)
        found_rows, _ = reported_keys(report, conf)
        found = frozenset((b, str(conf), line, d) for b, line, d in found_rows)
        return Verdict(mutant, found, expected)


BASELINE = paths.LAB / "mutate" / "baseline"
FULL_SAMPLE = 4  # mutants also run through the full `lab check` in the test suite (seconds each)


def clean_configs() -> list[Clean]:
    """The development corpus' clean entries, and the lab's baseline rendered (in .lab/mutate/)."""
    shutil.rmtree(BASELINE, ignore_errors=True)
    BASELINE.mkdir(parents=True)
    nginx.render_baseline(BASELINE)
    found = [Clean("baseline (rendered)", BASELINE, BASELINE / "nginx.conf", None, None)]
    corpus = paths.ROOT / "tests" / "diagnose" / "corpus"
    for folder in sorted(corpus.iterdir()):
        meta = folder / "expected.toml"
        if meta.is_file() and (data := tomllib.loads(meta.read_text())).get("clean"):
            found.append(
                Clean(
                    folder.name,
                    folder,
                    folder / "site.conf",
                    data.get("public_https_port"),
                    data.get("public_http_port"),
                )
            )
    return found


def sample(all_mutants: list[Mutant], size: int = FULL_SAMPLE) -> list[Mutant]:
    """A bounded sample for the full check: the corpus' mutants (whole files a user would give),
    spread over the operators."""
    corpus = [m for m in all_mutants if m.clean.root != BASELINE]
    step = max(1, len(corpus) // size)
    return corpus[::step][:size]


@dataclass
class MutationScore:
    verdicts: list[Verdict]
    unmutated: dict[str, frozenset[Key]]  # each clean config's own findings (must be none)
    how: str

    @property
    def killed(self) -> int:
        return sum(v.killed for v in self.verdicts)

    def lines(self) -> list[str]:
        total = len(self.verdicts)
        out = [
            f"mutation score ({self.how}): {self.killed}/{total} = {self.killed / total:.1%} killed "
            f"(goal >= 95%); unmutated configs with findings: "
            f"{ {k: sorted(v) for k, v in self.unmutated.items() if v} or 'none' }"
        ]
        out += [
            f"  alive: {v.mutant.clean.name}: {v.mutant.operator} ({v.mutant.source}), "
            f"not found {sorted(v.expected - v.found)}"
            for v in self.verdicts
            if not v.killed
        ]
        return out


def score(full: bool = False) -> MutationScore:
    """Every mutant of every clean config by the static rules, or (``full``) the corpus' mutants
    through the full `lab check`."""
    cleans = clean_configs()
    every = [m for clean in cleans for m in mutants(clean)]
    if full:
        chosen = [m for m in every if m.clean.root != BASELINE]
        return MutationScore([judge_full(m) for m in chosen], {}, "full lab check, corpus mutants")
    unmutated = {clean.name: static_keys(clean, clean.conf) for clean in cleans}
    return MutationScore([judge_static(m) for m in every], unmutated, "static rules, every mutant")
