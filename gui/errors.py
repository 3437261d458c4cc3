"""The one error path of the GUI: log the error and show a dialog with its details."""
from __future__ import annotations

import logging
import traceback
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox, QWidget

from lessonlab.core.storage.integrity import damage_from

log = logging.getLogger("lessonlab.gui")

# Every error shown in this process, newest last (tests read it; the dialog is non-blocking).
shown_errors: list[tuple[str, str]] = []
# The open workspace, so that an error revealing damage to it is said as such (and noted beside it).
_workspace_path: Path | None = None


def set_workspace_path(path: Path | None) -> None:
    """The workspace the window has open (errors that reveal damage to it name it and say what to do)."""
    global _workspace_path
    _workspace_path = path


def format_exception(exc: BaseException) -> str:
    """The full traceback of exc as text."""
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def damage_message(damage: BaseException) -> str:
    """The damage error as a dialog's sentence ("The workspace … is damaged …")."""
    text = str(damage)
    return text[:1].upper() + text[1:]


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


def show_exception(parent: QWidget | None, title: str, exc: BaseException, details: str | None = None) -> QMessageBox:
    """show_error for an exception: its message on top, the traceback as details (details when given: a
    worker's traceback, formatted where it failed).

    An SQLite "malformed" error or stored text that no longer decodes is damage to the open workspace: the
    dialog says so and what to do (`lessonlab check`), and the damage is noted so no write goes on."""
    damage = damage_from(exc, _workspace_path) if _workspace_path is not None else None
    message = damage_message(damage) if damage is not None else (str(exc) or type(exc).__name__)
    return show_error(parent, title, message, format_exception(exc) if details is None else details)
