"""The scenario checks' language (labctl.checks): matchers, placeholders, verdicts. No network."""

from __future__ import annotations

import pytest

from labctl import checks
from labctl.endpoints import Endpoint

pytestmark = pytest.mark.no_stack

TLS = Endpoint("https://localhost:8443", None, "http://localhost:8080")
PLAIN = Endpoint("http://example.com", None, None)
VALUES = checks.endpoint_values(TLS)


@pytest.mark.parametrize(
    ("spec", "value", "holds"),
    [
        (302, 302, True),
        (302, 301, False),
        ([301, 302], 302, True),
        ("https://{host}/landing", "https://localhost:8443/landing", True),
        ({"startswith": "https://{hostname}/"}, "https://localhost/x", True),
        ({"startswith": "https://{hostname}/"}, None, False),
        ({"not": "203.0.113.66"}, "127.0.0.1", True),
        ({"not_in": ["{host}", "{hostname}"]}, "", True),
        ({"not_in": ["{host}", "{hostname}"]}, "localhost", False),
        ({"contains": "upgrade"}, "keep-alive, upgrade", True),
        ({"in": [1, 2]}, 3, False),
    ],
)
def test_matchers(spec, value, holds):
    assert checks.matches(spec, value, VALUES) is holds


def test_an_unknown_matcher_is_refused():
    with pytest.raises(ValueError, match="unknown matcher"):
        checks.matches({"beginswith": "x"}, "x", VALUES)


def test_placeholders_and_missing_fields():
    assert checks.fill("{status} Location: {location}", {"status": 302}) == "302 Location: (none)"
    assert checks.endpoint_values(PLAIN)["scheme"] == "http"
    assert checks.endpoint_values(TLS) | {} == {**VALUES}
    assert (VALUES["scheme"], VALUES["ws_scheme"], VALUES["https_port"], VALUES["http_port"]) == (
        "https",
        "wss",
        "8443",
        "8080",
    )


@pytest.mark.parametrize(
    ("symptom", "healthy", "verdict"),
    [(True, False, True), (False, True, False), (True, True, None), (False, False, None)],
)
def test_a_verdict_needs_one_answer_alone(symptom, healthy, verdict):
    # Both at once (a port-dropping Location on :443 is the right one too) is no verdict.
    assert checks.classify(symptom, healthy) is verdict


@pytest.mark.parametrize(
    "block",
    [
        {"request": "GET /x, then more words", "healthy": {"status": 200}, "symptom": {"status": 500}},
        {"request": "FETCH /x", "healthy": {"status": 200}, "symptom": {"status": 500}},
        {"request": "GET /x", "healthy": {}, "symptom": {"status": 500}},
    ],
)
def test_a_malformed_check_is_refused_when_the_catalogue_loads(block):
    with pytest.raises(ValueError):
        checks.Check.parse(block, "a description, not a request")


@pytest.mark.parametrize(
    ("block", "waits"), [({"body_mib": 2}, 12.0), ({}, 10.0), ({"body_mib": 2, "timeout_s": 3}, 3.0)]
)
def test_a_body_s_wait_grows_with_its_size_not_a_flat_minute(monkeypatch, block, waits):
    """An app that never answers a body (connection-upgrade-always) costs a check its timeout:
    probe.TIMEOUT plus a second per MiB, or the check's own ``timeout_s``."""
    asked = []

    def never_answered(*_args, timeout, **_kwargs):
        asked.append(timeout)
        raise TimeoutError

    monkeypatch.setattr(checks.probe, "request", never_answered)
    spec = {**block, "healthy": {"status": 201}, "symptom": {"status": 413}}
    check = checks.Check.parse(spec, "PUT /upload/x")
    assert check.answer(TLS) == {"status": "no answer", "content_type": f"(none within {waits:g} s)"}
    assert asked == [waits]
