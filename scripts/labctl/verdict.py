"""The running stack's verdict, for the lab page: after each `make reload` / `make watch` reload
that nginx took, the doctor probes this checkout's stack and its verdict (each behaviour ok or
broken, the running scenario and its symptom, the catalogue's symptoms it shows) is written as
JSON to .lab/run/verdict.json; the app serves that file at /lab/verdict (LAB_VERDICT_FILE) and
the page's verdict section (static/lab/verdict.js) shows it, asking again every few seconds.

Standard library only, as the doctor is.
"""

from __future__ import annotations

import http.client
import json
import ssl
import time

import labsettings

from . import catalogue, checks, doctor, endpoints, paths, runstate
from .behaviours import BROKEN
from .catalogue import CatalogueError

FILE = paths.RUN / "verdict.json"


def scenario_now() -> str:
    """The scenario the last reload rendered: the started stack's, or an explicit LAB_SCENARIO."""
    return runstate.value(labsettings.SCENARIO)


def as_json(diagnosis: doctor.Diagnosis, scenario: str) -> dict[str, object]:
    symptom = ""
    if scenario:
        try:
            symptom = checks.fill(
                catalogue.load(scenario).symptom, checks.endpoint_values(diagnosis.endpoint)
            )
        except CatalogueError:
            symptom = ""
    return {
        "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "url": diagnosis.endpoint.url,
        "scenario": scenario,
        "symptom": symptom,
        "rows": [
            {
                "behaviour": r.behaviour.id,
                "title": r.title,
                "verdict": r.verdict,
                "seen": r.seen,
                "hint": r.hint,
            }
            for r in diagnosis.results
        ],
        "matches": [{"scenario": m.scenario.name, "seen": m.seen} for m in diagnosis.matches],
    }


def refresh() -> str:
    """Probe the running stack and write its verdict; one line saying what was written (or why
    not: a reload never fails for want of a verdict)."""
    try:
        diagnosis = doctor.run(endpoints.from_env())
        verdict = as_json(diagnosis, scenario_now())
    except (OSError, http.client.HTTPException, ssl.SSLError, SystemExit) as error:
        return f"lab: no verdict for the lab page ({error})"
    FILE.parent.mkdir(parents=True, exist_ok=True)
    partial = FILE.with_suffix(".partial")
    partial.write_text(json.dumps(verdict, indent=1))
    partial.replace(FILE)  # the app never serves half a file
    broken = [r.behaviour.id for r in diagnosis.results if r.verdict == BROKEN]
    return f"lab: verdict for the lab page ({FILE}): " + (
        f"broken: {', '.join(map(str, broken))}" if broken else "every behaviour holds"
    )
