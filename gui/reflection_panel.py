"""The reflection panel under the Compare page's columns: one reflection at a time, its reply streamed in."""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout

from lessonlab.core.reflection import ReflectionResult
from .changes import Changes
from .errors import show_error
from .operations import ServerStarting, reflect, settings_endpoint
from .perform import perform_in_background, start_with_request
from .workers import Job

log = logging.getLogger("lessonlab.gui.reflection")


class ReflectionPanel(QFrame):
    """Starts a reflection in the background, streams its reply as plain text, and points to Review."""

    review_requested = Signal()

    def __init__(self, workspace_path: Path, local_controller=None, changes: Changes | None = None, parent=None):
        super().__init__(parent)
        self.workspace_path = Path(workspace_path)
        self.local_controller = local_controller
        self.changes = changes if changes is not None else Changes(self)
        self.job: Job | None = None
        self.working_title = ""   # what the title says while the reply comes in
        self.last_result: ReflectionResult | None = None
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = QLabel("Reflection")
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.output = QPlainTextEdit()  # the model's reply: plain text, never rendered
        self.output.setObjectName("reflectionOutput")
        self.output.setReadOnly(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.review_button = QPushButton("Open Review")
        self.review_button.clicked.connect(self.review_requested)
        self.review_button.hide()
        head = QHBoxLayout()
        head.addWidget(self.title, 1)
        head.addWidget(self.review_button)
        head.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(head)
        layout.addWidget(self.output)
        self.hide()

    def start(self, endpoint_name: str | None, *, run_id: str | None = None,
              rollout_ids: list[str] | None = None) -> Job | None:
        """Reflect on a whole run or on these rollouts with the named endpoint (None: the default)."""
        if not run_id and not rollout_ids:
            show_error(self, "Nothing to reflect on", "Select rollouts (or a run) first.")
            return None
        if self.job is not None:
            show_error(self, "A reflection is in progress", "Wait for it to finish or cancel it first.")
            return None
        return start_with_request(self, "Cannot reflect", lambda: settings_endpoint(endpoint_name),
                                  lambda endpoint: self._start(endpoint, run_id, rollout_ids))

    def _start(self, endpoint, run_id: str | None, rollout_ids: list[str] | None) -> Job:
        self.show()
        self.review_button.hide()
        self.output.clear()
        self.cancel_button.setEnabled(True)
        what = f"run {run_id}" if run_id else f"{len(rollout_ids)} rollouts"
        self.working_title = f"Reflecting on {what} with {endpoint.name}…"
        self.title.setText(self.working_title)
        self.job = perform_in_background(self, self.changes, "reflect", reflect, self.workspace_path, endpoint,
                                         self.local_controller, run_id=run_id, rollout_ids=rollout_ids,
                                         on_progress=self._progress, on_chunk=self._chunk, on_done=self._done,
                                         on_failed=self._failed, error_title="Reflection failed")
        return self.job

    def cancel(self) -> None:
        """Stop the reflection; what arrived so far is stored with the reflection marked failed."""
        if self.job is not None:
            self.job.cancel.set()
            self.title.setText("Cancelling the reflection…")

    def _progress(self, message) -> None:
        if isinstance(message, ServerStarting):
            self.title.setText("Starting the embedded model…")

    def _chunk(self, text: str) -> None:
        if self.title.text() != self.working_title and self.job is not None and not self.job.cancel.is_set():
            self.title.setText(self.working_title)   # the reply is streaming: the model has started, whatever was said
        cursor = self.output.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(text)  # plain text: the reply is never rendered
        self.output.ensureCursorVisible()

    def _done(self, result: ReflectionResult) -> None:
        self.job = None
        self.last_result = result
        self.cancel_button.setEnabled(False)
        if not self.output.toPlainText() and result.analysis:
            self.output.setPlainText(result.analysis)
        if result.status == "ok":
            self.title.setText(
                f"Reflection {result.reflection_id}: {result.n_pending} new proposal(s) waiting in Review"
                + (f", {result.n_invalid} invalid" if result.n_invalid else ""))
            self.review_button.show()
        else:
            self.title.setText(f"Reflection {result.reflection_id} failed: {result.error}")

    def _failed(self, exc: BaseException) -> None:
        self.job = None
        self.cancel_button.setEnabled(False)
        self.title.setText(f"Reflection failed: {exc}")

