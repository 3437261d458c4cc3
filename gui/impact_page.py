"""The Impact page: reward over runs with lesson changes marked, and each lesson's lift with its interval.

Data loads in the background (core.impact.timeline and impact_table) and reloads after a change to
runs, rollouts or lessons. Clicking a run's point asks the main window to open that run; clicking a
lesson's row in the lift chart selects it here and asks the main window to show the lesson.
"""
from __future__ import annotations

import logging

from PySide6.QtCore import QAbstractTableModel, QItemSelectionModel, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QHBoxLayout, QHeaderView, QLabel, QPushButton, QSplitter, QTableView,
    QVBoxLayout, QWidget,
)

from lessonlab.core import formatting

from . import changes as changed
from .changes import Change
from .impact_charts import ABLATION_COLOR, OBSERVED_COLOR, LiftChart, TimelineChart
from .operations import load_impact
from .pages import Page, PageContext
from .workers import Job, start_job

log = logging.getLogger("lessonlab.gui.impact")

_Index = QModelIndex | QPersistentModelIndex
ALL_MODELS = "all models"
RELOAD_ON = (changed.RUNS, changed.ROLLOUTS, changed.LESSONS, changed.WORKSPACE)


def observed_text(lift) -> str:
    """The Observed column: the lift with its interval, or "too little data" with roughly how many more rollouts."""
    if not lift.enough_data or lift.lift is None:
        return f"too little data · ~{lift.more_rollouts or 2} more rollouts"
    text = formatting.lift(lift, spaced=True)
    return f"{text} · ~{lift.more_rollouts} more" if lift.more_rollouts else text


class ImpactLessonsModel(QAbstractTableModel):
    """The lessons beside the lift chart, in the chart's row order: id, status, text, both estimates."""

    COLUMNS = ["Lesson", "Text", "Observed [95%]", "Ablation [95%]", "Status"]
    LessonIdRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, parent=None):
        super().__init__(parent)
        self.rows: list = []   # LessonImpact, as loaded (a suite has tens of lessons, not thousands)

    def set_rows(self, rows: list) -> None:
        """Show these LessonImpact rows."""
        self.beginResetModel()
        self.rows = list(rows)
        self.endResetModel()

    def row_of(self, lesson_id: str) -> int:
        """The row of lesson_id, or -1."""
        return next((i for i, r in enumerate(self.rows) if r.lesson_id == lesson_id), -1)

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802 - Qt API
        return 0 if parent.isValid() else len(self.COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):  # noqa: N802
        if role != Qt.ItemDataRole.DisplayRole:
            return None
        if orientation == Qt.Orientation.Horizontal:
            return self.COLUMNS[section] if 0 <= section < len(self.COLUMNS) else None
        return section + 1

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not (0 <= index.row() < len(self.rows)) or not (0 <= index.column() < len(self.COLUMNS)):
            return None
        row, column = self.rows[index.row()], index.column()
        if role == self.LessonIdRole:
            return row.lesson_id
        ablation = row.latest_ablation if row.latest_ablation and row.latest_ablation.get("lift") is not None else None
        if role == Qt.ItemDataRole.DisplayRole:
            if column == 0:
                return row.lesson_id
            if column == 1:
                return formatting.one_line(row.text, 120)
            if column == 2:
                return observed_text(row.observational)
            if column == 3:
                return formatting.ablation(ablation, spaced=True)
            return row.status
        if role == Qt.ItemDataRole.ToolTipRole:
            if column == 0:
                return (f"{row.lesson_id}: in the prompt of {row.rollouts_with} rollouts in {row.runs_with} runs; "
                        f"{row.rollouts_comparable_without} comparable rollouts without it")
            if column == 1:
                return row.text
            if column == 2:
                lift = row.observational
                extra = [text for text in (lift.note if lift.enough_data else "", lift.settle_advice()) if text]
                return "\n".join([lift.describe(), *extra])
            if column == 3 and ablation:
                return (f"ablation {ablation['id']} on {ablation['suite']}: {ablation['n_tasks']} tasks, "
                        f"runs {ablation['run_with']} (with) and {ablation['run_without']} (without)")
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            if column == 2:
                return QBrush(QColor(OBSERVED_COLOR if row.observational.enough_data else "#777"))
            if column == 3 and ablation:
                return QBrush(QColor(ABLATION_COLOR))
            if column in (0, 1, 4) and row.status != "active":
                return QBrush(QColor("#777"))   # retired lessons greyed
            return None
        return None


