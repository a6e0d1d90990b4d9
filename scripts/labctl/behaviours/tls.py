"""TLS: HTTP/2 is offered (ALPN), and only TLS 1.2 and 1.3 are accepted (RFC 8996)."""

from __future__ import annotations

import socket
import ssl
import warnings
from collections.abc import Iterator

from .. import probe as http_probe
from ..diagnose.config import effective
from .core import (
    BROKEN,
    HIGH,
    LOW,
    NOTE,
    OK,
    Behaviour,
    Finding,
    Probe,
    Result,
    Site,
    at,
    probe,
    result,
    rule,
)

ORDER = 80
OLD_TLS = (ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1)  # RFC 8996: deprecated

H2 = Behaviour(
    "h2",
    "HTTP/2 is offered (ALPN)",
    "`listen 443 ssl http2;` (or `http2 on;` from nginx 1.25.1)",
    LOW,
)
TLS_VERSIONS = Behaviour(
    "tls-versions",
    "only TLS 1.2 and 1.3 are accepted",
    "`ssl_protocols TLSv1.2 TLSv1.3;`",
    HIGH,
)


@probe(H2, TLS_VERSIONS)
def probe_tls(p: Probe) -> Iterator[Result]:
    if not p.endpoint.tls:
        return
    address = p.endpoint.address()
    context = p.endpoint.ssl_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(address, timeout=http_probe.TIMEOUT) as raw,
        context.wrap_socket(raw, server_hostname=p.endpoint.hostname) as tls,
    ):
        alpn = tls.selected_alpn_protocol()
    yield result(H2, OK if alpn == "h2" else NOTE, f"ALPN chose {alpn or 'nothing'}")
    outcomes = {v.name: _handshake_with(address, p.endpoint.hostname, v) for v in OLD_TLS}
    accepted = [name for name, outcome in outcomes.items() if outcome is True]
    untried = [name for name, outcome in outcomes.items() if outcome is None]
    if accepted:
        yield result(TLS_VERSIONS, BROKEN, f"accepted {', '.join(accepted)}")
    elif untried:
        seen = f"TLS 1.2+ as far as this machine's OpenSSL can tell ({', '.join(untried)} cannot be offered)"
        yield result(TLS_VERSIONS, OK, seen)
    else:
        yield result(TLS_VERSIONS, OK, "TLSv1 and TLSv1.1 refused")


def _handshake_with(address: tuple[str, int], hostname: str, version: ssl.TLSVersion) -> bool | None:
    """True: the server accepted a handshake of exactly ``version``; False: refused; None: this
    machine's OpenSSL cannot even offer it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only the protocol version is under test here
    try:
        with warnings.catch_warnings():  # deprecated is the point: this asks for exactly that version
            warnings.simplefilter("ignore", DeprecationWarning)
            context.minimum_version = context.maximum_version = version
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return None
    try:
        with (
            socket.create_connection(address, timeout=http_probe.TIMEOUT) as raw,
            context.wrap_socket(raw, server_hostname=hostname),
        ):
            return True
    except ssl.SSLError as error:
        return None if "NO_PROTOCOLS_AVAILABLE" in str(error) or "no protocols" in str(error) else False
    except OSError:
        return False


@rule(TLS_VERSIONS)
def rule_tls_versions(site: Site) -> Iterator[Finding]:
    server = site.app_server
    if server is None or not site.tls:
        return
    for directive in effective(server, "ssl_protocols"):
        if {"TLSv1", "TLSv1.1", "SSLv3"} & set(directive.args):
            yield at(directive, TLS_VERSIONS, "`ssl_protocols TLSv1.2 TLSv1.3;` (RFC 8996)")
