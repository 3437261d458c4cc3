"""Exports: SFT (with and without lessons), DPO pairs, rollouts that round-trip through import, lessons."""
from __future__ import annotations

import csv
import json
import threading

import pytest

from lessonlab.core import lessons as L
from lessonlab.core.errors import NotFound
from lessonlab.core.lessons.snapshots import base_prompt
from lessonlab.core.transfer import (TransferError, export_dpo, export_lessons, export_rollouts, export_sft,
                                     import_file)
from lessonlab.core.storage.workspace import open_workspace
from tests.helpers.inspect_logs import DATA_DIR
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from tests.helpers.tasks import answer_for, numeric_tasks, seed_run

LESSON = "Add the units digits first."


class HalfRight:
    """Each task's first request is answered right and the next one wrong (t3: always right; t5: refused)."""

    def __init__(self):
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, request, number):
        question = request["messages"][-1]["content"]
        if "What is 5 + 1" in question:
            return Reply(status=400, body={"error": {"message": "this prompt is refused"}})
        with self.lock:
            count = self.seen[question] = self.seen.get(question, 0) + 1
        right = answer_for(request)
        wrong = count > 1 and "What is 3 + 1" not in question
        return Reply(body=completion(f"Answer: {right + 1 if wrong else right}"))


@pytest.fixture
def seeded(tmp_path, make_suite):
    """A workspace with an active lesson and one real run: 6 tasks × 2 samples (one task with its own system message)."""
    tasks = numeric_tasks(6)
    tasks[4]["prompt"] = [{"role": "system", "content": "Use base 10."}, {"role": "user", "content": "What is 4 + 1?"}]
    suite = make_suite(tasks, name="sums")
    ws_path = tmp_path / "ws.db"
    ws = open_workspace(ws_path)
    lesson_id = L.add_lesson(ws, LESSON).lesson_ids[0]
    ws.close()
    with ScriptedServer(HalfRight()) as server:
        run_id = seed_run(ws_path, suite, server, samples=2)
    ws = open_workspace(ws_path)
    yield ws, run_id, lesson_id
    ws.close()


