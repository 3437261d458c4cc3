"""Importing again is safe: a renamed copy writes nothing, an export comes home without duplicates, and an
imported run keeps the source's own times apart from the time it was imported."""
from __future__ import annotations

import json
import shutil

from lessonlab.core.transfer import export_rollouts, import_file
from tests.helpers.inspect_logs import DATA_DIR

POPULARITY = DATA_DIR / "2025-02-11T15-18-04-05-00_popularity_mj7khqpMM4GBCfVQozKgzB.eval"


def chat_file(path, count: int):
    lines = [{"messages": [{"role": "user", "content": f"q{i}?"}, {"role": "assistant", "content": "a"}],
              "task_id": f"t{i}", "reward": i % 2} for i in range(count)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def counts(ws) -> tuple[int, int, int]:
    return tuple(ws.one(f"SELECT COUNT(*) AS n FROM {table}")["n"] for table in ("runs", "rollouts", "tasks"))


def test_a_renamed_copy_of_an_imported_file_writes_no_task_rows_and_no_suite(workspace, tmp_path):
    original = chat_file(tmp_path / "first.jsonl", 20)
    import_file(workspace, original)
    before = counts(workspace)
    copy = shutil.copy(original, tmp_path / "renamed.jsonl")
    result = import_file(workspace, copy)
    assert (result.new, result.existing) == (0, 20)
    assert counts(workspace) == before
    assert workspace.one("SELECT COUNT(*) AS n FROM tasks WHERE suite = 'renamed'")["n"] == 0


def test_reimporting_an_export_into_its_own_workspace_adds_nothing(workspace, tmp_path):
    first = import_file(workspace, chat_file(tmp_path / "chats.jsonl", 10))
    out = tmp_path / "export.jsonl"
    export_rollouts(workspace, out, runs=[first.run_id])
    before = counts(workspace)
    again = import_file(workspace, out)
    assert (again.new, again.existing, again.run_id) == (0, 10, first.run_id)
    assert counts(workspace) == before


def test_an_imported_run_keeps_the_sources_times_apart_from_the_import_time(workspace):
    result = import_file(workspace, POPULARITY)
    run = workspace.one("SELECT created_at, started_at, finished_at, imported_at FROM runs WHERE id = ?",
                        (result.run_id,))
    assert run["created_at"] == run["started_at"] == "2025-02-11T20:18:04.000Z"  # the log's -05:00, in UTC
    assert run["created_at"] <= run["finished_at"] < run["imported_at"]
