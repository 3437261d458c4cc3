"""The Runs page: the runs table, a New run dialog, live progress with Cancel, rollouts as they finish."""
from __future__ import annotations

import logging
import sqlite3

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QAbstractItemView, QComboBox, QDialog, QDialogButtonBox, QDoubleSpinBox, QFileDialog, QFormLayout, QFrame,
    QHBoxLayout, QHeaderView, QLabel, QLineEdit, QMessageBox, QProgressBar, QPushButton, QSpinBox, QSplitter,
    QTableView, QVBoxLayout, QWidget,
)

from lessonlab.core import formatting
from lessonlab.core.runs import queries
from lessonlab.core.runs.runner import RunProgress, RunResult
from lessonlab.core.settings import LOCAL_ENDPOINT, load_settings
from lessonlab.core.tasks.suites import builtin_suites, load_suite
from lessonlab.core.tools import describe_python_tool_sets
from lessonlab.core.verifiers.python_function import describe_python_verifiers

from . import changes as changed
from .changes import Change
from .errors import show_error, show_exception
from .operations import RunCreated, RunRequest, ServerStarting, start_and_execute_run
from .pages import Page, PageContext
from .perform import perform_in_background, start_with_request
from .scoring import ScoreBar, ScoreKeys, is_unscored
from .table_models import RolloutsModel, RunsModel
from .workers import Job

log = logging.getLogger("lessonlab.gui.runs")

# How often the page asks whether another process (a `lessonlab serve` proxy, a CLI run) wrote to the workspace.
WATCH_INTERVAL_MS = 1000

# Measured on the embedded model (8 tasks x 3 samples, seed 1): strawberry mean 0.167 with 4 of 8
# tasks mixed; arithmetic, game24 and format score 0 on every rollout, a first screen all red.
WELCOME_SUITE = "strawberry"


def confirm_python_code(parent, suite: str, verifiers: list[tuple[str, str | None]],
                        tool_sets: list[tuple[str, str | None]] = ()) -> bool:
    """Ask whether to run the suite's own Python code, naming each verifier and tool set with its file; True: run."""
    sections = []
    if verifiers:
        sections.append("Verifiers (they score the replies):\n" + _described_lines(
            verifiers, "this verifier will score 0 with an error"))
    if tool_sets:
        sections.append("Tool sets (the model calls them during the run):\n" + _described_lines(
            tool_sets, "its tools cannot be loaded"))
    box = QMessageBox(QMessageBox.Icon.Warning, "Run this suite's Python code?",
                      f"The suite {suite} runs Python code of its own. Starting the run imports "
                      f"and calls, inside lessonlab, with your permissions:\n\n" + "\n\n".join(sections) + "\n\n"
                      "Run it only if you trust these files. Without it, these tasks cannot run or be scored.",
                      QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, parent)
    box.setObjectName("trustPythonDialog")
    box.setTextFormat(Qt.TextFormat.PlainText)  # paths and names are shown as they are
    box.button(QMessageBox.StandardButton.Yes).setText("Run this code")
    box.setDefaultButton(QMessageBox.StandardButton.Cancel)
    return box.exec() == QMessageBox.StandardButton.Yes


def _described_lines(described: list[tuple[str, str | None]], when_missing: str) -> str:
    return "\n".join(f"• {ref}\n    {path or 'file not found: ' + when_missing}" for ref, path in described)


