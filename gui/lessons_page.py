"""The Lessons page: the lessons table with filters, the token budget, distill, copy/export, and the detail pane."""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView, QApplication, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel, QProgressBar,
    QPushButton, QSplitter, QTableView, QVBoxLayout, QWidget,
)

from lessonlab.core import lessons as L
from lessonlab.core.transfer import export_lessons
from lessonlab.core.reflection import ReflectionResult
from lessonlab.core.settings import load_settings
from lessonlab.core.lessons.snapshots import current_snapshot


from . import changes as changed
from .changes import Change
from .errors import show_error, show_exception
from .lesson_detail import LessonDetail
from .lesson_dialogs import DistillDialog, LessonEditorDialog
from .lessons_model import LessonsModel
from .operations import ServerStarting, distill, load_impacts, settings_endpoint
from .perform import perform, perform_in_background, start_with_request
from .pages import Page, PageContext
from .workers import Job, start_job

log = logging.getLogger("lessonlab.gui.lessons")

STATUS_FILTERS = [("active + proposed", ("active", "proposed")), ("active", ("active",)), ("proposed", ("proposed",)),
                  ("retired", ("retired",)), ("rejected", ("rejected",)), ("all", None)]
ANY_SCOPE, UNSCOPED = "", "\x00unscoped"
_BAR = "QProgressBar { border: 1px solid #b0b0b0; border-radius: 3px; background: #f4f4f4; text-align: center; }"
OVER_STYLE = _BAR + " QProgressBar::chunk { background: #e53935; }"
UNDER_STYLE = _BAR + " QProgressBar::chunk { background: #81c784; }"


