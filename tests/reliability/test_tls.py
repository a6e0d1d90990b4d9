"""TLS as nginx serves it (snippets/tls.conf): versions, ciphers, ALPN, the names the
certificate verifies for, and HSTS (snippets/hsts.conf, off by default)."""

from __future__ import annotations

import socket
import ssl
import subprocess
import warnings

import pytest
import requests

from labctl import nginx, paths
from support.lab import Lab

from . import report

# TLS 1.2 suites nginx must refuse: CBC (Lucky13-style padding oracles), SHA-1 MACs, no forward
# secrecy, NULL encryption, anonymous key exchange, non-AES/ChaCha legacy ciphers.
WEAK_TLS12_CIPHERS = [
    "ECDHE-ECDSA-AES128-SHA",
    "ECDHE-ECDSA-AES256-SHA",
    "ECDHE-ECDSA-AES128-SHA256",
    "ECDHE-ECDSA-AES256-SHA384",
    "ECDHE-ECDSA-NULL-SHA",
    "ECDHE-ECDSA-CAMELLIA128-SHA256",
    "ECDHE-ECDSA-AES128-CCM",
    "ECDHE-ECDSA-ARIA128-GCM-SHA256",
    "AES128-SHA",
    "AES128-GCM-SHA256",
    "AECDH-AES128-SHA",
]


def context(lab: Lab, version: ssl.TLSVersion | None = None, ciphers: str | None = None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(lab.ca))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TLSv1/1.1 are deprecated: that's the point
        if version is not None:
            ctx.minimum_version = ctx.maximum_version = version
        # SECLEVEL=0 lets this client offer what OpenSSL 3 would otherwise refuse to send, so a
        # failure is the server's refusal (an alert), not the client's.
        ctx.set_ciphers((ciphers or "ALL") + ":@SECLEVEL=0")
    return ctx


def handshake(
    lab: Lab, ctx: ssl.SSLContext, address: str = "127.0.0.1", name: str = "localhost"
) -> ssl.SSLSocket:
    port = int(lab.host.rsplit(":", 1)[1])
    sock = socket.create_connection((address, port), timeout=10)
    return ctx.wrap_socket(sock, server_hostname=name)


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_old_tls_versions_are_refused(lab: Lab, version: str) -> None:
    with pytest.raises(ssl.SSLError) as refused:
        handshake(lab, context(lab, getattr(ssl.TLSVersion, version))).close()
    report.tally("TLS handshakes refused", version)
    assert "PROTOCOL_VERSION" in refused.value.reason, (
        f"{version} failed, but not by the server's protocol_version alert: {refused.value}"
    )


@pytest.mark.parametrize("version", ["TLSv1_2", "TLSv1_3"])
def test_current_tls_versions_with_aead_forward_secret_ciphers(lab: Lab, version: str) -> None:
    with handshake(lab, context(lab, getattr(ssl.TLSVersion, version))) as tls:
        name, protocol, _bits = tls.cipher()
    report.tally("TLS handshakes accepted", version)
    assert protocol == version.replace("_", "."), protocol
    assert "GCM" in name or "CHACHA20" in name, f"{version} negotiated a non-AEAD cipher {name}"
    if version == "TLSv1_2":
        assert name.startswith("ECDHE-"), f"TLS 1.2 negotiated {name} without forward secrecy"


@pytest.mark.parametrize("cipher", WEAK_TLS12_CIPHERS)
def test_weak_cipher_is_refused(lab: Lab, cipher: str) -> None:
    try:
        ctx = context(lab, ssl.TLSVersion.TLSv1_2, cipher)
    except ssl.SSLError:
        pytest.fail(f"this machine's OpenSSL cannot offer {cipher}: replace it in WEAK_TLS12_CIPHERS")
    with pytest.raises(ssl.SSLError, match="HANDSHAKE_FAILURE"):
        handshake(lab, ctx).close()
    report.tally("TLS handshakes refused", "weak cipher")


@pytest.mark.parametrize(
    ("offered", "selected"), [(["h2", "http/1.1"], "h2"), (["http/1.1"], "http/1.1")], ids=["h2", "http1.1"]
)
def test_alpn(lab: Lab, offered: list[str], selected: str) -> None:
    ctx = lab.ssl_context()
    ctx.set_alpn_protocols(offered)
    with handshake(lab, ctx) as tls:
        assert tls.selected_alpn_protocol() == selected, f"ALPN picked {tls.selected_alpn_protocol()}"


@pytest.mark.parametrize(
    ("address", "name", "url_host"),
    [
        ("127.0.0.1", "localhost", "localhost"),
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),
        pytest.param(
            "::1",
            "::1",
            "[::1]",
            # Where IPv6 is off (Docker's default for containers) nginx listens on 127.0.0.1 only.
            marks=pytest.mark.skipif(not nginx.ipv6_loopback(), reason="this host has no IPv6 loopback"),
        ),
    ],
    ids=["localhost", "127.0.0.1", "::1"],
)
def test_certificate_verifies_for_each_lab_name(lab: Lab, address: str, name: str, url_host: str) -> None:
    """Over IPv6 too: natively nginx listens on [::1] when the host has IPv6 (nginx.loopback_listen)."""
    with handshake(lab, lab.ssl_context(), address, name) as tls:
        assert tls.version() in {"TLSv1.2", "TLSv1.3"}
    port = lab.host.rsplit(":", 1)[1]
    response = lab.session().get(f"https://{url_host}:{port}/debug/request", timeout=10)
    assert response.status_code == 200, f"https://{url_host}:{port} is not served: {response.status_code}"
    assert response.json()["host"] == f"{url_host}:{port}"


def test_hsts_is_off_by_default(http: requests.Session, lab: Lab) -> None:
    response = http.get(lab.url + "/healthz", timeout=10)
    assert "Strict-Transport-Security" not in response.headers, (
        "HSTS is sent by default: on localhost it would pin every localhost port in the browser "
        "(LAB_HSTS_MAX_AGE defaults to 0)"
    )


def test_hsts_setting_renders_a_valid_header(tmp_path) -> None:
    env = {**nginx.native_env(), "LAB_HSTS_MAX_AGE": "31536000"}
    out = tmp_path / "conf"
    subprocess.run(["sh", str(paths.SCRIPTS / "nginx-ctl.sh"), "render", str(out)], env=env, check=True)
    assert (
        'add_header Strict-Transport-Security "max-age=31536000" always;'
        in (out / "snippets" / "hsts.conf").read_text()
    )
    checked = subprocess.run(
        [env["LAB_NGINX_BIN"], "-t", "-q", "-p", f"{paths.NGINX_PREFIX}/", "-c", str(out / "nginx.conf")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, f"nginx -t refuses the config with HSTS on: {checked.stderr}"
