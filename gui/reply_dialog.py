"""A non-modal window with a reflection's analysis, error, notes and raw reply (read from the workspace)."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from lessonlab.core.lessons import review
from lessonlab.core.storage.workspace import Workspace

from .errors import show_exception


class ReflectionReplyDialog(QDialog):
    """Everything a reflection said, as plain text (a reply is never rendered)."""

    def __init__(self, ws: Workspace, reflection_id: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("reflectionReplyDialog")
        data = review.reflection_reply(ws, reflection_id)
        self.setWindowTitle(f"Reflection {data['id']}")
        self.resize(760, 560)
        head = QLabel()
        head.setTextFormat(Qt.TextFormat.PlainText)
        head.setWordWrap(True)
        lines = [f"{data['kind']} {data['id']} [{data['status']}] on {data['endpoint']} "
                 f"({data['server_model'] or data['model']}), {data['created_at'].replace('T', ' ')[:19]}"]
        if data["error"]:
            lines.append(f"Error: {data['error']}")
        lines += [f"Note: {note}" for note in data["notes"]]
        if data["omitted"]:
            lines.append(f"{data['omitted']} rollout(s) were left out of the context")
        head.setText("\n".join(lines))
        self.analysis = QPlainTextEdit(data["analysis"] or "(no analysis)")
        self.analysis.setReadOnly(True)
        self.analysis.setMaximumHeight(120)
        self.raw = QPlainTextEdit(data["raw_reply"] if data["raw_reply"] is not None else "(no reply was received)")
        self.raw.setObjectName("rawReply")
        self.raw.setReadOnly(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(head)
        layout.addWidget(QLabel("Analysis"))
        layout.addWidget(self.analysis)
        layout.addWidget(QLabel("Raw reply (verbatim)"))
        layout.addWidget(self.raw, 1)
        layout.addWidget(buttons)


def open_reflection_dialog(parent: QWidget, ws: Workspace, reflection_id: str,
                           keep: list[QWidget]) -> ReflectionReplyDialog | None:
    """Show a reflection's analysis and raw reply in a window of its own (kept alive in `keep`)."""
    try:
        dialog = ReflectionReplyDialog(ws, reflection_id, parent)
    except Exception as exc:  # noqa: BLE001 - the one error path
        show_exception(parent, "Cannot show the reflection", exc)
        return None
    keep[:] = [d for d in keep if d.isVisible()] + [dialog]
    dialog.show()
    return dialog
