"""h3-http-host's check: the same external redirect over HTTP/1.1, HTTP/2 and HTTP/3.

The symptom is a Location that is right over the first two and wrong over HTTP/3 alone; the
healthy answer is right over all three. Anything else (wrong over TCP already, no HTTP/3 at all)
is neither. The HTTP/2 and HTTP/3 clients (httpx, aioquic) come from .venv: imported here, in the
check, so that loading the catalogue needs neither.
"""

from __future__ import annotations

from labctl import probe
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

PATH = "/redirect/external"


def over_http2(endpoint: Endpoint) -> tuple[str, str]:
    import httpx

    with httpx.Client(http2=True, verify=endpoint.ssl_context(), trust_env=False) as client:
        response = client.get(endpoint.url + PATH)
    return response.http_version, response.headers.get("location", "")


def observe(endpoint: Endpoint) -> Observation:
    from labctl import h3

    want = f"{endpoint.url}/landing"
    tcp = probe.request(endpoint, "GET", PATH)
    port = probe.alt_svc_h3(tcp.headers.get("alt-svc", ""), endpoint.port)
    if port is None:
        return Observation(None, f"no HTTP/3 advertised (Alt-Svc: {tcp.headers.get('alt-svc') or 'none'})")
    h2_version, h2_location = over_http2(endpoint)
    quic = h3.request(endpoint, "GET", PATH, port=port)
    locations = {"HTTP/1.1": tcp.location, h2_version: h2_location, "HTTP/3": quic.location}
    seen = "; ".join(f"{version} Location: {location or '(none)'}" for version, location in locations.items())
    right_over_tcp = tcp.location == want and h2_version == "HTTP/2" and h2_location == want
    symptom = right_over_tcp and quic.location != want
    healthy = right_over_tcp and quic.location == want
    return Observation(classify(symptom, healthy), seen)