class ImpactPage(Page):
    """Pick a suite and model; see reward over its runs, where lessons changed, and each lesson's lift."""

    lesson_requested = Signal(str)     # show this lesson (the main window routes it)
    loaded = Signal()

    def __init__(self, context: PageContext, parent=None):
        super().__init__(context, parent)
        self.lesson_requested.connect(context.navigation.show_lesson)
        self._primed = False    # loads when first shown
        self._stale = False     # a change arrived while hidden: reload when shown
        self._generation = 0
        self.data: dict | None = None

        self.suite = QComboBox()
        self.suite.setObjectName("impactSuite")
        self.suite.setMinimumContentsLength(14)
        self.suite.activated.connect(lambda _i: self.reload())
        self.model = QComboBox()
        self.model.setObjectName("impactModel")
        self.model.setMinimumContentsLength(18)
        self.model.activated.connect(lambda _i: self.reload())
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.reload)
        self.summary = QLabel("")
        self.summary.setStyleSheet("color:#444")
        top = QHBoxLayout()
        top.addWidget(QLabel("Suite"))
        top.addWidget(self.suite)
        top.addWidget(QLabel("Model"))
        top.addWidget(self.model)
        top.addWidget(self.summary, 1)
        top.addWidget(self.refresh_button)

        self.timeline = TimelineChart()
        self.timeline.setObjectName("timelineChart")
        self.timeline.run_clicked.connect(self.context.navigation.show_run)
        self.timeline_title = QLabel()
        self._title_timeline()
        self.lift = LiftChart()
        self.lift.setObjectName("liftChart")
        self.lift.lesson_clicked.connect(self._lesson_clicked)
        self.lift_title = QLabel(f"<b>Lift per lesson</b> — <span style='color:{OBSERVED_COLOR}'>■ observed</span> "
                                 "(same task and model, with vs without) and "
                                 f"<span style='color:{ABLATION_COLOR}'>◆ latest ablation</span>, 95% intervals")
        self.lift_title.setWordWrap(True)  # else its width would be the splitter's minimum
        self.timeline_title.setWordWrap(True)
        self.lessons_model = ImpactLessonsModel(self)
        self.table = QTableView()
        self.table.setObjectName("impactLessons")
        self.table.setModel(self.lessons_model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(24)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        for column, width in enumerate((95, 200, 235, 150, 60)):
            self.table.setColumnWidth(column, width)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)

        upper = QWidget()
        ul = QVBoxLayout(upper)
        ul.setContentsMargins(0, 0, 0, 0)
        ul.addWidget(self.timeline_title)
        ul.addWidget(self.timeline, 1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.lift_title)
        ll.addWidget(self.lift, 1)
        lower = QSplitter(Qt.Orientation.Horizontal)
        lower.addWidget(left)
        lower.addWidget(self.table)
        lower.setSizes([370, 750])
        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(upper)
        split.addWidget(lower)
        split.setSizes([380, 320])
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)

    # --- staying current --------------------------------------------------------------------------

    def page_shown(self) -> None:
        """Called when the page comes on screen: load the first time, or after changes made while hidden."""
        if not self._primed or self._stale:
            self._primed = True
            self.reload()

    def on_changed(self, change: Change) -> None:
        """Reload after runs, rollouts or lessons changed (now if on screen, else when next shown)."""
        if not any(kind in change for kind in RELOAD_ON):
            return
        if self._primed and self.isVisible():
            self.reload()
        else:
            self._stale = True


    def reload(self) -> Job:
        """Load the chosen suite and model (in the background) and redraw."""
        self._stale = False
        self._generation += 1
        self.summary.setText("Loading…")
        model = self.model.currentData()
        return start_job("load impact", load_impact, self.workspace_path, self.suite.currentData(), model,
                         owner=self, on_done=lambda data, g=self._generation: self._loaded(g, data),
                         error_title="Cannot load the impact of lessons")

    def _loaded(self, generation: int, data: dict) -> None:
        if generation != self._generation:
            return  # a newer request superseded this one
        self.data = data
        self._fill_combo(self.suite, [(s, s) for s in data["suites"]], data["suite"])
        self._fill_combo(self.model, [(ALL_MODELS, None)] + [(m, m) for m in data["models"]], data["model"])
        runs = data["timeline"]
        self.timeline.set_runs(runs, "No runs yet — start one on the Runs page." if not data["suites"]
                               else "No runs of this suite and model.")
        self._title_timeline()
        selected = self.selected_lesson()
        self.lift.set_lessons(data["lessons"])
        self.lessons_model.set_rows(data["lessons"])
        if selected is not None:
            self.select_lesson(selected)
        changes = sum(len(run["events_before"]) for run in runs)
        unsettled = sum(1 for lesson in data["lessons"] if lesson.observational.settle_advice())
        self.summary.setText(
            f"{len(runs)} run{'s' if len(runs) != 1 else ''} · {changes} lesson change{'s' if changes != 1 else ''}"
            f" between them · {len(data['lessons'])} lesson{'s' if len(data['lessons']) != 1 else ''}"
            + (f" · {unsettled} with too little data" if unsettled else "")
            if data["suite"] else "No runs in this workspace yet.")
        self.loaded.emit()

    def _title_timeline(self) -> None:
        key = self.timeline.key_html()
        self.timeline_title.setText("<b>Mean reward per run</b> — hover a dashed line for what changed, click a point "
                                    "to open its run" + (f" &nbsp;&nbsp; {key}" if key else ""))

    @staticmethod
    def _fill_combo(combo: QComboBox, items: list[tuple[str, str | None]], current) -> None:
        combo.blockSignals(True)
        combo.clear()
        for text, value in items:
            combo.addItem(text, value)
        combo.setCurrentIndex(max(0, combo.findData(current)))
        combo.blockSignals(False)

    # --- lessons --------------------------------------------------------------------------------

    def selected_lesson(self) -> str | None:
        """The lesson selected in the table, or None."""
        index = self.table.selectionModel().currentIndex()
        return self.lessons_model.data(index, ImpactLessonsModel.LessonIdRole) if index.isValid() else None

    def select_lesson(self, lesson_id: str) -> bool:
        """Select lesson_id in the table and highlight its row in the chart; False if it is not shown."""
        row = self.lessons_model.row_of(lesson_id)
        if row < 0:
            return False
        index = self.lessons_model.index(row, 0)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(index)
        return True

    def _row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self.lift.select(self.lessons_model.data(current, ImpactLessonsModel.LessonIdRole) if current.isValid() else None)

    def _lesson_clicked(self, lesson_id: str) -> None:
        self.select_lesson(lesson_id)
        self.lesson_requested.emit(lesson_id)
