"""socketio-origin-rejected's check: a handshake as the lab page's browser sends it (Origin: the
public URL, scheme, host and port as the user typed them), accepted or refused."""

from __future__ import annotations

from labctl import probe
from labctl.checks import Observation, classify
from labctl.endpoints import Endpoint

HANDSHAKE = "/socket.io/?EIO=4&transport=polling"


def observe(endpoint: Endpoint) -> Observation:
    origin = endpoint.url.rstrip("/")
    try:
        reply = probe.request(endpoint, "GET", HANDSHAKE, headers={"Origin": origin})
    except OSError as error:
        return Observation(None, f"the handshake failed: {type(error).__name__}: {error}")
    refused = reply.status == 400 and b"Not an accepted origin" in reply.body
    seen = f"Origin {origin}: {reply.status} {reply.body.decode(errors='replace')[:100]}"
    return Observation(classify(refused, reply.status == 200 and reply.body.startswith(b"0{")), seen)
