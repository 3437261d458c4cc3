"""What counts as damage to a workspace, and the note that keeps writes away until a check passes."""
from __future__ import annotations

import json
import sqlite3

import pytest

from lessonlab.core.errors import WorkspaceDamaged
from lessonlab.core.storage.integrity import check_workspace, damage_from, damage_note_path, noted_damage


def test_malformed_and_undecodable_are_damage_locked_is_not(tmp_path):
    path = tmp_path / "ws.db"
    assert damage_from(sqlite3.OperationalError("database is locked"), path) is None
    assert not damage_note_path(path).exists()
    found = damage_from(sqlite3.DatabaseError("database disk image is malformed"), path)
    assert isinstance(found, WorkspaceDamaged) and f"lessonlab check -w {path}" in str(found)
    assert noted_damage(path) == "database disk image is malformed"
    try:
        json.loads('{"messages": [')
    except json.JSONDecodeError as exc:
        assert "stored text does not decode" in str(damage_from(exc, path))


def test_writes_are_refused_while_damage_is_noted_and_allowed_after_a_passing_check(workspace):
    damage_from(sqlite3.DatabaseError("database disk image is malformed"), workspace.path)
    with pytest.raises(WorkspaceDamaged, match="is damaged"):
        with workspace.transaction():
            workspace.conn.execute("INSERT INTO _migrations VALUES ('x', 'y')")
    workspace.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert check_workspace(workspace.path).ok and noted_damage(workspace.path) is None
    with workspace.transaction():
        workspace.conn.execute("DELETE FROM _migrations WHERE name = 'nothing'")


def test_a_file_that_is_not_sqlite_fails_the_check_with_advice(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"hello, this is not a database at all" * 200)
    report = check_workspace(path)
    assert not report.ok and "not a database" in report.problems[0] and ".recover" in report.advice
