"""The endpoints every client of the lab uses, one set for the doctor, `lab check` and the
suites: LAB_URL (HTTPS), LAB_CA (the CA to verify it with) and LAB_HTTP_URL (the plain-HTTP entry).

Unset, they point at this checkout's stack: its ports from the environment, else from what the
running stack was started with (runstate), else the declared defaults.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import labsettings

from . import paths, runstate

LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def https_port() -> int:
    return runstate.value(labsettings.HTTPS_PORT)


def http_port() -> int:
    return runstate.value(labsettings.HTTP_PORT)


def app_port() -> int:
    return runstate.value(labsettings.APP_PORT)


@dataclass(frozen=True)
class Endpoint:
    url: str  # https://host[:port][/prefix] (http:// for a site without TLS), no trailing slash
    ca: Path | None  # None: the system's trust store (a deployment with a public certificate)
    http_url: str | None  # the plain-HTTP entry point, when known
    # Where to connect instead of resolving the URL's host (curl's --resolve): the Host header and
    # TLS name stay the URL's. {public port: (address, port)}; `lab check` runs a config for
    # example.com on loopback this way.
    connect_to: tuple[tuple[int, tuple[str, int]], ...] = ()

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "https"

    @property
    def hostname(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (443 if self.tls else 80)

    def address(self, url: str | None = None) -> tuple[str, int]:
        """Where a connection to ``url`` (default: the endpoint's) really goes."""
        parts = urlsplit(url or self.url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return dict(self.connect_to).get(port, (parts.hostname or "", port))

    @property
    def host(self) -> str:
        """The Host a client sends: host, plus the port when it is not 443."""
        return urlsplit(self.url).netloc

    @property
    def prefix(self) -> str:
        """The path the app is mounted under ('' at the root)."""
        return urlsplit(self.url).path.rstrip("/")

    @property
    def is_local_lab(self) -> bool:
        """This checkout's own stack (its routes, its logs, its lab-internal knobs)."""
        return self.hostname in LOOPBACK and self.port == https_port() and runstate.mode() is not None

    def ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca) if self.ca else None)

    def context_for(self, url: str | None = None) -> ssl.SSLContext | None:
        """TLS for an https:// URL, verified against the endpoint's CA; None for http://."""
        return self.ssl_context() if urlsplit(url or self.url).scheme == "https" else None


def from_env() -> Endpoint:
    url = (labsettings.URL.value() or f"https://localhost:{https_port()}").rstrip("/")
    ca_setting = labsettings.CA.value()
    if ca_setting and not Path(ca_setting).is_file():
        raise SystemExit(f"lab: LAB_CA={ca_setting} is not a file")
    ca = Path(ca_setting) if ca_setting else (paths.CA if paths.CA.is_file() else None)
    parts = urlsplit(url)
    http_url = labsettings.HTTP_URL.value().rstrip("/") or None
    host = f"[{parts.hostname}]" if parts.hostname and ":" in parts.hostname else parts.hostname
    if http_url is None and parts.hostname in LOOPBACK:
        http_url = f"http://{host}:{http_port()}"
    elif http_url is None and (parts.port or 443) == 443:
        http_url = f"http://{host}"
    return Endpoint(url, ca, http_url)


def print_ready(what: str, seconds: float) -> None:
    """The banner `native-up` and `up` end with: where the stack answers and how to try it."""
    ca = paths.CA.relative_to(paths.ROOT)
    print(
        f"lab: up in {seconds:.1f}s, {what}, config: {labsettings.SCENARIO.value() or 'baseline'}\n"
        f"  https://localhost:{https_port()}   (CA: {ca})\n"
        f"  http://localhost:{http_port()}    (redirects to HTTPS)\n"
        f"  try: curl --cacert {ca} https://localhost:{https_port()}/debug/request",
        flush=True,
    )
