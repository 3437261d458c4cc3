"""Errors of import and export: a malformed file (bad input, exit 2) names the file, the entry or line, and why."""
from __future__ import annotations

from lessonlab.core.errors import BadInput


class TransferError(BadInput, ValueError):
    """An import or export that cannot be done as asked (an unknown format, a missing file, no such scorer)."""


class MalformedFile(TransferError):
    """A file that cannot be imported; `where` is a zip entry ("entry samples/3_epoch_1.json") or "line 12"."""

    def __init__(self, path: str, where: str | None, reason: str):
        self.path = path
        self.where = where
        self.reason = reason
        self.imported: list = []  # files imported (and committed) before this one, when several were given
        super().__init__(f"{path}: {where}: {reason}" if where else f"{path}: {reason}")
