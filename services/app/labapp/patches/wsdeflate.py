"""permessage-deflate (RFC 7692) for gevent-websocket, which has no extensions: LAB_WS_DEFLATE.

Off by default: a connection that uses it holds a zlib compressor (about 100 KiB at MEM_LEVEL 5)
and a decompressor (about 40 KiB), made at its first compressed message. When on, the
handshake's 101 (this module's patch of the handler's ``start_response``, whichever upgrade
answers it) accepts the first permessage-deflate offer it can honour (``negotiate``), the reader
(``wsread``) inflates messages whose first frame has RSV1 set, and the writer (``wssend``)
compresses every text and binary message.

Offers and answers (RFC 7692 section 7.1): ``server_no_context_takeover`` is honoured (a fresh
compressor per message) and said back; ``client_no_context_takeover`` is said back (the
decompressor is kept either way: a client that resets its window still writes a stream it
decodes); ``server_max_window_bits=N`` compresses with N bits, except 8, which zlib cannot
write (the offer is declined); ``client_max_window_bits`` needs no answer (the decompressor
reads any window up to 15 bits). An offer with an unknown, repeated or malformed parameter is
declined; with none accepted the connection goes on uncompressed.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from geventwebsocket.exceptions import ProtocolError

import labsettings

from . import Patch, stock

NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"  # what a sync flush ends with; a sender leaves it out (section 7.2.1)
_FLAGS = {"server_no_context_takeover", "client_no_context_takeover"}
_BITS = {"server_max_window_bits", "client_max_window_bits"}
# RFC 7692's RSV1, which gevent-websocket's Header calls RSV0_MASK.
RSV1 = 0x40
_STATE = "_lab_deflate"
# zlib's memLevel for the compressor: 5 (the `websockets` library's choice) instead of 8 holds
# 64 KiB of hash tables instead of 512 for about the same ratio on messages.
MEM_LEVEL = 5


@dataclass
class Deflate:
    """One connection's agreement and its zlib streams (made when first needed)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_window_bits: int = 15
    _compressor: Any = None
    _decompressor: Any = None

    def answer(self) -> str:
        """The Sec-WebSocket-Extensions value of the 101."""
        params = [NAME]
        if self.server_no_context_takeover:
            params.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            params.append("client_no_context_takeover")
        if self.server_window_bits != 15:
            params.append(f"server_max_window_bits={self.server_window_bits}")
        return "; ".join(params)

    def compress(self, pieces: Iterable[Any]) -> list[bytes]:
        """One message's payload, compressed (the sync flush's tail left out)."""
        if self._compressor is None or self.server_no_context_takeover:
            bits = -self.server_window_bits  # negative: raw deflate, no zlib header
            self._compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, bits, MEM_LEVEL)
        out = [self._compressor.compress(piece) for piece in pieces]
        out.append(self._compressor.flush(zlib.Z_SYNC_FLUSH))
        whole = b"".join(out)
        if whole.endswith(_TAIL):
            whole = whole[: -len(_TAIL)]
        return [whole or b"\x00"]  # an empty message compresses to one empty stored block's byte

    def inflate(self, piece: bytes, limit: int) -> Iterator[bytes]:
        """What ``piece`` of a compressed message inflates to, ``limit`` bytes at most at a time."""
        if self._decompressor is None:
            self._decompressor = zlib.decompressobj(-15)
        try:
            out = self._decompressor.decompress(piece, limit)
            while out:
                yield out
                out = self._decompressor.decompress(self._decompressor.unconsumed_tail, limit)
        except zlib.error as error:
            raise ProtocolError(f"invalid deflate data: {error}") from None

    def end_of_message(self, limit: int) -> Iterator[bytes]:
        """The rest of the message: the sync flush's tail the sender left out, unless it ended
        its stream (a final block), after which the next message starts a new one."""
        if self._decompressor is not None and self._decompressor.eof:
            self._decompressor = None
            return
        yield from self.inflate(_TAIL, limit)


def _parse(offer: str) -> tuple[str, dict[str, str | None]] | None:
    name, *raw = (part.strip() for part in offer.split(";"))
    params: dict[str, str | None] = {}
    for param in raw:
        key, _, value = (part.strip() for part in param.partition("="))
        if key in params:
            return None
        params[key] = value.strip('"') if value else None
    return name.lower(), params


def _agreement(params: dict[str, str | None]) -> Deflate | None:
    deflate = Deflate()
    for key, value in params.items():
        if key in _FLAGS:
            if value is not None:
                return None
            setattr(deflate, key, True)
        elif key in _BITS:
            if value is None and key == "client_max_window_bits":
                continue  # the client may be told a size; it needs not be
            if value is None or not value.isdigit() or not 8 <= int(value) <= 15:
                return None
            if key == "server_max_window_bits":
                if int(value) == 8:
                    return None  # zlib writes 9 bits at least: 8 cannot be honoured
                deflate.server_window_bits = int(value)
        else:
            return None
    return deflate


def negotiate(header: str) -> Deflate | None:
    """The agreement for the first permessage-deflate offer in ``header`` that can be honoured."""
    for offer in header.split(","):
        parsed = _parse(offer)
        if parsed is not None and parsed[0] == NAME and (deflate := _agreement(parsed[1])) is not None:
            return deflate
    return None


def of(handler: Any) -> Deflate | None:
    """The connection's agreement, if it made one."""
    return getattr(handler, _STATE, None)


def agree(handler: Any, deflate: Deflate) -> None:
    setattr(handler, _STATE, deflate)


START_RESPONSE = "geventwebsocket.handler:WebSocketHandler.start_response"


def start_response_agreeing_deflate(
    self: Any, status: str, headers: list[tuple[str, str]], exc_info: Any = None
) -> Any:
    """The handler's start_response; a 101 to a permessage-deflate offer it can honour says the
    agreement (Sec-WebSocket-Extensions) and keeps it for the connection's reader and writer."""
    if status.startswith("101") and (offers := self.environ.get("HTTP_SEC_WEBSOCKET_EXTENSIONS")):
        deflate = negotiate(offers)
        if deflate is not None:
            agree(self, deflate)
            headers = [*headers, ("Sec-WebSocket-Extensions", deflate.answer())]
    return stock(START_RESPONSE)(self, status, headers, exc_info)


PATCHES = (
    Patch(
        target=START_RESPONSE,
        replacement=start_response_agreeing_deflate,
        why="no websocket extension: every message sent as it is, however well it would compress",
        upstream="gevent-websocket (jgelens/gevent-websocket): no permessage-deflate (RFC 7692); "
        "unreleased since 0.10.1",
        distribution="gevent-websocket",
        version="0.10.1",
        digest="f7acf7d65444",
        setting=labsettings.WS_DEFLATE,
    ),
)
