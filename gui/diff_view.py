"""A read-only view of the word diff between two texts; the diff is computed in a background job."""
from __future__ import annotations

from PySide6.QtCore import Signal

from lessonlab.core.text_diff import changed_words, word_diff

from .common_widgets import SafeTextBrowser
from .highlight import diff_ops_to_html, escape_text
from .workers import Job, start_job


def diff_html(job, old: str, new: str) -> tuple[list, str]:
    """Background job: the word diff of old → new and its HTML (deleted words struck out, inserted ones green)."""
    ops = word_diff(old, new)
    return ops, diff_ops_to_html(ops, show_deleted=True)


class DiffView(SafeTextBrowser):
    """Shows old → new as one text with the changed words marked; only the newest request is shown."""

    ready = Signal()  # the diff asked for last is on screen

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("diffView")
        self.ops: list[tuple[str, str]] | None = None
        self._generation = 0

    def show_diff(self, old: str, new: str) -> Job:
        """Compute old → new in the background and show it when done."""
        self._generation += 1
        self.ops = None
        return start_job("word diff", diff_html, old or "", new or "", owner=self,
                         on_done=lambda result, g=self._generation: self._done(g, result),
                         error_title="Cannot diff the texts")

    def show_text(self, text: str) -> None:
        """Show plain text (no diff), dropping any diff still being computed."""
        self._generation += 1
        self.ops = None
        self.setHtml(escape_text(text))
        self.ready.emit()

    def _done(self, generation: int, result: tuple[list, str]) -> None:
        if generation != self._generation:
            return  # a newer request superseded this one
        self.ops, html = result
        self.setHtml(html)
        self.ready.emit()

    def summary(self) -> str:
        """'3 words removed, 5 added' for the diff on screen (empty before it arrives)."""
        if self.ops is None:
            return ""
        removed, added = changed_words(self.ops)
        return f"{removed} word{'s' if removed != 1 else ''} removed, {added} added"
