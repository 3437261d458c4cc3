"""Training exports work each distinct request out once and send plain ones out as stored: the same examples
as working every rollout out on its own, read with fewer columns and without sorting whole rows in SQLite."""
from __future__ import annotations

import json

import pytest

from lessonlab.core.transfer import export_dpo, export_sft, import_file
from lessonlab.core.transfer.examples import Requests, is_plain, prompt_and_continuation
from lessonlab.core.transfer.selection import TRAINING_COLUMNS, Selection

PLAIN = [
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}],
    [{"role": "user", "content": "hi", "name": "ann"}, {"role": "assistant", "content": "hello"},
     {"role": "user", "content": "again"}],
    [],
]
NOT_PLAIN = [
    [{"role": "user", "content": "x"}, {"role": "assistant", "content": None,
                                        "tool_calls": [{"id": "c1", "function": "add", "arguments": {"a": 1}}]},
     {"role": "tool", "tool_call_id": "c1", "content": "1"}],
    [{"role": "user", "content": "<tool_response>3</tool_response>"}],
    [{"role": "user", "content": None}],
    [{"role": "user", "content": "x", "name": None}],
    [{"role": "user", "content": [{"type": "text", "text": "x"}]}],
    [{"role": "developer", "content": "x"}],
    [{"role": "user", "content": "x", "extra": 1}],
]


@pytest.mark.parametrize("messages", PLAIN)
def test_a_plain_request_is_its_own_prompt_and_the_reply_its_continuation(messages):
    assert is_plain(messages)
    assert prompt_and_continuation(messages, "4") == (messages, [{"role": "assistant", "content": "4"}])


@pytest.mark.parametrize("messages", NOT_PLAIN)
def test_anything_else_takes_the_general_way(messages):
    assert not is_plain(messages)


def _chat(tasks: int, samples: int, prefix: str = "") -> str:
    lines = []
    for i in range(tasks * samples):
        task = i % tasks
        messages = [{"role": "system", "content": "Answer with a number."},
                    {"role": "user", "content": f"{prefix}Task {task}: {task} + {task}?"},
                    {"role": "assistant", "content": str(2 * task + (i // tasks) % 2)}]
        lines.append(json.dumps({"messages": messages, "task_id": f"t{task}", "reward": float((i // tasks) % 2 == 0),
                                 "model": "m"}) + "\n")
    return "".join(lines)


@pytest.fixture
def chat_run(workspace, tmp_path):
    source = tmp_path / "chat.jsonl"
    source.write_text(_chat(5, 4), encoding="utf-8")
    return import_file(workspace, source).run_id


def _lines(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def test_each_distinct_request_is_worked_out_once(workspace, chat_run, tmp_path, monkeypatch):
    worked = []
    original = Requests._work_out
    monkeypatch.setattr(Requests, "_work_out", lambda self, row: worked.append(row["task_id"]) or original(self, row))
    summary = export_sft(workspace, tmp_path / "sft.jsonl", runs=[chat_run], min_reward=0.0)
    assert summary.examples == 20 and len(worked) == len(set(worked)) == 5
    for line, row in zip(_lines(tmp_path / "sft.jsonl"), Selection(workspace, [chat_run]).rows()):
        prompt, continuation = prompt_and_continuation(row["messages"], row["output"])
        assert line == {"messages": [*prompt, *continuation]}


def test_a_full_cache_starts_again_and_the_examples_stay_the_same(workspace, chat_run, tmp_path, monkeypatch):
    before = export_dpo(workspace, tmp_path / "a.jsonl", runs=[chat_run])
    monkeypatch.setattr(Requests, "LIMIT", 1)
    after = export_dpo(workspace, tmp_path / "b.jsonl", runs=[chat_run])
    assert before.examples == after.examples == 5 and before.tokens == after.tokens
    assert _lines(tmp_path / "a.jsonl") == _lines(tmp_path / "b.jsonl")


def test_rows_by_task_put_ties_in_run_age_then_sample_order(workspace, tmp_path):
    first, second = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    first.write_text(_chat(3, 4), encoding="utf-8")
    runs = [import_file(workspace, first).run_id]
    second.write_text(_chat(3, 2).replace('"m"', '"m2"'), encoding="utf-8")
    runs.append(import_file(workspace, second).run_id)
    rank = {run_id: n for n, run_id in enumerate(Selection(workspace, runs).run_ids_in_order())}
    rows = list(Selection(workspace, list(reversed(runs))).rows(by_task=True, parsed=False, columns=TRAINING_COLUMNS))
    keys = [(row["task_id"], -row["reward"], rank[row["run_id"]], row["sample_index"]) for row in rows]
    assert len(rows) == 12 + 6 and keys == sorted(keys) and len({row["run_id"] for row in rows}) == 2


def test_the_by_task_query_sorts_no_rows_in_sqlite_and_the_page_cache_is_put_back(workspace, chat_run, tmp_path):
    for sql, params in Selection(workspace, [chat_run]).queries(by_task=True, columns=TRAINING_COLUMNS):
        plan = " | ".join(row[3] for row in workspace.conn.execute("EXPLAIN QUERY PLAN " + sql, params))
        assert "TEMP B-TREE" not in plan and " tasks " not in f" {plan} ", plan
    before = workspace.conn.execute("PRAGMA cache_size").fetchone()[0]
    export_dpo(workspace, tmp_path / "dpo.jsonl", runs=[chat_run])
    assert workspace.conn.execute("PRAGMA cache_size").fetchone()[0] == before


def test_failed_rollouts_messages_are_not_read(workspace, tmp_path):
    source = tmp_path / "chat.jsonl"
    source.write_text(json.dumps({"messages": [{"role": "user", "content": "q"}], "task_id": "t", "error": "boom"})
                      + "\n" + _chat(1, 2), encoding="utf-8")
    run_id = import_file(workspace, source).run_id
    rows = list(Selection(workspace, [run_id]).rows(parsed=False, columns=TRAINING_COLUMNS))
    assert [row["messages_json"] is None for row in rows].count(True) == 1
    assert export_sft(workspace, tmp_path / "sft.jsonl", runs=[run_id]).skipped == {"failed": 1, "below min reward": 1}
