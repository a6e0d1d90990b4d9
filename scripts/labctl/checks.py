"""Checks declared as data, the way Test::Nginx pairs a request with its expected response: a
``[[check]]`` table of a scenario.toml names one request and the two answers it tells apart.

    [[check]]
    request = "GET /redirect/external"
    seen = "{status} Location: {location}"
    healthy = { status = 302, location = "https://{host}/landing" }
    symptom = { status = 302, location = { startswith = "https://{hostname}/" } }

The symptom is *present* when the answer matches ``symptom``, *absent* when it matches
``healthy``, and neither (None) otherwise: a 502 where a redirect was expected is something else
breaking, and must never pass as "absent under the baseline".

Requests: ``GET|PUT|POST|DELETE <path>`` (``via = "http"`` for the plain-HTTP entry point;
``headers``; ``body_mib`` or ``body_kib`` for a generated body; ``timeout_s``, after which the
status is "no answer"), or ``WEBSOCKET <path>`` (``send`` one text
message after ``idle_s`` seconds of silence and read what answers).
Fields a matcher can name: ``status``, ``location``, ``location_host``, ``content_type``,
``header.<name>``, ``json.<key>``; websockets: ``status`` (the handshake's), ``message.<key>``
(the first message, JSON), ``reply`` (``echo``, ``close``, ``dropped`` or ``silence``) and
``reply_detail``. A matcher is a value (equal), a list (one of), or a table of ``startswith``,
``contains``, ``in``, ``not``, ``not_in``. Strings may use {scheme}, {ws_scheme}, {host},
{hostname}, {https_port}, {http_port} of the endpoint probed (a plain-HTTP site is judged as one).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from . import probe, wsclient
from .endpoints import Endpoint

HTTP_METHODS = {"GET", "HEAD", "POST", "PUT", "DELETE"}
WEBSOCKET = "WEBSOCKET"
REPLY_TIMEOUT_S = 5.0
# A request with a body waits this long per MiB on top of probe.TIMEOUT (a 2 MiB upload: 12 s).
# Not a flat minute: where the app never answers such a request (connection-upgrade-always: it
# reads the body until the connection closes), body-limit's check cost every diagnosis a minute.
SECONDS_PER_BODY_MIB = 1.0
OPERATORS = {"startswith", "contains", "in", "not", "not_in"}
PLACEHOLDER = re.compile(r"\{([a-z_]+(?:\.[A-Za-z0-9_-]+)?)\}")


@dataclass(frozen=True)
class Observation:
    # True: the scenario's symptom; False: the healthy answer; None: neither (something else broke).
    present: bool | None
    seen: str  # what the user would see, in one line


def classify(symptom: bool, healthy: bool) -> bool | None:
    """True only for the symptom alone, False only for the healthy answer alone. Both at once is
    no verdict: on port 443 "the Location lost the port" and "the Location is right" are one URL."""
    if symptom != healthy:
        return symptom
    return None


def endpoint_values(endpoint: Endpoint, http_port: int | None = None) -> dict[str, str]:
    http = urlsplit(endpoint.http_url or "")
    return {
        "scheme": "https" if endpoint.tls else "http",
        "ws_scheme": "wss" if endpoint.tls else "ws",
        # Names compare as DNS and nginx compare them: $host is the Host lower-cased.
        "host": endpoint.host.lower(),
        "hostname": endpoint.hostname.lower(),
        "https_port": str(endpoint.port),
        "http_port": str(http_port or http.port or 80),
    }


def normal_url(url: str) -> str:
    """An absolute URL with its scheme and host lower-cased (case-insensitive, RFC 3986 6.2.2.1)."""
    parts = urlsplit(url)
    return (
        parts._replace(scheme=parts.scheme.lower(), netloc=parts.netloc.lower()).geturl()
        if parts.netloc
        else url
    )


def fill(template: str, values: Mapping[str, object]) -> str:
    """{name} placeholders from ``values``; an unknown or missing one reads "(none)"."""

    def value(match: re.Match[str]) -> str:
        found = values.get(match.group(1))
        return "(none)" if found is None else str(found)

    return PLACEHOLDER.sub(value, template)


def matches(spec: object, value: object, values: Mapping[str, str]) -> bool:
    """Whether ``value`` satisfies the matcher ``spec`` (see the module's docstring)."""

    def filled(item: object) -> object:
        return fill(item, values) if isinstance(item, str) else item

    if isinstance(spec, list):
        return value in [filled(item) for item in spec]
    if not isinstance(spec, dict):
        return value == filled(spec)
    unknown = set(spec) - OPERATORS
    if unknown:
        raise ValueError(f"unknown matcher(s) {sorted(unknown)}; use {sorted(OPERATORS)}")
    text = "" if value is None else str(value)
    tests = {
        "startswith": lambda want: value is not None and text.startswith(str(filled(want))),
        "contains": lambda want: value is not None and str(filled(want)) in text,
        "in": lambda want: value in [filled(item) for item in want],
        "not": lambda want: value != filled(want),
        "not_in": lambda want: value not in [filled(item) for item in want],
    }
    return all(tests[name](want) for name, want in spec.items())


def _json_fields(prefix: str, document: object) -> dict[str, object]:
    if not isinstance(document, dict):
        return {}
    return {f"{prefix}.{key}": value for key, value in document.items() if not isinstance(value, dict | list)}


@dataclass(frozen=True)
class Check:
    method: str
    path: str
    healthy: Mapping[str, object]
    symptom: Mapping[str, object]
    seen: str
    via_http: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)
    body_mib: float = 0
    body_kib: float = 0
    timeout_s: float = 0  # 0: the probes' default; an answer that takes longer is "no answer"
    send: str | None = None
    idle_s: float = 0

    @classmethod
    def parse(cls, block: Mapping[str, Any], default_request: str) -> Check:
        method, _, path = str(block.get("request", default_request)).partition(" ")
        if method not in HTTP_METHODS | {WEBSOCKET} or not path.startswith("/") or re.search(r"\s", path):
            raise ValueError(
                f"request {method} {path!r}: want '<METHOD> /path' or 'WEBSOCKET /path' (the scenario's "
                "own `request` is the default only when it is one)"
            )
        for key in ("healthy", "symptom"):
            if not isinstance(block.get(key), dict) or not block[key]:
                raise ValueError(f"{key} must be a table of fields and matchers")
        return cls(
            method=method,
            path=path,
            healthy=block["healthy"],
            symptom=block["symptom"],
            seen=block.get("seen", "{status}"),
            via_http=block.get("via") == "http",
            headers=block.get("headers", {}),
            body_mib=float(block.get("body_mib", 0)),
            body_kib=float(block.get("body_kib", 0)),
            timeout_s=float(block.get("timeout_s", 0)),
            send=block.get("send"),
            idle_s=float(block.get("idle_s", 0)),
        )

    def _names(self) -> set[str]:
        return set(self.healthy) | set(self.symptom) | set(PLACEHOLDER.findall(self.seen))

    def answer(self, endpoint: Endpoint) -> dict[str, object]:
        """Make the request; the answer as the fields matchers and ``seen`` name."""
        if self.method == WEBSOCKET:
            return self._websocket(endpoint)
        body: Iterable[bytes] | None = None
        length = None
        if self.body_mib or self.body_kib:
            length = int(self.body_mib * probe.MIB + self.body_kib * 1024)
            body = probe.pattern_body(length)
        if self.via_http and endpoint.http_url is None:
            return {"status": "no plain-HTTP entry point"}  # nothing to observe: neither verdict
        timeout = self.timeout_s or probe.TIMEOUT + self.body_mib * SECONDS_PER_BODY_MIB
        try:
            reply = probe.request(
                endpoint,
                self.method,
                self.path,
                headers=self.headers,
                body=body,
                length=length,
                base=endpoint.http_url if self.via_http else None,
                timeout=timeout,
            )
        except TimeoutError:
            return {"status": "no answer", "content_type": f"(none within {timeout:g} s)"}
        fields: dict[str, object] = {
            "status": reply.status,
            "location": normal_url(reply.location) or None,
            "location_host": urlsplit(reply.location).netloc.lower() if reply.location else None,
            "content_type": reply.content_type,
            **{f"header.{name}": value for name, value in reply.headers.items()},
        }
        if any(name.startswith("json.") for name in self._names()):
            fields.update(_json_fields("json", reply.json()))
        return fields

    def _websocket(self, endpoint: Endpoint) -> dict[str, object]:
        try:
            handshake, conn = probe.websocket(endpoint, self.path)
        except OSError as error:
            return {"status": f"no answer ({type(error).__name__})"}
        fields: dict[str, object] = {"status": handshake.status}
        if conn is None:
            return fields
        with conn:
            conn.settimeout(REPLY_TIMEOUT_S)
            if any(name.startswith("message.") for name in self._names()):
                opcode, payload = conn.recv()
                if opcode == wsclient.OP_TEXT:
                    try:
                        fields.update(_json_fields("message", json.loads(payload)))
                    except ValueError:
                        fields["message"] = payload.decode(errors="replace")
            if self.send is not None:
                fields.update(self._reply(conn, self.send))
        return fields

    def _reply(self, conn: wsclient.WebSocket, text: str) -> dict[str, object]:
        time.sleep(self.idle_s)
        try:
            conn.send_text(text)
            opcode, payload = conn.recv()
        except TimeoutError:
            # A hang is not a close: neither this symptom nor a healthy echo.
            return {
                "reply": "silence",
                "reply_detail": f"neither an echo nor a close within {REPLY_TIMEOUT_S:g} s",
            }
        except OSError as error:
            return {"reply": "dropped", "reply_detail": f"the connection dropped ({type(error).__name__})"}
        if opcode == wsclient.OP_CLOSE:
            code = wsclient.close_code(payload)
            return {"reply": "close", "reply_detail": f"closed instead of the echo (close frame {code})"}
        echoed = payload.decode(errors="replace")
        return {"reply": "echo" if echoed == text else "other", "reply_detail": f"echo received: {echoed!r}"}

    def observe(self, endpoint: Endpoint) -> Observation:
        values = endpoint_values(endpoint)
        answer = self.answer(endpoint)
        symptom = all(matches(spec, answer.get(name), values) for name, spec in self.symptom.items())
        healthy = all(matches(spec, answer.get(name), values) for name, spec in self.healthy.items())
        return Observation(classify(symptom, healthy), fill(self.seen, {**values, **answer}))


def observe_all(declared: Iterable[Check], endpoint: Endpoint) -> Observation:
    """Several checks as one: the symptom when every check shows it, absent when every one is
    healthy, neither otherwise."""
    observations = [check.observe(endpoint) for check in declared]
    if not observations:
        raise ValueError("no check declared")
    verdicts = {o.present for o in observations}
    present = verdicts.pop() if len(verdicts) == 1 else None
    return Observation(present, "; ".join(o.seen for o in observations))
