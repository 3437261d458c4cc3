"""The Impact page's two charts, drawn with pyqtgraph (MIT): reward per run over time, and lift per lesson.

Hover and click are resolved here from the pointer's position (nearest point, nearest marker, the
row under it), so one tooltip is shown at a time and tests can click where a point is drawn.
"""
from __future__ import annotations

import html
import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QFont

from lessonlab.core import formatting

pg.setConfigOptions(antialias=True)

# Colour-blind-safe (Okabe-Ito) series colours, dark enough on white.
SERIES_COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
OBSERVED_COLOR = "#0072B2"
ABLATION_COLOR = "#D55E00"
EVENT_COLORS = {"created": "#009E73", "accepted": "#009E73", "restored": "#009E73", "edited": "#0072B2",
                "merged": "#0072B2", "retired": "#C62828", "rejected": "#9E9E9E"}
EVENT_SIGNS = {"created": "+", "accepted": "+", "restored": "+", "edited": "✎", "merged": "✎", "retired": "−",
               "rejected": "×"}
MIXED_COLOR = "#6A1B9A"    # a marker where lessons changed in different ways
MARKER_KEY = [("#009E73", "lesson added"), ("#0072B2", "edited"), ("#C62828", "retired"), ("#9E9E9E", "rejected"),
              (MIXED_COLOR, "several changes")]
POINT_PICK_PX = 10       # a click or hover this close to a point's centre is on it
MARKER_PICK_PX = 6


def _style_plot(item: pg.PlotItem, left: str, bottom: str) -> None:
    """Dark axes and labels on white, no context menu or autoscale button."""
    for side in ("left", "bottom"):
        axis = item.getAxis(side)
        axis.setPen(pg.mkPen("#555"))
        axis.setTextPen(pg.mkPen("#222"))
    item.setLabel("left", left, color="#222")
    item.setLabel("bottom", bottom, color="#222")
    item.showGrid(x=False, y=True, alpha=0.15)
    item.setMenuEnabled(False)
    item.hideButtons()


def short_date(stamp: str | None) -> str:
    """'2026-11-22T14:03:05.123Z' → '11-22 14:03'."""
    if not stamp or len(stamp) < 16:
        return stamp or ""
    return f"{stamp[5:10]} {stamp[11:16]}"


def describe_event(event: dict) -> str:
    """'+ les_ab12 created (active) by human: written by hand'."""
    sign = EVENT_SIGNS.get(event["kind"], "•")
    status = f" ({event['to_status']})" if event.get("to_status") and event["kind"] in ("created", "accepted") else ""
    version = f" v{event['version']}" if event.get("version") and event["kind"] in ("edited", "merged") else ""
    reason = f": {event['reason']}" if event.get("reason") else ""
    return f"{sign} {event['lesson_id']}{version} {event['kind']}{status} by {event['author']}{reason}"


class EventMarker(pg.InfiniteLine):
    """A vertical line where lessons changed between two runs; `events` are what changed."""

    def __init__(self, x: float, events: list[dict]):
        colors = {EVENT_COLORS.get(e["kind"], MIXED_COLOR) for e in events}
        color = colors.pop() if len(colors) == 1 else MIXED_COLOR
        super().__init__(pos=x, angle=90, movable=False,
                         pen=pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine))
        self.events = events
        self.color = color
        counts: dict[str, int] = {}
        for event in events:
            sign = EVENT_SIGNS.get(event["kind"], "•")
            counts[sign] = counts.get(sign, 0) + 1
        self.summary = " ".join(f"{sign}{n}" for sign, n in counts.items())
        self.label = pg.InfLineLabel(self, text=self.summary, position=0.08, anchors=[(0.5, 0), (0.5, 0)],
                                     color=color, fill=pg.mkBrush(255, 255, 255, 220))

    def tip(self) -> str:
        """What changed here, one line per lesson event."""
        lines = [describe_event(e) for e in self.events[:12]]
        if len(self.events) > 12:
            lines.append(f"… and {len(self.events) - 12} more")
        return "Lessons changed here:\n" + "\n".join(lines)


