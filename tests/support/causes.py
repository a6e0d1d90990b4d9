"""What the suite says when a behaviour breaks: the likely cause, told apart from its look-alikes
(a forged X-Forwarded-Host is not `Host $host`; a refused handshake says which pieces the proxy
dropped). The wording is labctl's: the doctor and `lab check` name the same lines, each hint
worded once on its behaviour (labctl.behaviours)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from labctl import hints, probe
from labctl.behaviours import forwarded, request_id, websockets

if TYPE_CHECKING:  # support.lab uses these to word its own failures
    from support.lab import Lab

# A forged request header -> the behaviour it breaks when the proxy lets it through.
FORGED_BEHAVIOUR = {
    "x-forwarded-host": forwarded.FORGED_HOST,
    "x-forwarded-port": forwarded.FORGED_PORT,
    "x-forwarded-proto": forwarded.FORGED_PROTO,
    "x-forwarded-for": forwarded.FORGED_FOR,
    "forwarded": forwarded.FORGED_FORWARDED,
}


def forged_cause(forged: Mapping[str, str]) -> str:
    """For a request that carried forged headers: which one the proxy let through, and the fix."""
    judged = [FORGED_BEHAVIOUR[h.lower()] for h in forged if h.lower() in FORGED_BEHAVIOUR]
    return "; ".join(f"{b.id}: {b.hint}" for b in judged)


def host_cause(lab: Lab, seen_host: str, forged: Mapping[str, str] | None = None) -> str:
    """Why the app saw (or built a URL with) ``seen_host`` instead of the public host:port."""
    lowered = {k.lower(): v for k, v in (forged or {}).items()}
    if "x-forwarded-host" in lowered and lowered["x-forwarded-host"] in seen_host:
        return f"a forged X-Forwarded-Host reached the app: {forwarded.FORGED_HOST.hint}"
    if "x-forwarded-port" in lowered and seen_host.endswith(":" + lowered["x-forwarded-port"]):
        return f"a forged X-Forwarded-Port reached the app: {forwarded.FORGED_PORT.hint}"
    if seen_host == urlsplit(lab.url).hostname:
        return hints.scenario("host-drops-port")
    return hints.scenario("upstream-host")


def location_cause(lab: Lab, location: str, forged: Mapping[str, str] | None = None) -> str:
    if location.startswith("http://") and lab.url.startswith("https://"):
        lowered = {k.lower() for k in forged or {}}
        if "x-forwarded-proto" in lowered or "forwarded" in lowered:
            return f"a forged scheme reached the app: {forged_cause(forged or {})}"
        return hints.scenario("scheme-lost")
    return host_cause(lab, urlsplit(location).netloc, forged)


REQUEST_ID = f"X-Request-ID differs between nginx and the app: {request_id.REQUEST_ID.hint}"


def handshake_cause(lab: Lab, path: str) -> str:
    """The handshake made again by hand (a full client reports a cut-off refusal only as a lost
    connection): its status, the pieces the proxy dropped, and the scenario it looks like."""
    try:
        handshake, conn = probe.websocket(lab.endpoint, path)
    except OSError as error:
        return f"no answer to the handshake ({error})"
    if conn is not None:
        conn.close()
        return "it upgrades when asked by hand: the client's own handshake failed"
    missing = websockets.missing_pieces(handshake)
    if handshake.status == 404:
        return f"{path} answered 404: no websocket route there"
    refusal = websockets.HANDSHAKE_REFUSALS.get(handshake.status)
    told = f"; the proxy dropped: {', '.join(missing)}" if missing else ""
    return f"handshake answered {handshake.status}{told}" + (
        f". {hints.scenario(refusal.scenario)}" if refusal else ""
    )
