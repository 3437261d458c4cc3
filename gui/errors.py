"""The one error path of the GUI: log the error and show a dialog with its details."""
from __future__ import annotations

import logging
import traceback

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger("lessonlab.gui")

# Every error shown in this process, newest last (tests read it; the dialog is non-blocking).
shown_errors: list[tuple[str, str]] = []


def format_exception(exc: BaseException) -> str:
    """The full traceback of exc as text."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def show_error(parent: QWidget | None, title: str, message: str, details: str = "") -> QMessageBox:
    """Log an error and show it in a non-blocking dialog with an expandable details section."""
    log.error("%s: %s%s", title, message, f"\n{details}" if details else "")
    shown_errors.append((title, message))
    box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setTextFormat(Qt.TextFormat.PlainText)  # messages may quote model output: never render it
    if details:
        box.setDetailedText(details)
    box.setObjectName("errorDialog")
    box.open()  # non-modal to the event loop: a worker finishing later still gets through
    return box


def show_exception(parent: QWidget | None, title: str, exc: BaseException) -> QMessageBox:
    """show_error for an exception: its message on top, the traceback as details."""
    return show_error(parent, title, str(exc) or type(exc).__name__, format_exception(exc))
