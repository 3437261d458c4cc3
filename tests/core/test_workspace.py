"""Workspace: migrations, WAL, transactions, readability by plain sqlite tools."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from lessonlab.core.storage import migrations
from lessonlab.core.storage.workspace import WorkspaceError, open_workspace


def test_new_workspace_is_migrated_and_in_wal_mode(tmp_path):
    ws = open_workspace(tmp_path / "a.db")
    names = [r["name"] for r in ws.query("SELECT name FROM _migrations ORDER BY name")]
    assert names == sorted(fn.__name__ for fn in migrations.MIGRATIONS)
    assert ws.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tables = set(ws.db.table_names())
    assert {"tasks", "runs", "rollouts", "rollout_texts", "snapshots", "run_tasks"} <= tables
    ws.close()


def test_reopening_applies_nothing_twice(tmp_path):
    open_workspace(tmp_path / "a.db").close()
    ws = open_workspace(tmp_path / "a.db")
    assert migrations.migrate(ws.db) == []
    ws.close()


def test_transaction_rolls_back_everything_on_error(workspace):
    with pytest.raises(RuntimeError):
        with workspace.transaction():
            workspace.conn.execute(
                "INSERT INTO snapshots (id, hash, system_prompt, base_prompt, created_at) VALUES ('s', 'h', 'p', 'p', 'now')"
            )
            raise RuntimeError("half-way")
    assert workspace.one("SELECT COUNT(*) AS n FROM snapshots")["n"] == 0


def test_not_a_database_gives_clear_error(tmp_path):
    bad = tmp_path / "bad.db"
    bad.write_text("this is not sqlite " * 100)
    with pytest.raises(WorkspaceError, match="not a usable lessonlab workspace"):
        open_workspace(bad)


def test_newer_workspace_is_refused(tmp_path):
    ws = open_workspace(tmp_path / "a.db")
    ws.conn.execute("INSERT INTO _migrations VALUES ('m999_future', 'x')")
    ws.close()
    with pytest.raises(WorkspaceError, match="newer lessonlab"):
        open_workspace(tmp_path / "a.db")


def test_readable_by_plain_sqlite_utils(tmp_path):
    path = tmp_path / "a.db"
    open_workspace(path).close()
    out = subprocess.run(
        [sys.executable, "-m", "sqlite_utils", "tables", str(path)], capture_output=True, text=True, check=True
    )
    assert "rollouts" in out.stdout
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0


def test_full_text_search_over_outputs(workspace):
    workspace.conn.execute("PRAGMA foreign_keys=OFF")  # a bare text row, without its rollout
    workspace.conn.execute("INSERT INTO rollout_texts (rollout_id, messages_json, output) VALUES ('ro_1', '[]', 'counting strawberries carefully')")
    hits = workspace.query("SELECT rollout_id FROM rollout_texts WHERE rowid IN (SELECT rowid FROM rollout_texts_fts WHERE rollout_texts_fts MATCH 'strawberry')")
    assert [h["rollout_id"] for h in hits] == ["ro_1"]


def test_opening_a_new_workspace_from_several_processes_at_once_migrates_it_once(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    path = tmp_path / "race.db"
    def open_and_close(_):
        open_workspace(path).close()   # a connection stays in the thread that made it

    with ThreadPoolExecutor(6) as pool:  # each opens its own connection, as separate processes would
        list(pool.map(open_and_close, range(6)))
    ws = open_workspace(path)
    assert ws.one("SELECT COUNT(*) AS n FROM _migrations")["n"] == len(migrations.MIGRATIONS)
    ws.close()