class NewRunDialog(QDialog):
    """Suite (built-in or file), split, limit, samples, endpoint, concurrency, temperature."""

    def __init__(self, parent=None, *, suite: str | None = None, endpoint: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("New run")
        self.settings = load_settings()
        self.trust_verifiers = False   # set when the user agreed to run the suite's python verifiers
        form = QFormLayout()
        self.suite = QComboBox()
        self.suite.setEditable(True)
        self.suite.addItems(builtin_suites())
        self.suite.setToolTip("A built-in suite, or a path to a JSONL file of your own")
        browse = QPushButton("File…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.suite, 1)
        row.addWidget(browse)
        form.addRow("Suite", row)
        self.suite_info = QLabel()
        self.suite_info.setStyleSheet("color: #555")
        form.addRow("", self.suite_info)
        self.split = QComboBox()
        self.split.addItems(["train", "heldout", "all"])
        form.addRow("Split", self.split)
        self.limit = QSpinBox()
        self.limit.setRange(0, 1_000_000)
        self.limit.setSpecialValueText("all tasks")
        self.limit.setValue(5)
        form.addRow("Limit (tasks)", self.limit)
        self.samples = QSpinBox()
        self.samples.setRange(1, 1000)
        self.samples.setValue(2)
        form.addRow("Samples per task", self.samples)
        self.endpoint = QComboBox()
        endpoints = self.settings.all_endpoints()
        for name, ep in endpoints.items():
            label = f"{name} — {ep.model}" + (" (embedded)" if ep.is_local else "")
            self.endpoint.addItem(label, name)
        wanted = endpoint or self.settings.default_endpoint
        self.endpoint.setCurrentIndex(max(0, self.endpoint.findData(wanted)))
        form.addRow("Endpoint", self.endpoint)
        self.concurrency = QSpinBox()
        self.concurrency.setRange(1, 1024)
        self.concurrency.setValue(4)
        form.addRow("Concurrency", self.concurrency)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(-0.1, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setSpecialValueText("endpoint default")
        self.temperature.setValue(-0.1)
        form.addRow("Temperature", self.temperature)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Start run")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self.suite.currentTextChanged.connect(self._describe_suite)
        if suite:
            self.suite.setCurrentText(suite)
        self._describe_suite(self.suite.currentText())

    def _browse(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Suite file", "", "JSONL suites (*.jsonl);;All files (*)")
        if path:
            self.suite.setCurrentText(path)

    def _describe_suite(self, name: str) -> None:
        # Suites are small local files; reading one is fast enough to do here.
        try:
            suite = load_suite(name) if name else None
        except Exception as exc:  # noqa: BLE001 - shown inline; the error path runs when the user presses Start
            self.suite_info.setText(f"cannot load: {exc}"[:160])
            return
        if suite:
            counts, tools = suite.counts(), suite.tools()
            self.suite_info.setText(f"{counts['train']} train, {counts['heldout']} heldout tasks"
                                    + (f"; tools: {', '.join(tools)}" if tools else ""))

    def request(self) -> RunRequest:
        """The run the dialog describes (raises SettingsError for an unknown endpoint)."""
        temp = self.temperature.value()
        return RunRequest(
            suite=self.suite.currentText().strip(),
            endpoint=self.settings.endpoint(self.endpoint.currentData()),
            split=self.split.currentText(),
            limit=self.limit.value() or None,
            samples=self.samples.value(),
            concurrency=self.concurrency.value(),
            temperature=None if temp < 0 else round(temp, 2),
            trust_verifiers=self.trust_verifiers,
        )

    def _accept(self) -> None:
        try:
            suite = load_suite(self.suite.currentText().strip())
            tasks = suite.select(self.split.currentText(), self.limit.value() or None)
        except Exception as exc:  # noqa: BLE001 - the one error path
            show_exception(self, "Cannot use this suite", exc)
            return
        # The tasks this run would send: their python verifiers and tool sets run only with an explicit yes.
        verifiers, tool_sets = describe_python_verifiers(tasks), describe_python_tool_sets(tasks)
        self.trust_verifiers = False
        if verifiers or tool_sets:
            if not confirm_python_code(self, suite.name, verifiers, tool_sets):
                return  # back to the dialog: change the suite, or cancel
            self.trust_verifiers = True
        self.accept()


class RunsPage(Page):
    """Runs table (lazy, sortable, filterable), the running run's progress, and the selected run's rollouts."""

    def __init__(self, context: PageContext, parent=None):
        super().__init__(context, parent)
        ws = context.workspace
        self.job: Job | None = None
        self.active_run_id: str | None = None
        self.last_suite: str | None = None   # what "New run…" offers; None: the newest run's suite
        layout = QVBoxLayout(self)
        layout.addLayout(self._build_toolbar())
        layout.addWidget(self._build_welcome())
        layout.addWidget(self._build_progress())
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self._build_runs_table(ws))
        splitter.addWidget(self._build_rollouts_pane(ws))
        splitter.setSizes([300, 300])
        layout.addWidget(splitter, 1)
        self._update_empty_state()
        if self.runs_model.rowCount():
            self.runs_view.selectRow(0)  # the newest run's rollouts, so the page opens on something
        self._start_watching()

    def _build_toolbar(self) -> QHBoxLayout:
        self.new_button = QPushButton("New run…")
        self.new_button.setShortcut("Ctrl+N")
        self.new_button.setToolTip("Start a run (Ctrl+N)")
        self.new_button.clicked.connect(self.open_new_run_dialog)
        self.filter = QLineEdit()
        self.filter.setPlaceholderText("Filter runs by suite, model, endpoint, status…")
        self.filter.setClearButtonEnabled(True)
        self._filter_timer = QTimer(self, singleShot=True, interval=200)
        self._filter_timer.timeout.connect(lambda: self.runs_model.set_filter(self.filter.text()))
        self.filter.textChanged.connect(lambda _t: self._filter_timer.start())
        self.reflect_button = QPushButton("Reflect on this run")
        self.reflect_button.setEnabled(False)
        self.reflect_button.clicked.connect(self._reflect_run)
        self.compare_button = QPushButton("Compare task")
        self.compare_button.setToolTip("Open the selected rollout's task on the Compare page (or double-click it)")
        self.compare_button.setEnabled(False)
        self.compare_button.clicked.connect(self._compare_selected)
        top = QHBoxLayout()
        top.addWidget(self.new_button)
        top.addWidget(self.filter, 1)
        top.addWidget(self.compare_button)
        top.addWidget(self.reflect_button)
        return top

    def _build_progress(self) -> QFrame:
        self.progress_frame = QFrame()
        self.progress_frame.setFrameShape(QFrame.Shape.StyledPanel)
        self.progress_label = QLabel()
        self.progress_bar = QProgressBar()
        self.progress_bar.setFormat("%v / %m rollouts")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setShortcut("Ctrl+.")
        self.cancel_button.clicked.connect(self.cancel_run)
        prow = QHBoxLayout(self.progress_frame)
        prow.addWidget(self.progress_label, 2)
        prow.addWidget(self.progress_bar, 3)
        prow.addWidget(self.cancel_button)
        self.progress_frame.hide()
        return self.progress_frame

    def _build_runs_table(self, ws) -> QTableView:
        self.runs_model = RunsModel(ws, self)
        self.runs_view = QTableView()
        self.runs_view.setObjectName("runsTable")
        self.runs_view.setModel(self.runs_model)
        self.runs_view.setSortingEnabled(True)
        self.runs_view.horizontalHeader().setSortIndicator(8, Qt.SortOrder.DescendingOrder)
        self.runs_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.runs_view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.runs_view.verticalHeader().hide()
        self.runs_view.verticalHeader().setDefaultSectionSize(24)
        self.runs_view.setAlternatingRowColors(True)
        header = self.runs_view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for col, width in enumerate((150, 190, 150, 65, 80, 95, 60, 95, 150)):
            self.runs_view.setColumnWidth(col, width)
        self.runs_view.selectionModel().currentRowChanged.connect(self._run_selected)
        self.runs_model.modelReset.connect(self._update_empty_state)
        return self.runs_view

    def _build_rollouts_pane(self, ws) -> QWidget:
        self.rollouts_model = RolloutsModel(ws, self)
        self.rollouts_view = QTableView()
        self.rollouts_view.setObjectName("rolloutsTable")
        self.rollouts_view.setModel(self.rollouts_model)
        self.rollouts_view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.rollouts_view.verticalHeader().hide()
        self.rollouts_view.verticalHeader().setDefaultSectionSize(24)
        self.rollouts_view.horizontalHeader().setStretchLastSection(False)
        for col, width in enumerate((220, 60, 70, 60, 420, 60, 70)):
            self.rollouts_view.setColumnWidth(col, width)
        self.rollouts_view.horizontalHeader().setSectionResizeMode(4, QHeaderView.ResizeMode.Stretch)
        self.rollouts_view.doubleClicked.connect(lambda _i: self._compare_selected())
        self.rollouts_view.selectionModel().currentRowChanged.connect(
            lambda cur, _prev: self.compare_button.setEnabled(cur.isValid()))
        self.rollouts_title = QLabel("Rollouts — select a run")
        self.score_bar = ScoreBar(ws.path, self.changes, self)
        self.score_keys = ScoreKeys(self.rollouts_view, self.score_bar, self._unscored_selected)
        lower = QWidget()
        lower_layout = QVBoxLayout(lower)
        lower_layout.setContentsMargins(0, 0, 0, 0)
        lower_layout.addWidget(self.rollouts_title)
        lower_layout.addWidget(self.rollouts_view)
        lower_layout.addWidget(self.score_bar)
        return lower

    # --- other processes writing (a proxy's serve runs grow live) -------------------------------------

    def _start_watching(self) -> None:
        self._seen_version = queries.data_version(self.ws)
        self._run_count = self.runs_model.total()   # just loaded, unfiltered: every run
        self.watch_timer = QTimer(self, interval=WATCH_INTERVAL_MS)
        self.watch_timer.timeout.connect(self._watch)
        self.watch_timer.start()

    def stop_watching(self) -> None:
        """Stop polling the workspace (it is about to be closed)."""
        self.watch_timer.stop()

    def _watch(self) -> None:
        if not self.isVisible():
            return  # a hidden page catches up when shown
        try:
            self.poll_workspace()
        except sqlite3.ProgrammingError:
            self.stop_watching()  # the workspace was closed under a page not yet deleted

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if self.watch_timer.isActive():
            self._watch()

    def poll_workspace(self) -> bool:
        """Show what other processes wrote since the last poll; True when something had changed."""
        version = queries.data_version(self.ws)
        if version == self._seen_version:
            return False
        self._seen_version = version
        count = queries.run_count(self.ws)
        if count != self._run_count:
            self._run_count = count
            self._reload_runs()
            self._update_empty_state()
        else:
            self.runs_model.refresh_all()
        if self.rollouts_model.run_id is not None:
            self.rollouts_model.poll_new()
            self.rollouts_model.refresh_loaded()
        return True

    def _unscored_selected(self) -> str | None:
        index = self.rollouts_view.selectionModel().currentIndex()
        row = self.rollouts_model.row_data(index.row()) if index.isValid() else None
        return row["id"] if row is not None and is_unscored(row) else None

    # --- empty workspace: lead somewhere ----------------------------------------------------------

    def _build_welcome(self) -> QFrame:
        frame = self.welcome = QFrame()
        frame.setObjectName("welcome")
        frame.setStyleSheet("#welcome { background: #eef5ff; border: 1px solid #b6cff5; border-radius: 6px; }")
        title = QLabel("<b>Welcome to lessonlab.</b> This workspace has no runs yet.")
        text = QLabel(
            "A run sends a suite's tasks to a model and scores every reply with its verifier. "
            f"Start with the built-in <i>{WELCOME_SUITE}</i> suite on the embedded model "
            "(SmolLM2-135M, runs on this machine, no key needed), then compare its rollouts side by side."
        )
        text.setWordWrap(True)
        self.welcome_button = QPushButton(f"Run '{WELCOME_SUITE}' on the embedded model (5 tasks × 2 samples)")
        self.welcome_button.clicked.connect(self.start_welcome_run)
        other = QPushButton("Choose another suite or endpoint…")
        other.clicked.connect(self.open_new_run_dialog)
        buttons = QHBoxLayout()
        buttons.addWidget(self.welcome_button)
        buttons.addWidget(other)
        buttons.addStretch(1)
        layout = QVBoxLayout(frame)
        layout.addWidget(title)
        layout.addWidget(text)
        layout.addLayout(buttons)
        return frame

    def _update_empty_state(self) -> None:
        self.welcome.setVisible(self.runs_model.total() == 0 and not self.filter.text() and self.job is None)

    def start_welcome_run(self) -> None:
        """The first-start offer: a small built-in suite on the embedded model."""
        settings = load_settings()
        self.start_run(RunRequest(suite=WELCOME_SUITE, endpoint=settings.endpoint(LOCAL_ENDPOINT), limit=5,
                                  samples=2, concurrency=2))

    # --- runs ---------------------------------------------------------------------------------

    def open_new_run_dialog(self) -> None:
        """Ask for a run's suite, endpoint and sizes; start it when accepted."""
        if self.job is not None:
            show_error(self, "A run is in progress", "Wait for the current run to finish or cancel it first.")
            return
        suite = self.last_suite or queries.last_run_suite(self.ws) or WELCOME_SUITE
        dialog = NewRunDialog(self, suite=suite)
        dialog.setObjectName("newRunDialog")
        dialog.accepted.connect(lambda: self._start_from_dialog(dialog))
        dialog.open()

    def _start_from_dialog(self, dialog: NewRunDialog) -> None:
        start_with_request(self, "Cannot start the run", dialog.request, self.start_run)

    def start_run(self, request: RunRequest) -> Job:
        """Start a run in the background; the table and progress bar follow it."""
        if self.job is not None:
            raise RuntimeError("a run is already in progress")
        self.active_run_id = None  # until the new run's row exists
        self.remember_suite(request.suite)
        self.progress_label.setText(f"Preparing {request.suite} on {request.endpoint.name}…")
        self.progress_bar.setRange(0, 0)
        self.progress_frame.show()
        self.cancel_button.setEnabled(True)
        self.new_button.setEnabled(False)
        self.welcome.hide()
        self.job = perform_in_background(
            self, self.changes, "run", start_and_execute_run, self.ws.path, request, self.local_controller,
            on_progress=self._on_progress, on_done=self._on_done, on_failed=self._on_error,
            error_title="The run failed",
        )
        return self.job

    def remember_suite(self, suite: str) -> None:
        """Offer this suite (a built-in name or a file) the next time "New run…" opens."""
        self.last_suite = suite

    def busy_reason(self) -> str | None:
        """A run in progress keeps the workspace open."""
        return "Cancel the run before switching workspaces." if self.job is not None else None

    def close_page(self) -> None:
        """Stop polling before the workspace closes, then what every page does."""
        self.stop_watching()
        super().close_page()

    def cancel_run(self) -> None:
        """Stop the running run cleanly; what finished is kept and the run is marked interrupted."""
        if self.job is not None:
            self.job.cancel.set()
            self.cancel_button.setEnabled(False)
            self.progress_label.setText(self.progress_label.text() + " — cancelling…")

    def _on_progress(self, message) -> None:
        if isinstance(message, RunCreated):
            self.active_run_id = message.run_id
            self.progress_bar.setRange(0, max(1, message.total))
            self.progress_bar.setValue(0)
            note = " (python verifiers are not trusted here: they score 0)" if message.untrusted_python else ""
            self.progress_label.setText(f"Run {message.run_id}: starting…{note}")
            self.select_run(message.run_id)  # its row is there: the notice of RunCreated reloaded the list
        elif isinstance(message, ServerStarting):
            self.progress_label.setText(f"Run {self.active_run_id}: starting the embedded model…")
            self.progress_bar.setRange(0, 0)
        elif isinstance(message, RunProgress):
            self.progress_bar.setRange(0, max(1, message.total))
            self.progress_bar.setValue(message.done)
            cancelling = " — cancelling…" if self.job is not None and self.job.cancel.is_set() else ""
            self.progress_label.setText(
                f"Run {message.run_id}: {message.done}/{message.total} · errors {message.errors}"
                f" · mean reward {formatting.reward(message.mean_reward)}{cancelling}"
            )
            self.runs_model.refresh_run(message.run_id)
            if self.rollouts_model.run_id == message.run_id:
                self.rollouts_model.poll_new()

    def _finish(self) -> None:
        self.job = None
        self.new_button.setEnabled(True)
        self.cancel_button.setEnabled(False)

    def _on_done(self, result: RunResult) -> None:
        self._finish()
        self.progress_bar.setRange(0, max(1, result.n_planned))
        self.progress_bar.setValue(result.n_done)
        self.progress_label.setText(
            f"Run {result.run_id} {result.status}: {result.n_done}/{result.n_planned} · errors {result.n_errors}"
            f" · mean reward {formatting.reward(result.mean_reward)}"
        )

    def _on_error(self, exc: BaseException) -> None:
        self._finish()
        self.progress_label.setText(f"Run failed: {exc}")

    def on_changed(self, change: Change) -> None:
        """Refresh what this page shows after a change: the runs list, the selected run's rollouts."""
        if changed.RUNS in change:
            if change.run_id and self.runs_model.has_run(change.run_id):
                self.runs_model.refresh_run(change.run_id)
            else:
                self._reload_runs()
        if changed.ROLLOUTS in change and self.rollouts_model.run_id is not None \
                and change.run_id in (None, self.rollouts_model.run_id):
            self.rollouts_model.poll_new()
            self.rollouts_model.refresh_loaded()

    def _reload_runs(self) -> None:
        selected = self.selected_run_id()
        self.runs_model.reload()
        if selected:
            self.select_run(selected)

    # --- selection ------------------------------------------------------------------------------

    def select_run(self, run_id: str) -> None:
        """Select run_id's row (if fetched) and show its rollouts."""
        row = self.runs_model.row_of(run_id)
        if row >= 0:
            self.runs_view.selectRow(row)

    def show_run(self, run_id: str) -> bool:
        """Select run_id (clearing a filter that hides it, fetching rows until it is there); False if unknown."""
        if not self.runs_model.has_run(run_id) and self.filter.text():
            self.filter.clear()
            self._filter_timer.stop()
            self.runs_model.set_filter("")
        if not self.runs_model.has_run(run_id):
            self._reload_runs()  # a run newer than the list
        while self.runs_model.row_of(run_id) < 0 and self.runs_model.canFetchMore():
            self.runs_model.fetchMore()
        if self.runs_model.row_of(run_id) < 0:
            return False
        self.select_run(run_id)
        self.runs_view.scrollTo(self.runs_model.index(self.runs_model.row_of(run_id), 0))
        return True

    def selected_run_id(self) -> str | None:
        """The selected run's id, or None."""
        index = self.runs_view.selectionModel().currentIndex()
        return self.runs_model.run_id(index.row()) if index.isValid() else None

    def _run_selected(self, current, _previous) -> None:
        run_id = self.runs_model.run_id(current.row()) if current.isValid() else None
        self.rollouts_model.set_run(run_id)
        self.rollouts_title.setText(f"Rollouts of {run_id}" if run_id else "Rollouts — select a run")
        self.reflect_button.setEnabled(run_id is not None)
        self.compare_button.setEnabled(False)

    def _compare_selected(self) -> None:
        index = self.rollouts_view.selectionModel().currentIndex()
        if not index.isValid():
            return
        task_id = self.rollouts_model.data(index, RolloutsModel.TaskIdRole)
        self.context.navigation.compare_task.emit(task_id, [self.rollouts_model.run_id])

    def _reflect_run(self) -> None:
        # The run id, not the loaded rows: the rollouts table holds only the pages fetched so far.
        run_id = self.selected_run_id()
        if run_id:
            self.context.navigation.reflect_on_run.emit(run_id)   # the whole run, on the Compare page
