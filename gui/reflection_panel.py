"""The reflection panel under the Compare page's columns: one reflection at a time, its reply streamed in."""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout

from lessonlab.core.reflection import ReflectionResult
from lessonlab.core.settings import load_settings

from . import changes as changed
from .changes import Changes
from .errors import show_error, show_exception
from .operations import ServerStarting, reflect
from .workers import Job, start_job

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
        try:
            settings = load_settings()
            endpoint = settings.endpoint(endpoint_name or settings.default_endpoint)
        except Exception as exc:  # noqa: BLE001 - the one error path
            show_exception(self, "Cannot reflect", exc)
            return None
        self.show()
        self.review_button.hide()
        self.output.clear()
        self.cancel_button.setEnabled(True)
        what = f"run {run_id}" if run_id else f"{len(rollout_ids)} rollouts"
        self.working_title = f"Reflecting on {what} with {endpoint.name}…"
        self.title.setText(self.working_title)
        self.job = start_job("reflect", reflect, self.workspace_path, endpoint, self.local_controller,
                             run_id=run_id, rollout_ids=rollout_ids, owner=self, on_progress=self._progress,
                             on_chunk=self._chunk, on_done=self._done, on_error=self._failed)
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
        # A failed reflection is stored too (with its raw reply), so both outcomes change the workspace.
        self.changes.notify(changed.REFLECTIONS, changed.PROPOSALS)

    def _failed(self, exc: BaseException, details: str) -> None:
        self.job = None
        self.cancel_button.setEnabled(False)
        self.title.setText(f"Reflection failed: {exc}")
        show_error(self, "Reflection failed", str(exc) or type(exc).__name__, details)

