"""Widgets shared by several pages and dialogs (page-specific widgets stay in their page's module)."""
from __future__ import annotations

from PySide6.QtCore import QUrl
from PySide6.QtWidgets import QTextBrowser


class SafeTextBrowser(QTextBrowser):
    """A read-only rich text view that never follows links nor loads any resource."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)

    def loadResource(self, type_: int, name: QUrl):  # noqa: N802 - Qt override
        return None  # images, stylesheets, anything: never fetched