class TimelineChart(pg.PlotWidget):
    """Mean reward of each run in time order, one series per model, ablation arms apart, lesson changes marked."""

    run_clicked = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.plot_item = self.getPlotItem()
        _style_plot(self.plot_item, "mean reward", "runs, oldest → newest (lessons changed at dashed lines)")
        self.plot_item.setYRange(-0.05, 1.05, padding=0)
        self.plot_item.getViewBox().setMouseEnabled(x=True, y=False)
        # The key is HTML for a label above the chart (key_html): a legend inside would hide points.
        self.key: list[tuple[str, str]] = []     # (colour, text)
        self.series: dict[str, pg.PlotDataItem] = {}          # model -> its runs (not ablation arms)
        self.ablation_series: pg.ScatterPlotItem | None = None
        self.markers: list[EventMarker] = []
        self.points: list[tuple[float, float, dict]] = []     # (x, y, run) for every drawn run
        self.scene().sigMouseClicked.connect(self._clicked)
        self.scene().sigMouseMoved.connect(self._moved)
        self.empty_text = pg.TextItem("", color="#666", anchor=(0.5, 0.5))
        self.plot_item.addItem(self.empty_text, ignoreBounds=True)

    def set_runs(self, runs: list[dict], empty_message: str = "No runs of this suite yet.") -> None:
        """Draw these timeline rows (core.impact.timeline), oldest first; x is the run's position (1, 2, …)."""
        for item in [*self.series.values(), *self.markers, self.ablation_series]:
            if item is not None:
                self.plot_item.removeItem(item)
        self.key = []
        self.series, self.markers, self.points, self.ablation_series = {}, [], [], None
        models = list(dict.fromkeys(run["model"] for run in runs))
        for m, model in enumerate(models):
            color = SERIES_COLORS[m % len(SERIES_COLORS)]
            mine = [(i + 1, run) for i, run in enumerate(runs)
                    if run["model"] == model and run["kind"] != "ablation" and run["mean_reward"] is not None]
            xs = np.array([x for x, _run in mine], dtype=float)
            ys = np.array([run["mean_reward"] for _x, run in mine], dtype=float)
            item = pg.PlotDataItem(xs, ys, pen=pg.mkPen(color, width=2), symbol="o", symbolSize=9,
                                   symbolBrush=pg.mkBrush(color), symbolPen=pg.mkPen("w", width=1), name=model)
            self.plot_item.addItem(item)
            self.series[model] = item
            self.key.append((color, f"● {model}"))
            self.points += [(x, run["mean_reward"], run) for x, run in mine]
        arms = [(i + 1, run) for i, run in enumerate(runs) if run["kind"] == "ablation" and run["mean_reward"] is not None]
        if arms:
            self.ablation_series = pg.ScatterPlotItem(
                [x for x, _r in arms], [run["mean_reward"] for _x, run in arms], symbol="d", size=11,
                brush=pg.mkBrush(255, 255, 255), pen=pg.mkPen(ABLATION_COLOR, width=2), name="ablation arm")
            self.plot_item.addItem(self.ablation_series)
            self.points += [(x, run["mean_reward"], run) for x, run in arms]
            self.key.append((ABLATION_COLOR, "◇ ablation arm"))
        for i, run in enumerate(runs):
            if run["events_before"]:
                marker = EventMarker(i + 0.5, run["events_before"])
                self.plot_item.addItem(marker)
                self.markers.append(marker)
        marker_colors = {m.color for m in self.markers}
        for color, text in MARKER_KEY:
            if color in marker_colors:
                self.key.append((color, f"┆ {text}"))
        self._set_ticks(runs)
        n = len(runs)
        self.plot_item.setXRange(0.4, max(n, 1) + 0.6, padding=0)
        self.empty_text.setText("" if n else empty_message)
        self.empty_text.setPos((max(n, 1) + 1) / 2, 0.5)

    def key_html(self) -> str:
        """What the colours and symbols mean, as HTML for a label."""
        return " &nbsp; ".join(f"<span style='color:{color}'>{html.escape(text)}</span>" for color, text in self.key)

    def _set_ticks(self, runs: list[dict]) -> None:
        step = max(1, math.ceil(len(runs) / 10))
        major, last_date = [], None
        for i, run in enumerate(runs):
            if i % step == 0:
                date = short_date(run["created_at"])   # under a run only when it differs from the last one shown
                major.append((i + 1, f"{i + 1}\n{date}" if date != last_date else f"{i + 1}"))
                last_date = date
        minor = [(i + 1, "") for i in range(len(runs)) if i % step]
        self.plot_item.getAxis("bottom").setTicks([major, minor])
        self.plot_item.getAxis("left").setTicks([[(v, f"{v:.2g}") for v in (0, 0.25, 0.5, 0.75, 1)]])

    # --- pointing ------------------------------------------------------------------------------------

    def scene_pos(self, x: float, y: float) -> QPointF:
        """Where the view point (x, y) is drawn, in scene coordinates."""
        return self.plot_item.getViewBox().mapViewToScene(QPointF(x, y))

    def run_at(self, scene_pos: QPointF) -> dict | None:
        """The run whose point is drawn under scene_pos (within a few pixels), or None."""
        best, best_d = None, POINT_PICK_PX
        for x, y, run in self.points:
            p = self.scene_pos(x, y)
            d = math.hypot(p.x() - scene_pos.x(), p.y() - scene_pos.y())
            if d <= best_d:
                best, best_d = run, d
        return best

    def marker_at(self, scene_pos: QPointF) -> EventMarker | None:
        """The lesson-change marker under scene_pos, or None."""
        if not self.plot_item.getViewBox().sceneBoundingRect().contains(scene_pos):
            return None
        for marker in self.markers:
            if abs(self.scene_pos(marker.value(), 0).x() - scene_pos.x()) <= MARKER_PICK_PX:
                return marker
        return None

    def tip_at(self, scene_pos: QPointF) -> str:
        """The tooltip for what is under scene_pos: a run, a lesson change, or nothing."""
        run = self.run_at(scene_pos)
        if run is not None:
            kind = f" · {run['kind']}" if run["kind"] != "run" else ""
            return (f"{run['id']}{kind} · {run['model']}\nstarted {short_date(run['created_at'])}\n"
                    f"mean reward {formatting.reward(run['mean_reward'])} over {run['n_done']} rollouts"
                    f" ({run['n_errors']} errors)\n{run['lessons'] or 0} lessons in its prompt\n"
                    "click to open the run")
        marker = self.marker_at(scene_pos)
        return marker.tip() if marker is not None else ""

    def _moved(self, scene_pos: QPointF) -> None:
        self.plot_item.getViewBox().setToolTip(self.tip_at(scene_pos))

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        run = self.run_at(event.scenePos())
        if run is not None:
            event.accept()
            self.run_clicked.emit(run["id"])


