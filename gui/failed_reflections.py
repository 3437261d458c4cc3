"""The Review page's pane for a failed reflection: its error and raw reply, and Retry over the same rollouts."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout, QWidget

from lessonlab.core.lessons import review
from lessonlab.core.storage.workspace import Workspace

from .changes import Changes
from .errors import show_error
from .operations import ServerStarting, retry_reflection
from .perform import perform_in_background
from .workers import Job


class FailedReflectionPane(QWidget):
    """One failed reflection; Retry re-runs it in the background with the endpoint it used."""

    status = Signal(str)   # one line for the page's status bar

    def __init__(self, ws: Workspace, local_controller=None, changes: Changes | None = None, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.workspace_path = ws.path
        self.local_controller = local_controller
        self.changes = changes if changes is not None else Changes(self)
        self.entry: dict | None = None
        self.job: Job | None = None
        self.title = QLabel()
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        self.title.setWordWrap(True)
        self.title.setStyleSheet("font-weight: bold; color:#b71c1c")
        self.error = QLabel()
        self.error.setObjectName("failedError")
        self.error.setTextFormat(Qt.TextFormat.PlainText)  # errors may quote the model's reply
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.reply = QPlainTextEdit()
        self.reply.setObjectName("failedReply")
        self.reply.setReadOnly(True)
        self.retry_button = QPushButton("Retry")
        self.retry_button.setObjectName("retryButton")
        self.retry_button.setToolTip("Run the reflection again over the same rollouts with the same endpoint")
        self.retry_button.clicked.connect(self.retry)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(lambda: self.job and self.job.cancel.set())
        self.cancel_button.hide()
        self.output = QPlainTextEdit()
        self.output.setObjectName("retryOutput")
        self.output.setReadOnly(True)
        self.output.setPlaceholderText("The retried reflection's reply streams in here.")
        self.output.hide()
        row = QHBoxLayout()
        row.addWidget(self.retry_button)
        row.addWidget(self.cancel_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.error)
        layout.addWidget(QLabel("Raw reply (verbatim)"))
        layout.addWidget(self.reply, 2)
        layout.addLayout(row)
        layout.addWidget(self.output, 1)

    def show_reflection(self, entry: dict) -> None:
        """Show a failed reflection (a row of core.review.failed_reflections, with its kind as reflection_kind)."""
        self.entry = entry
        self.title.setText(f"{entry['reflection_kind']} {entry['id']} failed · endpoint {entry['endpoint']} · "
                           f"{entry['created_at'].replace('T', ' ')[:19]} · {entry['rollouts']} rollouts")
        self.error.setText(entry["error"] or "")
        try:
            raw = review.reflection_reply(self.ws, entry["id"])["raw_reply"]
        except Exception as exc:  # noqa: BLE001 - shown in place
            raw = f"(cannot read the reply: {exc})"
        self.reply.setPlainText(raw if raw is not None else "(no reply was received)")
        self.retry_button.setEnabled(self.job is None)

    def retry(self) -> Job | None:
        """Run the shown reflection again over the same rollouts, streaming the new reply below."""
        if self.entry is None:
            return None
        if self.job is not None:
            show_error(self, "A retry is in progress", "Wait for it to finish or cancel it first.")
            return None
        self.retry_button.setEnabled(False)
        self.cancel_button.show()
        self.output.clear()
        self.output.show()
        self.status.emit(f"Retrying {self.entry['id']} with {self.entry['endpoint']}…")
        self.job = perform_in_background(self, self.changes, "retry the reflection", retry_reflection,
                                         self.workspace_path, self.entry["id"], self.local_controller,
                                         on_progress=self._progress, on_chunk=self._chunk, on_done=self._done,
                                         on_failed=self._failed, error_title="Retry failed")
        return self.job

    def _progress(self, message) -> None:
        if isinstance(message, ServerStarting):
            self.status.emit("Starting the embedded model…")

    def _chunk(self, text: str) -> None:
        cursor = self.output.textCursor()
        cursor.movePosition(cursor.MoveOperation.End)
        cursor.insertText(text)  # plain text: the reply is never rendered

    def _finished(self) -> None:
        self.job = None
        self.cancel_button.hide()
        self.retry_button.setEnabled(True)

    def _done(self, result) -> None:
        self._finished()
        if result.status == "ok":
            self.status.emit(f"Retry {result.reflection_id}: {result.n_pending} new proposal(s) in the queue"
                             + (f", {result.n_invalid} invalid" if result.n_invalid else ""))
        else:
            self.status.emit(f"Retry {result.reflection_id} failed too: {result.error}")

    def _failed(self, exc: BaseException) -> None:
        self._finished()
        self.status.emit(f"Retry failed: {exc}")
