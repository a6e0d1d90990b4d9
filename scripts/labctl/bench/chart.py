"""The bench's PNG chart, drawn with the standard library (zlib) and a built-in 5x7 font: no
plotting package to install for a handful of labelled bars."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

Color = tuple[int, int, int]
WHITE: Color = (255, 255, 255)
INK: Color = (30, 30, 30)
MEASURED: Color = (52, 101, 164)
REFERENCE: Color = (170, 170, 170)
GOAL: Color = (204, 0, 0)

# Rows top to bottom, "#" is ink. Lowercase text is drawn in capitals.
FONT = {
    "A": ".###. #...# #...# ##### #...# #...# #...#",
    "B": "####. #...# #...# ####. #...# #...# ####.",
    "C": ".###. #...# #.... #.... #.... #...# .###.",
    "D": "####. #...# #...# #...# #...# #...# ####.",
    "E": "##### #.... #.... ####. #.... #.... #####",
    "F": "##### #.... #.... ####. #.... #.... #....",
    "G": ".###. #...# #.... #.### #...# #...# .####",
    "H": "#...# #...# #...# ##### #...# #...# #...#",
    "I": ".###. ..#.. ..#.. ..#.. ..#.. ..#.. .###.",
    "J": "..### ...#. ...#. ...#. ...#. #..#. .##..",
    "K": "#...# #..#. #.#.. ##... #.#.. #..#. #...#",
    "L": "#.... #.... #.... #.... #.... #.... #####",
    "M": "#...# ##.## #.#.# #.#.# #...# #...# #...#",
    "N": "#...# #...# ##..# #.#.# #..## #...# #...#",
    "O": ".###. #...# #...# #...# #...# #...# .###.",
    "P": "####. #...# #...# ####. #.... #.... #....",
    "Q": ".###. #...# #...# #...# #.#.# #..#. .##.#",
    "R": "####. #...# #...# ####. #.#.. #..#. #...#",
    "S": ".#### #.... #.... .###. ....# ....# ####.",
    "T": "##### ..#.. ..#.. ..#.. ..#.. ..#.. ..#..",
    "U": "#...# #...# #...# #...# #...# #...# .###.",
    "V": "#...# #...# #...# #...# #...# .#.#. ..#..",
    "W": "#...# #...# #...# #.#.# #.#.# #.#.# .#.#.",
    "X": "#...# #...# .#.#. ..#.. .#.#. #...# #...#",
    "Y": "#...# #...# .#.#. ..#.. ..#.. ..#.. ..#..",
    "Z": "##### ....# ...#. ..#.. .#... #.... #####",
    "0": ".###. #...# #..## #.#.# ##..# #...# .###.",
    "1": "..#.. .##.. ..#.. ..#.. ..#.. ..#.. .###.",
    "2": ".###. #...# ....# ...#. ..#.. .#... #####",
    "3": "##### ...#. ..#.. ...#. ....# #...# .###.",
    "4": "...#. ..##. .#.#. #..#. ##### ...#. ...#.",
    "5": "##### #.... ####. ....# ....# #...# .###.",
    "6": "..##. .#... #.... ####. #...# #...# .###.",
    "7": "##### ....# ...#. ..#.. .#... .#... .#...",
    "8": ".###. #...# #...# .###. #...# #...# .###.",
    "9": ".###. #...# #...# .#### ....# ...#. .##..",
    " ": "..... ..... ..... ..... ..... ..... .....",
    ".": "..... ..... ..... ..... ..... .##.. .##..",
    ",": "..... ..... ..... ..... .##.. ..#.. .#...",
    ":": "..... .##.. .##.. ..... .##.. .##.. .....",
    "/": "..... ....# ...#. ..#.. .#... #.... .....",
    "%": "##... ##..# ...#. ..#.. .#... #..## ...##",
    "(": "...#. ..#.. .#... .#... .#... ..#.. ...#.",
    ")": ".#... ..#.. ...#. ...#. ...#. ..#.. .#...",
    "-": "..... ..... ..... ##### ..... ..... .....",
    "<": "...#. ..#.. .#... #.... .#... ..#.. ...#.",
    ">": ".#... ..#.. ...#. ....# ...#. ..#.. .#...",
    "=": "..... ..... ##### ..... ##### ..... .....",
    "_": "..... ..... ..... ..... ..... ..... #####",
    "+": "..... ..#.. ..#.. ##### ..#.. ..#.. .....",
}
SCALE = 2
CHAR_W, CHAR_H = 6 * SCALE, 8 * SCALE  # glyph plus one pixel of spacing
WIDTH, MARGIN, LABEL_W, BAR_H, ROW_H = 1040, 16, 24 * CHAR_W, 16, 24
TEXT_CHARS = 22  # room kept right of the longest bar for its value


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # printed after the bar
    reference: bool = False  # drawn grey: what the measured bars are compared with
    goal: float | None = None  # a red tick at this value


@dataclass(frozen=True)
class Group:
    title: str
    bars: tuple[Bar, ...]


class Canvas:
    def __init__(self, width: int, height: int) -> None:
        self.width, self.height = width, height
        self.pixels = bytearray(WHITE * (width * height))

    def rect(self, x: int, y: int, w: int, h: int, color: Color) -> None:
        x0, x1 = max(0, x), min(self.width, x + w)
        for row in range(max(0, y), min(self.height, y + h)):
            start = (row * self.width + x0) * 3
            self.pixels[start : start + (x1 - x0) * 3] = bytes(color) * (x1 - x0)

    def text(self, x: int, y: int, text: str, color: Color = INK) -> None:
        for index, char in enumerate(text.upper()):
            rows = FONT.get(char, FONT[" "]).split()
            for row_no, row in enumerate(rows):
                for col_no, cell in enumerate(row):
                    if cell == "#":
                        self.rect(
                            x + index * CHAR_W + col_no * SCALE, y + row_no * SCALE, SCALE, SCALE, color
                        )

    def png(self) -> bytes:
        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack("!I", len(data)) + kind + data + struct.pack("!I", zlib.crc32(kind + data))

        stride = self.width * 3
        # Filter type 0 (none) before each row.
        raw = b"".join(b"\x00" + self.pixels[row * stride : (row + 1) * stride] for row in range(self.height))
        header = struct.pack("!IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return (
            b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b"")
        )


def render(title: str, groups: list[Group]) -> bytes:
    """Horizontal bars, each group scaled to its own largest value (or goal)."""
    height = MARGIN * 2 + CHAR_H * 2 + sum(CHAR_H + 8 + ROW_H * len(g.bars) + 12 for g in groups)
    canvas = Canvas(WIDTH, height)
    canvas.text(MARGIN, MARGIN, title)
    bar_x = MARGIN + LABEL_W
    bar_max_w = WIDTH - bar_x - MARGIN - TEXT_CHARS * CHAR_W
    y = MARGIN + CHAR_H * 2
    for group in groups:
        canvas.text(MARGIN, y, group.title)
        y += CHAR_H + 8
        top = max([b.value for b in group.bars] + [b.goal or 0 for b in group.bars]) or 1
        for bar in group.bars:
            canvas.text(MARGIN + CHAR_W, y + (BAR_H - 7 * SCALE) // 2, bar.label)
            width = max(1, round(bar.value / top * bar_max_w))
            canvas.rect(bar_x, y, width, BAR_H, REFERENCE if bar.reference else MEASURED)
            text_x = bar_x + width + 6
            if bar.goal is not None:
                goal_x = bar_x + round(bar.goal / top * bar_max_w)
                canvas.rect(goal_x - 1, y - 3, 3, BAR_H + 6, GOAL)
                if text_x - 4 <= goal_x <= text_x + len(bar.text) * CHAR_W:  # the tick would cross the text
                    text_x = goal_x + 8
            canvas.text(text_x, y + (BAR_H - 7 * SCALE) // 2, bar.text[:TEXT_CHARS])
            y += ROW_H
        y += 12
    return canvas.png()
