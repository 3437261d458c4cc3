"""The Compare page: one task's rollouts side by side, one column each, with rewards, feedback and diffs.

It owns the reflection panel ("Reflect on these", and "Reflect on this run" sent from the Runs page).
"""
from __future__ import annotations

import logging
import time

from PySide6.QtCore import QRect, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication, QCheckBox, QComboBox, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPushButton,
    QScrollArea, QSizePolicy, QSplitter, QVBoxLayout, QWidget,
)

from lessonlab.core import formatting
from lessonlab.core.settings import load_settings

from . import changes as changed
from .changes import Change
from .compare_lessons import HEADER_WIDTH, GroupHeader, lesson_choices
from .operations import find_tasks, latest_task, load_compare, load_rollouts
from .pages import Page, PageContext
from .reflection_panel import ReflectionPanel
from .rollout_column import COLUMN_WIDTH, RolloutColumn
from .scoring import ScoreBar, ScoreKeys, column_target
from .step_alignment import StepAligner
from .workers import Job, start_job

log = logging.getLogger("lessonlab.gui.compare")

# GUI-thread time one pass may spend appending steps; what is left waits for the next turn of the event loop,
# so painting and input get in between however many columns draw trajectories.
STEP_BUDGET_S = 0.012


class ComparePage(Page):
    """Pick a task (from a run or by search); its rollouts appear side by side."""

    loaded = Signal(int)               # number of columns shown

    def __init__(self, context: PageContext, parent=None):
        super().__init__(context, parent)
        self._primed = False  # the picker and the first task load when the page is first shown
        self.task_id: str | None = None
        self.scope_run_ids: list[str] | None = None
        self.columns: list[RolloutColumn] = []
        self._generation = 0         # of show_task: only the newest request's answer is shown
        self._tasks_generation = 0   # of refresh_tasks, likewise
        self._rollouts: list[dict] = []
        self._headers: list[GroupHeader] = []            # with/without group heads while a lesson is chosen
        self._placed: list[tuple[QWidget, int]] = []     # what the strip holds, with each one's x

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self._build_picker())
        splitter.addWidget(self._build_right())
        splitter.setSizes([230, 900])
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter)

    def _build_picker(self) -> QWidget:
        """Left: the task search, the run scope and the task list."""
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search tasks…")
        self.search.setClearButtonEnabled(True)
        self._search_timer = QTimer(self, singleShot=True, interval=250)
        self._search_timer.timeout.connect(self.refresh_tasks)
        self.search.textChanged.connect(lambda _t: self._search_timer.start())
        self.scope_label = QLabel("Scope: all runs")
        self.scope_label.setWordWrap(True)
        self.clear_scope = QPushButton("Show all runs")
        self.clear_scope.setEnabled(False)
        self.clear_scope.setToolTip("Show the task's rollouts from every run")
        self.clear_scope.clicked.connect(self._clear_scope)
        self.task_list = QListWidget()
        self.task_list.setObjectName("taskList")
        self.task_list.itemActivated.connect(self._task_clicked)
        self.task_list.itemClicked.connect(self._task_clicked)
        picker = QWidget()
        picker.setMinimumWidth(240)
        pl = QVBoxLayout(picker)
        pl.setContentsMargins(0, 0, 0, 0)
        pl.addWidget(self.search)
        scope_row = QHBoxLayout()
        scope_row.addWidget(self.scope_label, 1)
        scope_row.addWidget(self.clear_scope)
        pl.addLayout(scope_row)
        pl.addWidget(self.task_list, 1)
        return picker

    def _build_controls(self) -> QHBoxLayout:
        """The title, the prompt and the row of sort, filter, diff and reflect controls."""
        self.title = QLabel("Pick a task on the left")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.title.setStyleSheet("font-size: 14px; font-weight: bold")
        self.prompt_label = QLabel()
        self.prompt_label.setTextFormat(Qt.TextFormat.PlainText)
        self.prompt_label.setWordWrap(True)
        self.prompt_label.setStyleSheet("color:#444")
        self.sort = QComboBox()
        self.sort.addItems(["run order", "reward: high → low", "reward: low → high"])
        self.sort.currentIndexChanged.connect(lambda _i: self._arrange())
        self.filter = QComboBox()
        self.filter.addItems(["all rewards", "reward = 1", "0 < reward < 1", "reward = 0", "errors"])
        self.filter.currentIndexChanged.connect(lambda _i: self._arrange())
        self.lesson_filter = QComboBox()
        self.lesson_filter.setObjectName("lessonFilter")
        self.lesson_filter.setToolTip("Show the rollouts with and without a lesson in their prompt, side by side")
        self.lesson_filter.setMinimumContentsLength(40)
        self.lesson_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.lesson_filter.addItem("all rollouts, not grouped", None)
        self.lesson_filter.currentIndexChanged.connect(lambda _i: self._arrange())
        self.diff = QCheckBox("Diff with first")
        self.diff.setToolTip("Mark where each column's reply differs from the first column's (Ctrl+D)")
        self.diff.setShortcut("Ctrl+D")
        self.diff.toggled.connect(lambda _on: self._arrange())
        self.show_system = QCheckBox("System prompt")
        self.show_system.setToolTip("Show the exact system prompt, with its lessons, each rollout saw")
        self.show_system.toggled.connect(self._toggle_system)
        self.reflect_button = QPushButton("Reflect on these")
        self.reflect_button.setToolTip("Reflect on the selected columns (all shown columns when none is selected)")
        self.reflect_button.setEnabled(False)
        self.reflect_button.clicked.connect(self._reflect)
        self.reflect_endpoint = QComboBox()
        self.reflect_endpoint.setToolTip("The endpoint that writes the reflection")
        self.reload_endpoints()
        self.count_label = QLabel()
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Sort"))
        controls.addWidget(self.sort)
        controls.addWidget(QLabel("Show"))
        controls.addWidget(self.filter)
        controls.addWidget(self.diff)
        controls.addWidget(self.show_system)
        controls.addStretch(1)
        controls.addWidget(self.count_label)
        controls.addWidget(self.reflect_endpoint)
        controls.addWidget(self.reflect_button)
        return controls

    def _build_columns_area(self) -> QScrollArea:
        """The horizontally scrolled strip that holds one column per rollout."""
        self.strip = QWidget()
        self.strip_layout = QHBoxLayout(self.strip)
        self.strip_layout.setContentsMargins(4, 4, 4, 4)
        self.strip_layout.setAlignment(Qt.AlignmentFlag.AlignLeft)
        self.scroll = QScrollArea()
        self.scroll.setObjectName("columnsArea")
        self.scroll.setWidgetResizable(True)
        self.scroll.setWidget(self.strip)
        self.aligner = StepAligner(self)   # trajectories: steps lined up across columns, the parting step marked
        # One pending pass at a time: scrolling, resizing and growing columns all ask for the same next pass.
        self._render_timer = QTimer(self, singleShot=True, interval=0)
        self._render_timer.timeout.connect(self.render_visible)
        # (a lambda: valueChanged's int would otherwise become the timer's interval)
        self.scroll.horizontalScrollBar().valueChanged.connect(lambda _v: self._render_timer.start())
        self.scroll.verticalScrollBar().valueChanged.connect(lambda _v: self._render_timer.start())
        return self.scroll

    def _build_reflection_panel(self) -> ReflectionPanel:
        self.reflection = ReflectionPanel(self.workspace_path, self.local_controller, self.changes)
        self.reflection.review_requested.connect(lambda: self.context.navigation.go_to.emit("review"))
        return self.reflection

    def _build_right(self) -> QWidget:
        """Right: title and lesson filter, prompt, controls, the columns over the reflection panel."""
        controls = self._build_controls()
        right = QWidget()
        rl = QVBoxLayout(right)
        rl.setContentsMargins(0, 0, 0, 0)
        title_row = QHBoxLayout()   # the lesson filter sits beside the title, where the width is to spare
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        title_row.addWidget(self.title, 1)
        title_row.addWidget(QLabel("Lesson"))
        title_row.addWidget(self.lesson_filter)
        rl.addLayout(title_row)
        rl.addWidget(self.prompt_label)
        rl.addLayout(controls)
        vsplit = QSplitter(Qt.Orientation.Vertical)
        vsplit.addWidget(self._build_columns_area())
        vsplit.addWidget(self._build_reflection_panel())
        vsplit.setSizes([500, 180])
        rl.addWidget(vsplit, 1)
        self.score_bar = ScoreBar(self.workspace_path, self.changes, self)
        self.score_bar.scored.connect(lambda _r: self.show_task(self.task_id, self.scope_run_ids))
        rl.addWidget(self.score_bar)
        self.score_keys = ScoreKeys(self, self.score_bar,
                                    lambda: column_target(self.visible_columns(), QApplication.focusWidget()))
        return right

    def reload_endpoints(self) -> None:
        """Fill the reflection endpoint chooser from the settings (default first)."""
        try:
            settings = load_settings()
            names = list(settings.all_endpoints())
            default = settings.default_endpoint
        except Exception as exc:  # noqa: BLE001 - logged; the reflect action reports it through the error path
            log.warning("cannot read endpoints: %s", exc)
            names, default = [], None
        chosen = self.reflect_endpoint.currentData()
        self.reflect_endpoint.clear()
        for name in sorted(names, key=lambda n: n != default):
            self.reflect_endpoint.addItem(name, name)
        if chosen in names:  # keep the user's choice across a reload
            self.reflect_endpoint.setCurrentIndex(self.reflect_endpoint.findData(chosen))

    # --- staying current ----------------------------------------------------------------------------

    def page_shown(self) -> None:
        """Called when the page comes on screen: the first time, fill the picker and open the newest task."""
        if self._primed:
            return
        self._primed = True
        self.refresh_tasks()
        if self.task_id is None:
            # The newest task with rollouts, so the page never opens empty when there is something to show.
            start_job("find the newest task", latest_task, self.workspace_path, owner=self,
                      on_done=self._open_latest, error_title="Cannot find the newest task")

    def _open_latest(self, task_id: str | None) -> None:
        if task_id and self._generation == 0:  # the user (or another page) may have asked for something meanwhile
            self.show_task(task_id)

    def on_changed(self, change: Change) -> None:
        """Refresh what this page shows after a change: the endpoint chooser, the task picker."""
        if changed.ENDPOINTS in change:
            self.reload_endpoints()
        if self._primed and (changed.RUNS in change or changed.ROLLOUTS in change):
            self.refresh_tasks()  # rollout counts and new tasks; an unprimed page loads them when shown


    # --- picking a task ---------------------------------------------------------------------------

    def set_scope(self, run_ids: list[str] | None) -> None:
        """Limit the picker and columns to these runs (None: all runs)."""
        self.scope_run_ids = list(run_ids) if run_ids else None
        self.scope_label.setText(f"Scope: run {', '.join(self.scope_run_ids)}" if self.scope_run_ids else "Scope: all runs")
        self.clear_scope.setEnabled(self.scope_run_ids is not None)
        self.refresh_tasks()

    def _clear_scope(self) -> None:
        self.set_scope(None)
        if self.task_id:
            self.show_task(self.task_id)

    def refresh_tasks(self) -> None:
        """Fill the task list (in the background) from the scoped run or the search text."""
        run_id = self.scope_run_ids[0] if self.scope_run_ids and len(self.scope_run_ids) == 1 else None
        self._tasks_generation += 1
        start_job("find tasks", find_tasks, self.workspace_path, run_id, self.search.text().strip() or None,
                  owner=self, on_done=lambda rows, g=self._tasks_generation: self._fill_tasks(g, rows),
                  error_title="Cannot list tasks")

    def _fill_tasks(self, generation: int, rows: list[dict]) -> None:
        if generation != self._tasks_generation:
            return  # a newer search or scope superseded this one
        self.task_list.clear()
        for row in rows:
            item = QListWidgetItem(f"{row['task']}  ({row['rollouts']})")
            item.setData(Qt.ItemDataRole.UserRole, row["task_id"])
            item.setToolTip(f"{row['suite']} · {row['split']} · {row['rollouts']} rollouts")
            self.task_list.addItem(item)
            if row["task_id"] == self.task_id:
                item.setSelected(True)

    def _task_clicked(self, item: QListWidgetItem) -> None:
        task_id = item.data(Qt.ItemDataRole.UserRole)
        if task_id != self.task_id or not self.columns:
            self.show_task(task_id, self.scope_run_ids)

    def show_task(self, task_id: str, run_ids: list[str] | None = None) -> Job:
        """Load task_id's rollouts (of run_ids, or all runs) in the background and show them as columns."""
        self.task_id = task_id
        if run_ids is not None and run_ids != self.scope_run_ids:
            self.scope_run_ids = list(run_ids) or None
            self.scope_label.setText(f"Scope: run {', '.join(run_ids)}" if run_ids else "Scope: all runs")
            self.clear_scope.setEnabled(bool(run_ids))
            self.refresh_tasks()
        self._generation += 1
        generation = self._generation
        self.title.setText("Loading…")
        return start_job("compare", load_compare, self.workspace_path, task_id, self.scope_run_ids, owner=self,
                         on_done=lambda data, g=generation: self._loaded(g, data),
                         error_title="Cannot load the task's rollouts")

    def show_rollouts(self, rollout_ids: list[str]) -> Job:
        """Load exactly these rollouts (e.g. a proposal's evidence, of any tasks) and show them as columns."""
        self.task_id = None
        self.scope_run_ids = None
        self.scope_label.setText(f"Scope: {len(rollout_ids)} chosen rollout{'s' if len(rollout_ids) != 1 else ''}")
        self.clear_scope.setEnabled(True)
        self._generation += 1
        generation = self._generation
        self.title.setText("Loading…")
        return start_job("compare rollouts", load_rollouts, self.workspace_path, list(rollout_ids), owner=self,
                         on_done=lambda data, g=generation: self._rollouts_loaded(g, data),
                         error_title="Cannot load the rollouts")

    def _rollouts_loaded(self, generation: int, data: dict) -> None:
        if generation == self._generation:
            self.task_id = data["task"].get("task_id")  # one task: "Show all runs" widens to all its rollouts
        self._loaded(generation, data)

    def _loaded(self, generation: int, data: dict) -> None:
        if generation != self._generation:
            return  # a newer request superseded this one
        task = data["task"]
        self._rollouts = data["rollouts"]
        for row in range(self.task_list.count()):   # the picker marks the task shown, however it was opened
            item = self.task_list.item(row)
            item.setSelected(item.data(Qt.ItemDataRole.UserRole) == task["task_id"])
        self.title.setText(f"{task['suite']} / {task['task']}  ({task['split']})")
        prompt = task["prompt"] if isinstance(task["prompt"], str) else " ".join(
            str(m.get("content", "")) for m in task["prompt"] if m.get("role") == "user")
        self.prompt_label.setText(prompt if len(prompt) < 600 else prompt[:600] + "…")
        for column in self.columns:
            column.setParent(None)
            column.deleteLater()
        self.columns = [RolloutColumn(r) for r in self._rollouts]
        for column in self.columns:
            column.system_prompt.setVisible(self.show_system.isChecked())
            column.grown.connect(self.aligner.schedule)
        self._fill_lesson_filter()
        self._arrange()
        self.reflect_button.setEnabled(bool(self.columns))
        self.loaded.emit(len(self.visible_columns()))

    # --- arranging columns --------------------------------------------------------------------------

    def visible_columns(self) -> list[RolloutColumn]:
        """Columns shown under the current filter, in the current order."""
        return [widget for widget, _x in self._placed if isinstance(widget, RolloutColumn)]

    def _passes(self, column: RolloutColumn) -> bool:
        mode, r, ok = self.filter.currentIndex(), column.reward, column.rollout["status"] == "ok"
        if mode == 1:
            return ok and r is not None and r >= 1.0
        if mode == 2:
            return ok and r is not None and 0.0 < r < 1.0
        if mode == 3:
            return ok and r is not None and r <= 0.0
        if mode == 4:
            return not ok
        return True

    def chosen_lesson(self) -> str | None:
        """The lesson whose with/without groups are shown, or None."""
        return self.lesson_filter.currentData()

    def choose_lesson(self, lesson_id: str | None) -> None:
        """Group the columns by whether their prompt held lesson_id (None: one group)."""
        self.lesson_filter.setCurrentIndex(max(0, self.lesson_filter.findData(lesson_id)))

    def _fill_lesson_filter(self) -> None:
        chosen = self.chosen_lesson()
        self.lesson_filter.blockSignals(True)
        self.lesson_filter.clear()
        self.lesson_filter.addItem("all rollouts, not grouped", None)
        for lesson in lesson_choices(self._rollouts):
            self.lesson_filter.addItem(f"with / without {lesson['lesson_id']} · {formatting.one_line(lesson['text'], 30)}",
                                       lesson["lesson_id"])
            self.lesson_filter.setItemData(self.lesson_filter.count() - 1, lesson["text"], Qt.ItemDataRole.ToolTipRole)
        self.lesson_filter.setCurrentIndex(max(0, self.lesson_filter.findData(chosen)))
        self.lesson_filter.blockSignals(False)

    def _groups(self, shown: list[RolloutColumn]) -> list[tuple[GroupHeader | None, list[RolloutColumn]]]:
        lesson_id = self.chosen_lesson()
        if lesson_id is None:
            return [(None, shown)]
        groups = []
        for has in (True, False):
            members = [c for c in shown if c.saw(lesson_id) == has]
            groups.append((GroupHeader(lesson_id, has, [c.reward for c in members]), members))
        return groups

    def _arrange(self) -> None:
        while self.strip_layout.count():
            item = self.strip_layout.takeAt(0)
            if item.widget() is not None:
                item.widget().hide()
        for header in self._headers:
            header.deleteLater()
        shown = [c for c in self.columns if self._passes(c)]
        mode = self.sort.currentIndex()
        if mode in (1, 2):
            missing = -1.0 if mode == 1 else 2.0
            shown.sort(key=lambda c: c.reward if c.reward is not None else missing, reverse=(mode == 1))
        groups = self._groups(shown)
        self._headers = [header for header, _members in groups if header is not None]
        ordered = [column for _header, members in groups for column in members]
        reference = ordered[0].rollout["output"] if ordered and self.diff.isChecked() else None
        # Widths are fixed, so each widget's place follows from what precedes it (also before layout runs).
        x, spacing = self.strip_layout.contentsMargins().left(), max(0, self.strip_layout.spacing())
        self._placed = []
        self.aligner.set_columns(ordered)
        for header, members in groups:
            for widget in ([header] if header is not None else []) + members:
                if isinstance(widget, RolloutColumn):
                    widget.set_reference(reference if widget is not ordered[0] and self.diff.isChecked() else None)
                self.strip_layout.addWidget(widget)
                widget.show()
                self._placed.append((widget, x))
                x += (COLUMN_WIDTH if isinstance(widget, RolloutColumn) else HEADER_WIDTH) + spacing
        self.count_label.setText(f"{len(shown)} of {len(self.columns)} rollouts")
        if not shown and self.columns:
            self.count_label.setText(f"0 of {len(self.columns)} rollouts (filter)")
        # Render once the layout has placed the columns; only those on screen get highlighted. Steps are
        # appended from the next turn on: this slot already built the columns.
        self.render_visible(steps=False)

    def columns_in_view(self) -> list[RolloutColumn]:
        """The shown columns inside the visible area, with one column of margin each side."""
        viewport = self.scroll.viewport()
        x0 = self.scroll.horizontalScrollBar().value()
        visible = QRect(x0 - COLUMN_WIDTH, 0, max(viewport.width(), COLUMN_WIDTH) + 2 * COLUMN_WIDTH, 1)
        return [widget for widget, x in self._placed  # places computed by _arrange from the fixed widths
                if isinstance(widget, RolloutColumn) and x <= visible.right() and x + COLUMN_WIDTH >= visible.left()]

    def render_visible(self, *, steps: bool = True) -> int:
        """Highlight and show the columns inside the visible area (and steps, unless not); return how many rendered now."""
        columns = self.columns_in_view()
        rendered = sum(1 for column in columns if column.ensure_rendered())
        if not steps or self._fill_steps(columns) or rendered:
            self._render_timer.start()   # more to build next turn (stops with the page)
        return rendered

    def _fill_steps(self, columns: list[RolloutColumn]) -> bool:
        """Append steps down to a screen below the visible area, a batch per column in turn, within the budget.

        True when the budget ran out with steps still wanted.
        """
        bottom = self.scroll.verticalScrollBar().value() + 2 * self.scroll.viewport().height()
        started = time.perf_counter()
        wanting = [column for column in columns if column.trajectory_view is not None]
        while wanting:
            for column in list(wanting):
                if not column.fill_to(bottom):
                    wanting.remove(column)
                elif time.perf_counter() - started > STEP_BUDGET_S:
                    return True
        return False

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._render_timer.start()

    def _toggle_system(self, on: bool) -> None:
        for column in self.columns:
            column.system_prompt.setVisible(on)
        self.aligner.schedule()

    # --- reflection ----------------------------------------------------------------------------------

    def selected_rollout_ids(self) -> list[str]:
        """Checked columns' rollout ids, else every shown column's."""
        shown = self.visible_columns()
        chosen = [c for c in shown if c.select.isChecked()] or shown
        return [c.rollout["id"] for c in chosen]

    def _reflect(self) -> None:
        ids = self.selected_rollout_ids()
        if ids:
            self.reflect(rollout_ids=ids)

    def reflect(self, *, run_id: str | None = None, rollout_ids: list[str] | None = None,
                endpoint_name: str | None = None) -> Job | None:
        """Reflect on a whole run or on these rollouts in the panel below, with the chosen endpoint."""
        return self.reflection.start(endpoint_name or self.reflect_endpoint.currentData(), run_id=run_id,
                                     rollout_ids=rollout_ids)
