"""header-size-layers' check: a 10 KiB cookie in, a 6 KiB Set-Cookie out. Declared with the data
checks' own machinery (labctl.checks); a function only because a 10 KiB header value has no
place in scenario.toml."""

from __future__ import annotations

from labctl import checks
from labctl.checks import Observation
from labctl.endpoints import Endpoint

COOKIE_KIB = 10
SET_COOKIE_KIB = 6

CHECKS = (
    checks.Check.parse(
        {
            "headers": {"Cookie": "lab_big=" + "c" * (COOKIE_KIB * 1024)},
            "seen": f"a {COOKIE_KIB} KiB Cookie: {{status}} {{json.msg}}",
            "healthy": {"status": 200},
            "symptom": {"status": 400, "content_type": "application/json"},
        },
        "GET /debug/request",
    ),
    checks.Check.parse(
        {
            "seen": f"a {SET_COOKIE_KIB} KiB Set-Cookie: {{status}} {{json.msg}}",
            "healthy": {"status": 200},
            "symptom": {"status": 502},
        },
        f"GET /debug/set-cookie?bytes={SET_COOKIE_KIB * 1024}",
    ),
)


def observe(endpoint: Endpoint) -> Observation:
    return checks.observe_all(CHECKS, endpoint)