class LiftChart(pg.PlotWidget):
    """One row per lesson: the observational lift as a bar with its 95% interval, the latest ablation apart."""

    lesson_clicked = Signal(str)

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.plot_item = self.getPlotItem()
        _style_plot(self.plot_item, "lesson", "lift in mean reward, with 95% interval")
        self.plot_item.showGrid(x=True, y=False, alpha=0.15)
        # Lifts are small numbers and lesson rows are ids, not quantities: neither axis takes an SI prefix
        # (one lesson spans rows -0.5..0.5, which pyqtgraph would label "lesson (x0.001)").
        for side in ("left", "bottom"):
            self.plot_item.getAxis(side).enableAutoSIPrefix(False)
        view = self.plot_item.getViewBox()
        view.invertY(True)              # the first lesson on top, as in the table beside it
        view.setMouseEnabled(x=False, y=False)
        self.plot_item.addItem(pg.InfiniteLine(pos=0, angle=90, pen=pg.mkPen("#444", width=1)))
        self.highlight = pg.LinearRegionItem(orientation="horizontal", movable=False,
                                             brush=pg.mkBrush(255, 213, 79, 90), pen=pg.mkPen(None))
        self.highlight.setZValue(-10)
        self.highlight.hide()
        self.plot_item.addItem(self.highlight, ignoreBounds=True)
        self.lessons: list = []
        self.bars: pg.BarGraphItem | None = None
        self.estimates: pg.ScatterPlotItem | None = None   # a tick at each observed lift (visible at 0 too)
        self.whiskers: pg.ErrorBarItem | None = None
        self.ablations: pg.ScatterPlotItem | None = None
        self.ablation_whiskers: pg.ErrorBarItem | None = None
        self.notes: list[pg.TextItem] = []
        self.scene().sigMouseClicked.connect(self._clicked)
        self.scene().sigMouseMoved.connect(self._moved)

    def set_lessons(self, lessons: list) -> None:
        """Draw one row per LessonImpact (core.impact.impact_table), in the given order."""
        for item in [self.bars, self.estimates, self.whiskers, self.ablations, self.ablation_whiskers, *self.notes]:
            if item is not None:
                self.plot_item.removeItem(item)
        self.bars = self.estimates = self.whiskers = self.ablations = self.ablation_whiskers = None
        self.notes = []
        self.lessons = list(lessons)
        observed = [(row, lesson.observational) for row, lesson in enumerate(self.lessons)
                    if lesson.observational.enough_data and lesson.observational.lift is not None]
        ablated = [(row, lesson.latest_ablation) for row, lesson in enumerate(self.lessons)
                   if lesson.latest_ablation and lesson.latest_ablation.get("lift") is not None]
        if observed:
            ys = np.array([row - 0.15 for row, _l in observed], dtype=float)
            lift = np.array([lf.lift for _r, lf in observed], dtype=float)
            self.bars = pg.BarGraphItem(x0=np.zeros_like(lift), width=lift, y=ys, height=0.3,
                                        brush=pg.mkBrush(OBSERVED_COLOR), pen=pg.mkPen(OBSERVED_COLOR))
            self.estimates = pg.ScatterPlotItem(lift, ys, symbol="|", size=16, pen=pg.mkPen(OBSERVED_COLOR, width=3))
            self.whiskers = pg.ErrorBarItem(
                x=lift, y=ys, left=lift - np.array([lf.ci_low for _r, lf in observed], dtype=float),
                right=np.array([lf.ci_high for _r, lf in observed], dtype=float) - lift, beam=0.12,
                pen=pg.mkPen("#222", width=1.5))
            self.plot_item.addItem(self.bars)
            self.plot_item.addItem(self.estimates)
            self.plot_item.addItem(self.whiskers)
        if ablated:
            ys = np.array([row + 0.2 for row, _a in ablated], dtype=float)
            lift = np.array([a["lift"] for _r, a in ablated], dtype=float)
            low = np.array([a["ci_low"] if a.get("ci_low") is not None else a["lift"] for _r, a in ablated], dtype=float)
            high = np.array([a["ci_high"] if a.get("ci_high") is not None else a["lift"] for _r, a in ablated],
                            dtype=float)
            self.ablation_whiskers = pg.ErrorBarItem(x=lift, y=ys, left=lift - low, right=high - lift, beam=0.12,
                                                     pen=pg.mkPen(ABLATION_COLOR, width=1.5))
            self.ablations = pg.ScatterPlotItem(lift, ys, symbol="d", size=12, brush=pg.mkBrush(ABLATION_COLOR),
                                                pen=pg.mkPen("w", width=1))
            self.plot_item.addItem(self.ablation_whiskers)
            self.plot_item.addItem(self.ablations)
        ablated_rows = {row for row, _a in ablated}
        for row, lesson in enumerate(self.lessons):
            if not lesson.observational.enough_data:
                text = (f"too little data (~{lesson.observational.more_rollouts or 2} more)"
                        + ("" if row not in ablated_rows else " (observed)"))
                # Centred on 0: the x range is only ±0.29 when nothing else is drawn, too narrow to start at 0.
                note = pg.TextItem(text, color="#777", anchor=(0.5, 0.5))
                note.setFont(QFont(note.textItem.font().family(), 8))
                note.setPos(0, row - 0.15)
                self.plot_item.addItem(note)
                self.notes.append(note)
        self.plot_item.getAxis("left").setTicks([[(row, lesson.lesson_id) for row, lesson in enumerate(self.lessons)]])
        extent = [abs(v) for _r, lf in observed for v in (lf.ci_low, lf.ci_high)]
        extent += [abs(v) for _r, a in ablated for v in (a["lift"], a.get("ci_low") or 0, a.get("ci_high") or 0)]
        reach = max([0.25, *extent]) * 1.15
        self.plot_item.setXRange(-reach, reach, padding=0)
        self.plot_item.setYRange(-0.6, max(len(self.lessons), 1) - 0.4, padding=0)
        self.select(None)

    def select(self, lesson_id: str | None) -> None:
        """Highlight lesson_id's row (None: no highlight)."""
        ids = [lesson.lesson_id for lesson in self.lessons]
        if lesson_id in ids:
            row = ids.index(lesson_id)
            self.highlight.setRegion((row - 0.5, row + 0.5))
            self.highlight.show()
        else:
            self.highlight.hide()

    def selected_row(self) -> int | None:
        """The highlighted row, or None."""
        if not self.highlight.isVisible():
            return None
        low, high = self.highlight.getRegion()
        return int(round((low + high) / 2))

    # --- pointing ------------------------------------------------------------------------------------

    def scene_pos(self, x: float, y: float) -> QPointF:
        """Where the view point (x, y) is drawn, in scene coordinates."""
        return self.plot_item.getViewBox().mapViewToScene(QPointF(x, y))

    def lesson_row_at(self, scene_pos: QPointF) -> int | None:
        """The lesson row under scene_pos (its bar, whisker or band), or None."""
        view = self.plot_item.getViewBox()
        if not view.sceneBoundingRect().contains(scene_pos):
            return None
        row = int(round(view.mapSceneToView(scene_pos).y()))
        return row if 0 <= row < len(self.lessons) else None

    def tip_at(self, scene_pos: QPointF) -> str:
        """The lesson under scene_pos: id, status, text and both estimates."""
        row = self.lesson_row_at(scene_pos)
        if row is None:
            return ""
        lesson = self.lessons[row]
        text = lesson.text if len(lesson.text) < 300 else lesson.text[:300] + "…"
        lines = [f"{lesson.lesson_id} ({lesson.status})", text, "", f"observed: {lesson.observational.describe()}"]
        if lesson.observational.settle_advice():
            lines.append(lesson.observational.settle_advice())
        ablation = lesson.latest_ablation
        if ablation and ablation.get("lift") is not None:
            lines.append(f"ablation: {formatting.ablation(ablation, spaced=True)}"
                         f" ({ablation['n_tasks']} tasks, {short_date(ablation['created_at'])})")
        lines.append("click to select the lesson")
        return "\n".join(lines)

    def _moved(self, scene_pos: QPointF) -> None:
        self.plot_item.getViewBox().setToolTip(self.tip_at(scene_pos))

    def _clicked(self, event) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return
        row = self.lesson_row_at(event.scenePos())
        if row is not None:
            event.accept()
            self.lesson_clicked.emit(self.lessons[row].lesson_id)

