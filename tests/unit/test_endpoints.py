"""Where the tools connect (labctl.endpoints): LAB_URL, LAB_HTTP_URL and their defaults."""

from __future__ import annotations

import pytest

from labctl import endpoints

pytestmark = pytest.mark.no_stack


@pytest.mark.parametrize(
    ("url", "http_url"),
    [
        ("https://localhost:8443", "http://localhost:{http_port}"),
        ("https://[::1]:8443", "http://[::1]:{http_port}"),  # an IPv6 address keeps its brackets
        ("https://example.com", "http://example.com"),
        ("https://[2001:db8::1]", "http://[2001:db8::1]"),
        ("https://example.com:8443", None),  # behind a port mapping: unknown, LAB_HTTP_URL says
    ],
)
def test_the_plain_http_entry_point_follows_lab_url(
    monkeypatch: pytest.MonkeyPatch, url: str, http_url: str | None
) -> None:
    monkeypatch.setenv("LAB_URL", url)
    monkeypatch.delenv("LAB_HTTP_URL", raising=False)
    monkeypatch.delenv("LAB_CA", raising=False)
    endpoint = endpoints.from_env()
    expected = http_url.format(http_port=endpoints.http_port()) if http_url else None
    assert endpoint.http_url == expected
    assert endpoint.address() == (endpoint.hostname, endpoint.port)
