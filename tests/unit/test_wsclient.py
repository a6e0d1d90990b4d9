"""The lab's raw websocket client (labctl.wsclient): handshake and frame codec, no network."""

from __future__ import annotations

import pytest

from labctl import wsclient


def test_handshake_accept_key_matches_rfc6455_example():
    assert wsclient.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize(
    ("head", "error"),
    [
        (b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "not 101"),
        (b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: wrong\r\n\r\n", "Accept"),
    ],
)
def test_handshake_refused_unless_101_accepts_our_key(head, error):
    with pytest.raises(wsclient.HandshakeError, match=error):
        wsclient.check_handshake(head, "dGhlIHNhbXBsZSBub25jZQ==")


def test_handshake_accepted():
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    head = f"HTTP/1.1 101 Switching Protocols\r\nsec-websocket-accept: {wsclient.accept_key(key)}\r\n\r\n"
    wsclient.check_handshake(head.encode(), key)


@pytest.mark.parametrize("size", [0, 5, 125, 126, 65535, 65536])
def test_masked_frame_round_trips_through_the_header_parser(size):
    payload, mask = bytes(range(256)) * (size // 256) + bytes(size % 256), b"\x01\x02\x03\x04"
    frame = wsclient.encode_frame(wsclient.OP_TEXT, payload, mask)
    head_size = 2 + wsclient.extra_header_size(frame[1])
    opcode, length, got_mask = wsclient.parse_header(frame[:head_size])
    assert (opcode, length, got_mask) == (wsclient.OP_TEXT, size, mask)
    assert frame[0] & 0x80, "FIN bit"
    assert wsclient.apply_mask(frame[head_size:], got_mask) == payload


def test_server_frame_is_unmasked():
    assert wsclient.parse_header(b"\x81\x05") == (wsclient.OP_TEXT, 5, b"")
    assert wsclient.extra_header_size(0x05) == 0


def test_a_refusal_keeps_its_status_and_headers():
    head = b"HTTP/1.1 402 Payment Required\r\nContent-Type: text/html\r\n\r\n"
    answer = wsclient.Handshake.parse(head, "dGhlIHNhbXBsZSBub25jZQ==")
    assert (answer.status, answer.reason, answer.accepted) == (402, "Payment Required", False)
    assert answer.headers == {"content-type": "text/html"}


@pytest.mark.parametrize(("payload", "code"), [(b"\x03\xe8bye", 1000), (b"", wsclient.NO_STATUS)])
def test_close_code(payload, code):
    assert wsclient.close_code(payload) == code
