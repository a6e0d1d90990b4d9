"""Runs catalogue checks against the running stack and prints one JSON object per check.

`scripts/lab scenario(s)` calls this inside .venv (the checks use requests and websocket-client):
    python -m scenarios.observe NAME [NAME ...]
"""

from __future__ import annotations

import json
import sys
import time

from labctl import paths
from scenarios.catalogue import BY_NAME, Observation
from support.lab import lab_from_env


def observe(name: str) -> dict[str, object]:
    case = BY_NAME[name]
    started = time.monotonic()
    try:
        observation = case.check(lab_from_env())
    except Exception as error:  # noqa: BLE001 - a check that cannot run is reported, not fatal
        observation = Observation(None, f"the check could not run: {type(error).__name__}: {error}")
    return {
        "name": name,
        "present": observation.present,
        "seen": observation.seen,
        "symptom": case.symptom_for(paths.https_port(), paths.http_port()),
        "hint": case.hint,
        "seconds": round(time.monotonic() - started, 2),
    }


def main(names: list[str]) -> int:
    unknown = [name for name in names if name not in BY_NAME]
    for name in names:
        if name in unknown:
            missing = {"name": name, "missing": True, "present": None, "seen": "no check in the catalogue"}
            print(json.dumps(missing), flush=True)
        else:
            print(json.dumps(observe(name)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