def read_jsonl(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_sft_is_chat_fine_tuning_jsonl_of_the_rewarded_rollouts(seeded, tmp_path):
    ws, run_id, _ = seeded
    summary = export_sft(ws, tmp_path / "sft.jsonl", runs=[run_id[:9]])
    lines = read_jsonl(tmp_path / "sft.jsonl")
    assert summary.examples == len(lines) == 6 and summary.tasks == 5  # t3 twice, t0-t2 and t4 once, t5 failed
    assert summary.tokens > 0 and summary.skipped == {"failed": 2, "below min reward": 4}
    for line in lines:
        assert list(line) == ["messages"]
        roles = [m["role"] for m in line["messages"]]
        assert roles == ["system", "user", "assistant"] and all(isinstance(m["content"], str) for m in line["messages"])
        assert LESSON in line["messages"][0]["content"] and line["messages"][-1]["content"].startswith("Answer: ")
    everything = export_sft(ws, tmp_path / "all.jsonl", runs=[run_id], min_reward=0.0)
    assert everything.examples == 10


def test_strip_lessons_rebuilds_the_base_prompt_without_the_lessons_block(seeded, tmp_path):
    ws, run_id, _ = seeded
    summary = export_sft(ws, tmp_path / "sft.jsonl", runs=[run_id], strip_lessons=True)
    lines = read_jsonl(tmp_path / "sft.jsonl")
    assert summary.stripped == summary.examples == 6
    systems = [line["messages"][0]["content"] for line in lines]
    assert LESSON not in json.dumps(lines) and "Lessons learned" not in json.dumps(lines)
    assert set(systems) == {base_prompt(), base_prompt() + "\n\nUse base 10."}  # the task's own system message stays


def test_nothing_to_export_writes_no_file(seeded, tmp_path):
    ws, run_id, _ = seeded
    with pytest.raises(TransferError, match="nothing to export: no rollouts of run .* with reward ≥ 2"):
        export_sft(ws, tmp_path / "none.jsonl", runs=[run_id], min_reward=2)
    assert not (tmp_path / "none.jsonl").exists() and list(tmp_path.glob(".none.jsonl*")) == []
    with pytest.raises(TransferError, match="give --run RUN"):
        export_sft(ws, tmp_path / "x.jsonl")
    with pytest.raises(NotFound, match="no run with id"):
        export_sft(ws, tmp_path / "x.jsonl", runs=["run_nope"])


def test_dpo_pairs_each_tasks_best_and_worst_sample(seeded, tmp_path):
    ws, run_id, _ = seeded
    summary = export_dpo(ws, tmp_path / "dpo.jsonl", suite="sums", strip_lessons=True)
    pairs = read_jsonl(tmp_path / "dpo.jsonl")
    assert summary.examples == len(pairs) == 4 and summary.tasks == 4  # t3: no gap; t5: failed
    assert summary.skipped == {"failed": 2, "no reward gap": 1}
    for pair in pairs:
        assert set(pair) == {"input", "preferred_output", "non_preferred_output"}
        question = pair["input"]["messages"][-1]["content"]
        right = int(question.split()[2]) + 1
        assert pair["preferred_output"] == [{"role": "assistant", "content": f"Answer: {right}"}]
        assert pair["non_preferred_output"] == [{"role": "assistant", "content": f"Answer: {right + 1}"}]
        assert pair["input"]["messages"][0]["content"].startswith(base_prompt()) and LESSON not in json.dumps(pair)


def test_rollouts_jsonl_round_trips_through_import(seeded, tmp_path):
    ws, run_id, _ = seeded
    first = export_rollouts(ws, tmp_path / "a.jsonl", runs=[run_id])
    assert first.count == 12
    other = open_workspace(tmp_path / "other.db")
    imported = import_file(other, tmp_path / "a.jsonl")
    assert (imported.new, imported.errors, imported.scored, imported.tasks) == (12, 2, 10, 6)
    assert (imported.suite, imported.model, imported.reward_scorer) == ("sums", "scripted-model", None)
    export_rollouts(other, tmp_path / "b.jsonl", runs=[imported.run_id])
    drop = ("id", "run_id")
    a = [{k: v for k, v in r.items() if k not in drop} for r in read_jsonl(tmp_path / "a.jsonl")]
    b = [{k: v for k, v in r.items() if k not in drop} for r in read_jsonl(tmp_path / "b.jsonl")]
    assert a == b
    assert any(r.get("error") for r in a) and {r["suite"] for r in a} == {"sums"}
    # Same tasks (content-addressed ids) and same snapshot ids as in the original workspace.
    assert ({r["task_id"] for r in ws.query("SELECT task_id FROM rollouts WHERE run_id = ?", (run_id,))}
            == {r["task_id"] for r in other.query("SELECT task_id FROM rollouts")})
    run = other.one("SELECT * FROM runs WHERE id = ?", (imported.run_id,))
    original = ws.one("SELECT * FROM runs WHERE id = ?", (run_id,))
    assert (run["n_done"], run["n_errors"], run["mean_reward"]) == (12, 2, original["mean_reward"])
    assert import_file(other, tmp_path / "a.jsonl").new == 0
    other.close()


def test_rollouts_csv_has_one_row_per_rollout(seeded, tmp_path):
    ws, run_id, _ = seeded
    export_rollouts(ws, tmp_path / "r.csv", runs=[run_id], fmt="csv")
    with open(tmp_path / "r.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and {r["task"] for r in rows} == {f"t{i}" for i in range(6)}
    assert json.loads(rows[0]["messages_json"])[0]["role"] == "system"
    assert {r["status"] for r in rows} == {"ok", "error"}


def test_imported_inspect_rollouts_export_too(workspace, tmp_path):
    result = import_file(workspace, DATA_DIR / "2025-02-11T15-18-04-05-00_popularity_mj7khqpMM4GBCfVQozKgzB.eval")
    summary = export_sft(workspace, tmp_path / "sft.jsonl", runs=[result.run_id], strip_lessons=True)
    lines = read_jsonl(tmp_path / "sft.jsonl")
    assert summary.examples == 8 and summary.stripped == 0  # no lessons in an outside prompt: kept as it was
    assert lines[0]["messages"][0]["content"].startswith("\nPlease note")


def test_lessons_export_as_json_with_versions_and_as_markdown(seeded, tmp_path):
    ws, _, lesson_id = seeded
    L.edit_lesson(ws, lesson_id, "Add the units digits first, then the tens.", reason="clearer")
    L.add_lesson(ws, "A retired one.")
    retired = L.list_lessons(ws)[-1].id
    L.retire_lesson(ws, retired, reason="unhelpful")
    result = export_lessons(ws, tmp_path / "lessons.json")
    document = json.loads((tmp_path / "lessons.json").read_text())
    assert result.count == 2 and document["format"] == "lessonlab-lessons"
    first = next(x for x in document["lessons"] if x["id"] == lesson_id)
    assert [v["text"] for v in first["versions"]] == [LESSON, "Add the units digits first, then the tens."]
    assert [e["kind"] for e in first["events"]] == ["created", "edited"] and first["versions"][1]["reason"] == "clearer"
    assert first["used_in"]["rollouts"] == 12
    export_lessons(ws, tmp_path / "lessons.md", fmt="markdown")
    text = (tmp_path / "lessons.md").read_text()
    assert "## Active (1)" in text and "## Retired (1)" in text and "then the tens." in text
    only = export_lessons(ws, tmp_path / "active.json", status="active")
    assert only.count == 1


def test_export_lessons_takes_several_statuses_as_the_app_filters_them(workspace, tmp_path):
    active = L.add_lesson(workspace, "Keep it.").lesson_ids[0]
    proposed = L.add_lesson(workspace, "Maybe this.", status="proposed").lesson_ids[0]
    retired = L.add_lesson(workspace, "Gone.").lesson_ids[0]
    L.retire_lesson(workspace, retired)
    export_lessons(workspace, tmp_path / "some.json", status=("active", "proposed"))
    ids = {row["id"] for row in json.loads((tmp_path / "some.json").read_text())["lessons"]}
    assert ids == {active, proposed}
    with pytest.raises(TransferError, match="unknown status"):
        export_lessons(workspace, tmp_path / "x.json", status=("active", "bogus"))
