"""Exports stream straight off indexes: the same lines and order as a sorted query, no whole-selection sort, and
an interrupted export leaves no file behind."""
from __future__ import annotations

import json

import pytest

from lessonlab.core.transfer import export_dpo, export_rollouts, export_sft, import_file
from lessonlab.core.transfer import exports as exports_module
from lessonlab.core.transfer.jsontext import encode
from lessonlab.core.transfer.exports import rollout_line, rollout_record
from lessonlab.core.transfer.selection import Selection
from tests.helpers.inspect_logs import DATA_DIR

INSPECT_LOG = DATA_DIR / "2025-02-11T15-18-04-05-00_popularity_mj7khqpMM4GBCfVQozKgzB.eval"


def _chat_lines(count: int) -> str:
    lines = []
    for i in range(count):
        task = i % 4
        record = {
            "messages": [{"role": "system", "content": "Be brief — ünïcode ✓"},
                         {"role": "user", "content": f"Task {task}: say \"{task}\"\nthen stop"}],
            "task_id": f"task-{task}", "metadata": {"n": task, "nested": {"none": None}},
            "model": "m", "usage": {"prompt_tokens": 3, "completion_tokens": None},
        }
        if i % 5 == 4:
            record["error"] = "server said 500"
        else:
            record["messages"].append({"role": "assistant", "content": f"{task if i % 3 else 'no'} ✓"})
            record["reward"] = float(i % 3 != 0)
        lines.append(json.dumps(record, ensure_ascii=i % 2 == 0) + "\n")
    return "".join(lines)


@pytest.fixture
def imported(workspace, tmp_path):
    source = tmp_path / "chat.jsonl"
    source.write_text(_chat_lines(40), encoding="utf-8")
    chat = import_file(workspace, source)
    inspect = import_file(workspace, INSPECT_LOG)
    return workspace, chat.run_id, inspect.run_id


def test_fast_lines_equal_the_parsed_records_with_errors_scores_and_unicode(imported):
    ws, chat_run, inspect_run = imported
    selection = Selection(ws, [chat_run, inspect_run])
    parsed = list(selection.rows(with_scores=True))
    raw = list(selection.rows(with_scores=True, parsed=False))
    assert len(parsed) == len(raw) == 40 + 10
    assert any(r["status"] == "error" for r in parsed) and any(r["scores_json"] != "[]" for r in parsed)
    for fast, slow in zip(raw, parsed):
        assert json.loads(rollout_line(fast)) == rollout_record(slow)
        assert "\n" not in rollout_line(fast)


@pytest.mark.parametrize("value", ["a\"b\n✓\u2028", 1, -0.0, 1.5, 1e300, float("nan"), float("-inf"), True, None,
                                   2 ** 70, {"x": [1, None, "é"]}])
def test_the_short_way_encodes_exactly_as_json_dumps(value):
    assert encode(value) == json.dumps(value, ensure_ascii=False)


def _sorted_reference(ws, run_ids: list[str]) -> list[str]:
    """The order the export promises, from one sorted query (what exports used before they streamed)."""
    marks = ",".join("?" * len(run_ids))
    return [row[0] for row in ws.conn.execute(
        "SELECT r.id FROM rollouts r JOIN runs ru ON ru.id = r.run_id"
        " LEFT JOIN run_tasks rt ON rt.run_id = r.run_id AND rt.task_id = r.task_id"
        f" WHERE r.run_id IN ({marks}) ORDER BY ru.created_at, r.run_id, rt.position, r.sample_index", run_ids)]


def test_rows_come_in_run_then_task_position_order_with_unplaced_tasks_first(imported):
    ws, chat_run, inspect_run = imported
    # A task without a place in its run (as an older workspace can have) still comes out, first.
    with ws.transaction():
        ws.conn.execute("DELETE FROM run_tasks WHERE run_id = ? AND position = "
                        "(SELECT MAX(position) FROM run_tasks WHERE run_id = ?)", (chat_run, chat_run))
    ids = [row["id"] for row in Selection(ws, [inspect_run, chat_run, chat_run]).rows()]
    assert ids == _sorted_reference(ws, [chat_run, inspect_run])
    suite = ws.one("SELECT suite FROM runs WHERE id = ?", (chat_run,))["suite"]
    assert [row["id"] for row in Selection(ws, suite=suite).rows()] == _sorted_reference(ws, [chat_run])


def test_rows_by_task_group_each_task_best_reward_first(imported):
    ws, chat_run, _ = imported
    rows = list(Selection(ws, [chat_run]).rows(by_task=True))
    keys = [(row["task_id"], -(row["reward"] if row["reward"] is not None else -1)) for row in rows]
    assert len(rows) == 40 and keys == sorted(keys)


def test_the_export_query_walks_indexes_without_sorting_the_run(imported):
    ws, chat_run, _ = imported
    selection = Selection(ws, [chat_run])
    placed = list(selection.queries())[1]
    plan = " | ".join(row[3] for row in ws.conn.execute("EXPLAIN QUERY PLAN " + placed[0], placed[1]))
    assert "TEMP B-TREE" not in plan, plan
    assert plan.startswith("SEARCH rt USING"), plan
    lookup = " | ".join(row[3] for row in ws.conn.execute(
        "EXPLAIN QUERY PLAN SELECT position FROM run_tasks WHERE run_id = ? AND task_id = ?", ("a", "b")))
    assert "idx_run_tasks_task" in lookup, lookup


@pytest.mark.parametrize("kind", ["rollouts", "sft", "dpo"])
def test_an_interrupted_export_leaves_no_file(imported, tmp_path, monkeypatch, kind):
    ws, chat_run, _ = imported
    target = tmp_path / "out" / "export.jsonl"
    target.parent.mkdir()
    seen = [0]
    original = Selection.rows

    def interrupted_rows(self, **kwargs):
        for row in original(self, **kwargs):
            seen[0] += 1
            if seen[0] == 10:
                raise KeyboardInterrupt
            yield row

    monkeypatch.setattr(Selection, "rows", interrupted_rows)
    export = {"rollouts": export_rollouts, "sft": export_sft, "dpo": export_dpo}[kind]
    with pytest.raises(KeyboardInterrupt):
        export(ws, target, runs=[chat_run])
    assert seen[0] == 10
    assert list(target.parent.iterdir()) == []


def test_an_export_replaces_the_file_only_when_complete(imported, tmp_path):
    ws, chat_run, _ = imported
    target = tmp_path / "r.jsonl"
    target.write_text("old\n", encoding="utf-8")
    assert export_rollouts(ws, target, runs=[chat_run]).count == 40
    lines = target.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 40 and json.loads(lines[0])["run_id"] == chat_run
    assert exports_module.rollout_line is rollout_line
