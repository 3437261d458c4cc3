"""One error hierarchy for the engine: bad input (exit 2) or failed work (exit 1).

Every domain error derives from one of the two bases, so a front end catches the bases and
never lists error classes by hand. SQLite's own "locked" and "read-only" errors are turned
into one clear sentence by `database_error`.
"""
from __future__ import annotations

import sqlite3
from pathlib import Path

EXIT_FAILED, EXIT_BAD_INPUT = 1, 2


class LessonlabError(Exception):
    """Base of every error lessonlab reports as one clear line."""

    exit_code = EXIT_FAILED


class BadInput(LessonlabError):
    """The input is wrong (a malformed file, an unknown id, an invalid option): exit 2."""

    exit_code = EXIT_BAD_INPUT


class WorkFailed(LessonlabError):
    """The input was fine but the work could not be done (a dead server, a locked database): exit 1."""

    exit_code = EXIT_FAILED


class NotFound(BadInput, LookupError):
    """No row matches the id given, or a prefix matches several."""


class DatabaseBusy(WorkFailed):
    """Another process holds the workspace's write lock past the busy timeout."""


class DatabaseReadOnly(WorkFailed):
    """The workspace file (or its folder) cannot be written."""


class WorkspaceDamaged(BadInput):
    """The workspace file is damaged (SQLite found corruption, or stored text no longer decodes)."""


def damaged_error(path: Path | str | None, cause: str) -> WorkspaceDamaged:
    """The one-line error for a damaged workspace, saying what to do."""
    where = f"the workspace {path}" if path else "the workspace"
    option = f" -w {path}" if path else ""
    return WorkspaceDamaged(f"{where} is damaged ({cause}); nothing more is written to it: "
                            f"run `lessonlab check{option}` for what to do")


def database_error(exc: sqlite3.Error, path: Path | str | None = None) -> LessonlabError | None:
    """The clear error for an SQLite failure a user can act on, or None when it is a bug."""
    message = str(exc).lower()
    where = f"the workspace {path}" if path else "the workspace"
    if "database is locked" in message or "database table is locked" in message or "busy" in message:
        return DatabaseBusy(
            f"{where} is locked by another process (a run or the app writing to it); "
            "try again when it has finished"
        )
    if "readonly" in message or "read-only" in message:
        return DatabaseReadOnly(f"{where} is read-only; listing and showing work, writing does not")
    if "disk i/o error" in message or "unable to open database" in message:
        return WorkFailed(f"{where} cannot be read or written ({exc})")
    if "database or disk is full" in message:
        return WorkFailed(f"{where} cannot be written: the disk is full")
    if "malformed" in message or "could not decode" in message:
        # SQLite quotes the undecodable text itself after " with text": name the column, not the bytes.
        return damaged_error(path, str(exc).split(" with text", 1)[0].splitlines()[0][:120])
    if "file is not a database" in message:
        return BadInput(f"{where} is not a valid SQLite database ({exc})")
    return None
