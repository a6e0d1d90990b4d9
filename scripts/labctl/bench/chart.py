"""The bench's PNG chart, drawn by matplotlib: one panel per figure, stacked.

A panel is anything with a ``height`` (inches) and a ``draw(ax)``: today bar groups (measured
bars in blue beside grey, hatched references, red ticks at the goals) and the deploy timeline.
matplotlib lives in .venv, while scripts/labctl must import with the standard library alone (it
creates the venv): matplotlib is imported only when drawing, which the bench does from .venv.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from .. import traffic

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.axes import Axes

MEASURED = "#3465a4"
REFERENCE = "#aaaaaa"
GOAL = "#cc0000"
WS_CLOSED, WS_BACK = "#f57900", "#4e9a06"
WIDTH_IN, DPI = 10.4, 100  # 1040 px wide
TITLE_IN = 0.6  # room for the figure's title above the first panel
# Right of each panel, where it hides no bar or line (constrained layout makes room for it).


def legend_beside(ax: Axes, handles: list[Artist] | None = None, x: float = 1.01) -> None:
    """The legend right of the panel, outside the plot area, so it never covers a bar (``x``
    further right past a second y axis)."""
    extra = {} if handles is None else {"handles": handles}
    ax.legend(loc="upper left", bbox_to_anchor=(x, 1.0), fontsize="small", frameon=False, **extra)


class Panel(Protocol):
    @property
    def height(self) -> float: ...

    def draw(self, ax: Axes) -> None: ...


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    text: str  # printed after the bar
    reference: bool = False  # drawn grey: what the measured bars are compared with
    goal: float | None = None  # a red tick at this value


@dataclass(frozen=True)
class Group:
    """Horizontal bars on one axis of their own: each group is scaled to its largest value or goal."""

    title: str
    bars: tuple[Bar, ...]

    @property
    def height(self) -> float:
        return 0.9 + 0.4 * len(self.bars)

    def draw(self, ax: Axes) -> None:
        from matplotlib.lines import Line2D
        from matplotlib.patches import Patch

        rows = range(len(self.bars))
        ax.barh(
            rows,
            [bar.value for bar in self.bars],
            height=0.6,
            color=[REFERENCE if bar.reference else MEASURED for bar in self.bars],
            hatch=["//" if bar.reference else "" for bar in self.bars],
            edgecolor="white",
        )
        for row, bar in zip(rows, self.bars, strict=True):
            if bar.goal is not None:
                ax.vlines(bar.goal, row - 0.42, row + 0.42, colors=GOAL, linewidth=2.5)
            # On a white ground above the tick: a goal just past the bar cannot strike the value out.
            ax.annotate(
                bar.text,
                (bar.value, row),
                xytext=(4, 0),
                textcoords="offset points",
                va="center",
                bbox={"boxstyle": "square,pad=0.15", "facecolor": "white", "edgecolor": "none"},
            )
        ax.set_yticks(rows, [bar.label for bar in self.bars])
        ax.invert_yaxis()  # first bar on top, as listed
        top = max([bar.value for bar in self.bars] + [bar.goal or 0 for bar in self.bars]) or 1
        ax.set_xlim(0, top * 1.3)  # room for the value labels right of the longest bar
        ax.set_title(self.title, loc="left", fontweight="bold")
        ax.spines[["top", "right"]].set_visible(False)
        legend: list[Artist] = [Patch(color=MEASURED, label="measured")]
        if any(bar.reference for bar in self.bars):
            legend.append(Patch(facecolor=REFERENCE, hatch="//", edgecolor="white", label="reference"))
        if any(bar.goal is not None for bar in self.bars):
            legend.append(Line2D([], [], color=GOAL, linewidth=2.5, label="goal"))
        legend_beside(ax, legend)


@dataclass(frozen=True)
class Timeline:
    """Requests served and failed per time bin (a deploy under load), as steps over time; with
    websockets closed and reconnected per bin on a second axis, and the deploy's steps marked."""

    title: str
    served: tuple[int, ...]
    failed: tuple[int, ...]
    bin_s: float = 0.25
    closed: tuple[int, ...] = ()  # websockets closed by the server, per bin
    reconnected: tuple[int, ...] = ()
    marks: tuple[tuple[float, str], ...] = ()  # (seconds, what happened then)

    def __post_init__(self) -> None:
        if not self.served or len(self.served) != len(self.failed):
            raise ValueError(f"a timeline needs as many failed as served bins, at least one: {self}")
        if any(len(ws) not in (0, len(self.served)) for ws in (self.closed, self.reconnected)):
            raise ValueError("websocket bins, when given, must be as many as the request bins")

    @classmethod
    def from_recording(cls, recording: traffic.Recording, title: str) -> Timeline:
        """A load's recording (labctl.traffic), binned; its notes become the marks."""
        bins = recording.bins()
        return cls(
            title,
            served=tuple(b.served for b in bins),
            failed=tuple(b.failed for b in bins),
            bin_s=traffic.BIN_S,
            closed=tuple(sum(b.closed.values()) for b in bins),
            reconnected=tuple(b.reconnected for b in bins),
            marks=tuple((event.t, event.detail[:40]) for event in recording.of(traffic.NOTE)),
        )

    @property
    def height(self) -> float:
        return 3.0

    def draw(self, ax: Axes) -> None:
        edges = [index * self.bin_s for index in range(len(self.served) + 1)]
        ax.stairs(self.served, edges, baseline=None, color=MEASURED, linewidth=1.5, label="served")
        ax.stairs(self.failed, edges, color=GOAL, fill=True, alpha=0.5, label="failed")
        ax.set_xlabel("seconds")
        ax.set_ylabel(f"requests per {self.bin_s * 1000:g} ms")
        ax.set_ylim(bottom=0)
        ax.set_title(self.title, loc="left", fontweight="bold")
        ax.spines[["top", "right"]].set_visible(False)
        handles, _ = ax.get_legend_handles_labels()
        legend_x = 1.01
        if self.closed or self.reconnected:
            ws = ax.twinx()
            if self.closed:
                ws.stairs(self.closed, edges, color=WS_CLOSED, linewidth=1.2, label="websockets closed")
            if self.reconnected:
                ws.stairs(self.reconnected, edges, color=WS_BACK, linewidth=1.2, linestyle="--",
                          label="websockets reconnected")  # fmt: skip
            ws.set_ylabel("websockets per bin")
            ws.set_ylim(bottom=0, top=max([*self.closed, *self.reconnected, 1]) * 1.5)
            ws.spines[["top"]].set_visible(False)
            handles += ws.get_legend_handles_labels()[0]
            legend_x = 1.09  # past the websockets' axis and its label
        for seconds, text in self.marks:
            ax.axvline(seconds, color=REFERENCE, linewidth=0.8, linestyle=":")
            ax.annotate(text, (seconds, 1.0), xycoords=("data", "axes fraction"), rotation=90,
                        va="top", ha="right", fontsize="x-small", color="#555555")  # fmt: skip
        legend_beside(ax, handles, legend_x)


def render(title: str, panels: Sequence[Panel]) -> bytes:
    """The panels stacked top to bottom under ``title``, as PNG bytes."""
    # A Figure on an Agg canvas, not pyplot: no global state, no GUI backend, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    heights = [panel.height for panel in panels]
    figure = Figure(figsize=(WIDTH_IN, TITLE_IN + sum(heights or [1.0])), dpi=DPI, layout="constrained")
    figure.suptitle(title, x=0.01, ha="left", fontweight="bold")
    if panels:
        axes = figure.subplots(len(panels), 1, squeeze=False, height_ratios=heights)[:, 0]
        for panel, ax in zip(panels, axes, strict=True):
            panel.draw(ax)
    else:
        figure.text(0.5, 0.4, "no section produced a figure", ha="center")
    out = io.BytesIO()
    FigureCanvasAgg(figure).print_png(out)
    return out.getvalue()
