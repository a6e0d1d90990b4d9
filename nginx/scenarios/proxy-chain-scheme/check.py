"""proxy-chain-scheme's check: GET /redirect/external through the balancer in front of the lab's
nginx (labctl.balancer, started for the check when it is not running). A function because the
request goes to the balancer's endpoint, not to the stack's."""

from __future__ import annotations

from labctl import balancer, checks, endpoints
from labctl.checks import Observation
from labctl.endpoints import Endpoint

CHECK = checks.Check.parse(
    {
        "seen": "through the balancer: {status} Location: {location}",
        "healthy": {"status": 302, "location": "https://{host}/landing"},
        "symptom": {"status": 302, "location": {"startswith": "http://"}},
    },
    "GET /redirect/external",
)


def observe(endpoint: Endpoint) -> Observation:
    if not endpoint.is_local_lab:
        return Observation(None, "needs this checkout's native stack, to put its balancer in front")
    with balancer.running() as url:
        return CHECK.observe(endpoints.Endpoint(url, endpoint.ca, None))
