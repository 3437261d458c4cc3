"""The GUI says when the open workspace is damaged: an error that reveals damage names the workspace and what
to do (and notes it, so no write goes on), and opening a workspace with damage noted says so at once."""
from __future__ import annotations

import sqlite3

from lessonlab.core.storage.integrity import noted_damage
from lessonlab.gui import errors
from lessonlab.gui.errors import show_exception


def test_a_malformed_database_error_is_shown_as_damage_with_what_to_do(seeded, window_factory):
    path, _ = seeded
    window = window_factory(path)
    show_exception(window, "Cannot show the run", sqlite3.DatabaseError("database disk image is malformed"))
    title, message = errors.shown_errors[-1]
    assert title == "Cannot show the run"
    assert message.startswith(f"The workspace {path} is damaged") and "lessonlab check" in message
    assert noted_damage(path) == "database disk image is malformed"
    other = window_factory(path)   # the same workspace opened again: said before anything is tried
    assert errors.shown_errors[-1][0] == "The workspace is damaged" and "lessonlab check" in errors.shown_errors[-1][1]
    assert other.ws is not None   # still open for reading


def test_an_ordinary_error_is_shown_as_it_is(seeded, window_factory):
    path, _ = seeded
    window = window_factory(path)
    show_exception(window, "Cannot score", ValueError("reward must be between 0 and 1"))
    assert errors.shown_errors[-1] == ("Cannot score", "reward must be between 0 and 1")
    assert noted_damage(path) is None