class LessonsPage(Page):
    """Every lesson with its use and impact; select one for its history, provenance and actions."""

    def __init__(self, context: PageContext, parent=None):
        super().__init__(context, parent)
        ws = context.workspace
        self._primed = False          # impact figures load when the page is first shown
        self._impacts_generation = 0
        self.distill_job: Job | None = None
        self.budget_over = False
        self._dialogs: list[QWidget] = []
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_toolbar())
        layout.addLayout(self._build_budget_row())
        layout.addLayout(self._build_distill_row())
        self.message = QLabel()
        self.message.setObjectName("lessonsMessage")
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        self.message.setStyleSheet("color:#444")
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self._build_table(ws))
        splitter.addWidget(self._build_detail())
        splitter.setSizes([260, 420])
        layout.addWidget(splitter, 1)
        layout.addWidget(self.message)
        self._fill_scopes()
        self.refresh_budget()
        self._select_row(0)

    def _build_toolbar(self) -> QHBoxLayout:
        """Status and scope filters, New lesson, Distill, Copy system prompt, Export."""
        self.status_filter = QComboBox()
        for label, statuses in STATUS_FILTERS:
            self.status_filter.addItem(label, statuses)
        self.scope_filter = QComboBox()
        self.scope_filter.setToolTip("Lessons a run of this suite sees (its own and those for every suite)")
        self.status_filter.currentIndexChanged.connect(lambda _i: self._filter())
        self.scope_filter.currentIndexChanged.connect(lambda _i: self._filter())
        self.new_button = QPushButton("New lesson…")
        self.new_button.setObjectName("newLessonButton")
        self.new_button.setShortcut("Ctrl+L")
        self.new_button.setToolTip("Write a lesson by hand (Ctrl+L)")
        self.new_button.clicked.connect(self.new_lesson)
        self.distill_button = QPushButton("Distill…")
        self.distill_button.setToolTip("Ask a model for merges and rewrites that bring the lessons under budget")
        self.distill_button.clicked.connect(self.open_distill)
        self.copy_button = QPushButton("Copy system prompt")
        self.copy_button.setToolTip("The system prompt exactly as the next run (of the scope's suite) would send it")
        self.copy_button.clicked.connect(self.copy_system_prompt)
        self.export_button = QPushButton("Export…")
        self.export_button.setToolTip("The lessons shown (by status) as JSON, with every version, or as Markdown")
        self.export_button.clicked.connect(self.open_export)
        top = QHBoxLayout()
        top.addWidget(QLabel("Status"))
        top.addWidget(self.status_filter)
        top.addWidget(QLabel("Scope"))
        top.addWidget(self.scope_filter)
        top.addStretch(1)
        for button in (self.new_button, self.distill_button, self.copy_button, self.export_button):
            top.addWidget(button)
        return top

    def _build_budget_row(self) -> QHBoxLayout:
        """The lessons block's size against its token budget."""
        self.budget_bar = QProgressBar()
        self.budget_bar.setObjectName("budgetBar")
        self.budget_bar.setTextVisible(True)
        self.budget_bar.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.budget_label = QLabel()
        self.budget_label.setTextFormat(Qt.TextFormat.PlainText)
        budget_row = QHBoxLayout()
        budget_row.addWidget(QLabel("Lessons block"))
        budget_row.addWidget(self.budget_bar, 1)
        budget_row.addWidget(self.budget_label)
        return budget_row

    def _build_distill_row(self) -> QHBoxLayout:
        """A distill's progress and outcome, hidden until one starts."""
        self.distill_label = QLabel()
        self.distill_label.setTextFormat(Qt.TextFormat.PlainText)
        self.distill_label.setWordWrap(True)
        self.distill_cancel = QPushButton("Cancel")
        self.distill_cancel.clicked.connect(lambda: self.distill_job and self.distill_job.cancel.set())
        self.review_button = QPushButton("Open Review")
        self.review_button.clicked.connect(lambda: self.context.navigation.go_to.emit("review"))  # distill's proposals
        distill_row = QHBoxLayout()
        distill_row.addWidget(self.distill_label, 1)
        distill_row.addWidget(self.review_button)
        distill_row.addWidget(self.distill_cancel)
        for widget in (self.distill_label, self.review_button, self.distill_cancel):
            widget.hide()
        return distill_row

    def _build_table(self, ws) -> QTableView:
        self.model = LessonsModel(ws, self)
        self.table = QTableView()
        self.table.setObjectName("lessonsTable")
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(False)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)  # the lesson's text takes what is left
        for column, width in enumerate((0, 70, 90, 110, 55, 60, 170, 140)):
            if width:
                self.table.setColumnWidth(column, width)
        self.table.selectionModel().currentRowChanged.connect(lambda current, _prev: self._row_changed(current.row()))
        return self.table

    def _build_detail(self) -> LessonDetail:
        self.detail = LessonDetail(self.ws, self.local_controller, self.changes)
        self.detail.compare_rollouts_requested.connect(self.context.navigation.compare_rollouts)
        return self.detail

    # --- staying current -------------------------------------------------------------------------------------

    def page_shown(self) -> None:
        """Coming on screen: the impact figures load the first time."""
        if not self._primed:
            self._primed = True
            self.load_impacts()

    def on_changed(self, change: Change) -> None:
        """Lessons, proposals or runs changed: refresh the table, budget and (if shown once) the impact figures."""
        kinds = change.kinds
        if {changed.LESSONS, changed.PROPOSALS, changed.WORKSPACE, changed.RUNS} & kinds:
            self.reload()
        if self._primed and {changed.LESSONS, changed.RUNS, changed.ROLLOUTS, changed.WORKSPACE} & kinds:
            self.load_impacts()

    def reload(self) -> None:
        """Re-read the lessons (keeping the selected one) and the budget."""
        keep = self.detail.lesson_id
        self._fill_scopes()
        self.model.reload()
        self.refresh_budget()
        row = self.model.row_of(keep) if keep else -1
        self._select_row(max(row, 0))
        if keep and row >= 0:
            self.detail.show_lesson(keep)  # its history may have changed

    def load_impacts(self) -> Job:
        """Compute every lesson's uses, lift ± CI and latest ablation in the background."""
        self._impacts_generation += 1
        return start_job("lesson impact", load_impacts, self.workspace_path, owner=self,
                         on_done=lambda rows, g=self._impacts_generation: self._impacts_loaded(g, rows),
                         error_title="Cannot measure the lessons' impact")

    def _impacts_loaded(self, generation: int, rows: dict) -> None:
        if generation == self._impacts_generation:
            self.model.set_impacts(rows)


    def _fill_scopes(self) -> None:
        chosen = self.scope_filter.currentData()
        self.scope_filter.blockSignals(True)
        self.scope_filter.clear()
        self.scope_filter.addItem("any scope", ANY_SCOPE)
        self.scope_filter.addItem("all suites (unscoped)", UNSCOPED)
        for name in L.scope_names(self.ws):
            self.scope_filter.addItem(f"suite {name}", name)
        index = self.scope_filter.findData(chosen) if chosen is not None else 0
        self.scope_filter.setCurrentIndex(max(index, 0))
        self.scope_filter.blockSignals(False)

    def _filter(self) -> None:
        scope = self.scope_filter.currentData()
        suite = None if scope in (ANY_SCOPE, UNSCOPED, None) else scope
        self.detail.suite_hint = suite
        self.model.set_filter(self.status_filter.currentData(), suite, unscoped_only=scope == UNSCOPED)
        self._select_row(0)
        self.refresh_budget()

    def refresh_budget(self) -> None:
        """The lessons block's estimated size against the budget: a bar that turns red when over."""
        suite = self.detail.suite_hint
        try:
            budget = L.budget_status(self.ws, load_settings().lesson_token_budget, suite)
        except Exception as exc:  # noqa: BLE001 - shown in place; settings problems reach the error path elsewhere
            self.budget_label.setText(f"cannot read the budget: {exc}"[:120])
            return
        self.budget_over = budget.over
        self.budget_bar.setRange(0, max(budget.budget, 1))
        self.budget_bar.setValue(min(budget.tokens, budget.budget))
        self.budget_bar.setFormat(f"~{budget.tokens} of {budget.budget} tokens")
        self.budget_bar.setStyleSheet(OVER_STYLE if budget.over else UNDER_STYLE)
        whose = f"for suite {suite}" if suite else "all suites"
        self.budget_label.setText(
            f"OVER BUDGET by {budget.tokens - budget.budget} tokens — Distill… proposes a shorter set"
            if budget.over else f"{budget.lessons} active ({whose}), estimate: characters / 4")
        self.budget_label.setStyleSheet("color:#b71c1c; font-weight:bold" if budget.over else "color:#555")

    # --- selection ----------------------------------------------------------------------------------------------

    def _select_row(self, row: int) -> None:
        if self.model.rowCount() == 0:
            self.detail.show_lesson(None)
            return
        row = max(0, min(row, self.model.rowCount() - 1))
        self.table.selectRow(row)
        self.table.setCurrentIndex(self.model.index(row, 0))

    def _row_changed(self, row: int) -> None:
        lesson_id = self.model.lesson_id(row) if 0 <= row < self.model.rowCount() else None
        if lesson_id != self.detail.lesson_id or lesson_id is None:
            self.detail.show_lesson(lesson_id)

    def select_lesson(self, lesson_id: str) -> bool:
        """Show lesson_id (widening the filters when it is hidden by them); False if it does not exist."""
        row = self.model.row_of(lesson_id)
        if row < 0:
            self.status_filter.setCurrentIndex(len(STATUS_FILTERS) - 1)   # all statuses
            self.scope_filter.setCurrentIndex(0)                           # any scope
            row = self.model.row_of(lesson_id)
        if row < 0:
            return False
        self._select_row(row)
        self.table.scrollTo(self.model.index(row, 0))
        return True

    # --- actions ------------------------------------------------------------------------------------------------

    def new_lesson(self) -> LessonEditorDialog:
        """Write a lesson by hand: active at once, or proposed to be reviewed."""
        dialog = LessonEditorDialog(self, title="New lesson", suites=L.scope_names(self.ws), proposed_option=True)
        dialog.accepted.connect(lambda: self.add_lesson(**dialog.values()))
        self._dialogs = [d for d in self._dialogs if d.isVisible()] + [dialog]
        dialog.open()
        return dialog

    def add_lesson(self, text: str, scope: list[str] | None = None, reason: str | None = None,
                   status: str = "active") -> str | None:
        """Store a hand-written lesson (as `lessonlab lessons add` does) and select it; its id, or None."""
        change = perform(self, self.changes, "Cannot add the lesson", L.add_lesson, self.ws, text, scope=scope,
                         reason=reason, status=status or "active")
        if change is None:
            return None
        lesson_id = change.lesson_ids[0]
        self.select_lesson(lesson_id)
        self.message.setText(f"Added {lesson_id} ({change.statuses[lesson_id]})")
        return lesson_id

    def copy_system_prompt(self) -> str | None:
        """Put the system prompt the next run would send (for the scope's suite) on the clipboard."""
        try:
            snapshot = current_snapshot(self.ws, load_settings(), self.detail.suite_hint)
        except Exception as exc:  # noqa: BLE001 - the one error path
            show_exception(self, "Cannot build the system prompt", exc)
            return None
        QApplication.clipboard().setText(snapshot.system_prompt)
        self.message.setText(f"Copied the system prompt ({snapshot.lesson_count} lessons, snapshot {snapshot.id}) "
                             "to the clipboard")
        return snapshot.system_prompt

    def open_export(self) -> None:
        """Ask where to save the lessons shown (JSON or Markdown, by the file's extension)."""
        path, chosen = QFileDialog.getSaveFileName(self, "Export lessons", str(Path.home() / "lessons.json"),
                                                   "JSON (*.json);;Markdown (*.md)")
        if path:
            self.export_to(Path(path), "markdown" if path.endswith(".md") or "Markdown" in chosen else "json")

    def export_to(self, path: Path, fmt: str = "json") -> bool:
        """Write the lessons matching the status filter to path as JSON or Markdown."""
        try:
            export_lessons(self.ws, Path(path), fmt=fmt, status=self.status_filter.currentData())
        except Exception as exc:  # noqa: BLE001 - the one error path
            show_exception(self, "Cannot export the lessons", exc)
            return False
        self.message.setText(f"Exported the lessons ({self.status_filter.currentText()}) to {path}")
        return True

    def open_distill(self) -> DistillDialog | None:
        """Ask for the endpoint and budget, then distill in the background."""
        if self.distill_job is not None:
            show_error(self, "A distill is in progress", "Wait for it to finish or cancel it first.")
            return None
        tokens = L.budget_status(self.ws, 1).tokens
        dialog = DistillDialog(self, tokens=tokens)
        dialog.accepted.connect(lambda: self.start_distill(dialog.endpoint.currentData(), dialog.budget.value()))
        self._dialogs = [d for d in self._dialogs if d.isVisible()] + [dialog]
        dialog.open()
        return dialog

    def start_distill(self, endpoint_name: str | None = None, budget: int | None = None) -> Job | None:
        """Ask a model for merge/edit/retire proposals that fit the budget; they go to Review."""
        if self.distill_job is not None:
            return None
        return start_with_request(self, "Cannot distill", lambda: settings_endpoint(endpoint_name),
                                  lambda endpoint: self._start_distill(endpoint, budget))

    def _start_distill(self, endpoint, budget: int | None) -> Job:
        self.distill_label.setText(f"Distilling with {endpoint.name}…")
        self.distill_label.show()
        self.distill_cancel.show()
        self.review_button.hide()
        self.distill_button.setEnabled(False)
        self.distill_job = perform_in_background(
            self, self.changes, "distill", distill, self.workspace_path, endpoint, budget, self.local_controller,
            on_progress=self._distill_progress, on_done=self._distill_done, on_failed=self._distill_failed,
            error_title="Distill failed")
        return self.distill_job

    def _distill_progress(self, message) -> None:
        if isinstance(message, ServerStarting):
            self.distill_label.setText("Starting the embedded model…")

    def _distill_finished(self) -> None:
        self.distill_job = None
        self.distill_cancel.hide()
        self.distill_button.setEnabled(True)

    def _distill_done(self, result: ReflectionResult) -> None:
        self._distill_finished()
        if result.status == "ok":
            self.distill_label.setText(
                f"Distill {result.reflection_id}: {result.n_pending} proposal(s) wait in Review — ~{result.tokens_before}"
                f" tokens now, ~{result.tokens_after} if all are accepted")
            self.review_button.show()
        else:
            self.distill_label.setText(f"Distill {result.reflection_id} failed: {result.error} (its reply is kept; "
                                       "Review lists it with Retry)")

    def _distill_failed(self, exc: BaseException) -> None:
        self._distill_finished()
        self.distill_label.setText(f"Distill failed: {exc}")
