"""`lab check FILE --html OUT`: the report as one self-contained page (no script, no link out):
the rows (behaviour, verdict, what was seen, the directive at file:line, the fix), each config
file the rows point into with its responsible lines highlighted and linked from the rows,
nginx's warnings with their fixes, what the run changed to run here, and the catalogue's
matching symptoms."""

from __future__ import annotations

from html import escape
from pathlib import Path

from ..behaviours import BROKEN, NOT_PROBED, NOTE, OK
from .adapt import Change
from .check import STATIC, Outcome, Row
from .refusals import fix_for

MARKS = {OK: "ok", BROKEN: "BROKEN", STATIC: "broken*", NOTE: "note", NOT_PROBED: "not probed"}
STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: .3rem .5rem; border-bottom: 1px solid #ddd; }
.verdict { font-weight: 600; white-space: nowrap; }
tr.broken .verdict, tr.static .verdict { color: #b00020; } tr.ok .verdict { color: #1b7a2e; }
tr.note .verdict { color: #8a6d00; } tr.not-probed .verdict { color: #666; }
code, pre { font: 13px/1.4 ui-monospace, monospace; }
.fix { color: #333; } .fix::before { content: "fix: "; font-weight: 600; }
pre.config { background: #f7f7f7; padding: .5rem 0; overflow-x: auto; }
pre.config span { display: block; padding: 0 .75rem; }
pre.config span.blamed { background: #ffe3e3; border-left: 4px solid #b00020; }
pre.config i { display: inline-block; width: 3.5em; color: #999; font-style: normal; user-select: none; }
.summary { font-weight: 600; }
"""


def _anchor(file: str, line: int) -> str:
    return f"{Path(file).name}-{line}".replace(".", "-")


def _config_files(rows: list[Row], main: Path) -> dict[str, set[int]]:
    """Every user file a row points into (the one checked first), with the lines blamed."""
    files: dict[str, set[int]] = {str(main.resolve()): set()}
    for row in rows:
        if row.file and row.line:
            files.setdefault(row.file, set()).add(row.line)
    return files


def _listing(file: str, blamed: set[int]) -> str:
    try:
        text = Path(file).read_text(errors="replace")
    except OSError as error:
        return f"<p>{escape(file)}: {escape(str(error))}</p>"
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        mark = ' class="blamed"' if number in blamed else ""
        lines.append(f'<span id="{_anchor(file, number)}"{mark}><i>{number}</i>{escape(line) or " "}</span>')
    return f'<h3><code>{escape(file)}</code></h3>\n<pre class="config">' + "".join(lines) + "</pre>"


def render(path: Path, outcome: Outcome, changes: list[Change], warnings: list[str], probed_as: str) -> str:
    """The page for one run of `lab check`."""
    rows = outcome.rows
    body = [f"<h1>lab check: <code>{escape(str(path))}</code></h1>", f"<p>probed as {escape(probed_as)}</p>"]
    counts = {verdict: sum(r.verdict == verdict for r in rows) for verdict in MARKS}
    body.append(
        f'<p class="summary">{len(rows)} rows: {counts[OK]} ok, {counts[BROKEN]} broken (seen by a probe), '
        f"{counts[STATIC]} broken* (read in the config, not confirmed by a probe)</p>"
    )
    if warnings:
        body.append("<h2>nginx -t</h2><ul>")
        for warning in warnings:
            fix = fix_for(warning)
            body.append(
                f"<li><code>{escape(warning)}</code>"
                + (f'<div class="fix">{escape(fix)}</div>' if fix else "")
                + "</li>"
            )
        body.append("</ul>")
    body.append(
        "<h2>Behaviours</h2><table><tr><th>behaviour</th><th>verdict</th><th>seen</th><th>directive</th></tr>"
    )
    for row in rows:
        where = ""
        if row.file and row.line:
            where = (
                f'<a href="#{_anchor(row.file, row.line)}">{escape(Path(row.file).name)}:{row.line}</a> '
                f"<code>{escape(row.directive)}</code>"
            )
        if row.fix and row.verdict in (BROKEN, STATIC):
            where += f'<div class="fix">{escape(row.fix)}</div>'
        body.append(
            f'<tr class="{row.verdict.replace(" ", "-")}"><td><code>{escape(row.behaviour.id)}</code>'
            f"<br><small>{escape(row.behaviour.title)}</small></td>"
            f'<td class="verdict">{escape(MARKS.get(row.verdict, row.verdict))}</td>'
            f"<td>{escape(row.seen)}</td><td>{where}</td></tr>"
        )
    body.append("</table>")
    if outcome.matches or outcome.notes:
        body.append("<h2>Symptoms and notes</h2><ul>")
        body.extend(
            f"<li>the same symptom as the catalogue's <code>{escape(name)}</code>: {escape(seen)}</li>"
            for name, seen in outcome.matches
        )
        body.extend(f"<li>note: {escape(note)}</li>" for note in outcome.notes)
        body.append("</ul>")
    body.append("<h2>Your config</h2>")
    body.extend(_listing(file, blamed) for file, blamed in _config_files(rows, path).items())
    if changes:
        body.append("<h2>Changed to run here (your file is never modified)</h2><ul>")
        body.extend(
            f"<li>{escape(Path(c.where[0]).name)}:{c.where[1]} <code>{escape(c.was)}</code> &rarr; "
            f"<code>{escape(c.now)}</code> ({escape(c.why)})</li>"
            for c in changes
        )
        body.append("</ul>")
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>lab check: {escape(path.name)}</title><style>{STYLE}</style></head><body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )
