"""Lessons database: versions and events, curation, snapshots that record exact lesson versions."""
from __future__ import annotations

import asyncio
import json

import pytest
from click.testing import CliRunner

from tests.helpers.tasks import numeric_tasks
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.core import lessons as L
from lessonlab.cli.root import cli
from lessonlab.core.runs.runner import create_run, execute_run
from lessonlab.core.settings import Endpoint
from lessonlab.core.lessons.snapshots import base_prompt, current_snapshot, render_system_prompt, snapshot_lessons
from lessonlab.core.tasks.suites import load_suite


def test_estimate_is_ceil_of_chars_over_four():
    assert [L.estimate_tokens(t) for t in ("", "abc", "abcd", "abcde")] == [0, 1, 1, 2]


def test_add_edit_retire_restore_keep_every_version_and_event(workspace):
    added = L.add_lesson(workspace, "Count letters one by one.", reason="strawberry failures")
    lid = added.lesson_ids[0]
    assert added.statuses == {lid: "active"}
    edited = L.edit_lesson(workspace, lid, "Spell the word, then count letters one by one.", reason="clearer")
    assert edited.version_ids and L.get_lesson(workspace, lid).version == 2
    L.retire_lesson(workspace, lid, reason="not helping")
    assert L.get_lesson(workspace, lid).status == "retired"
    L.restore_lesson(workspace, lid[:8], reason="it was")  # a unique prefix works
    history = L.lesson_history(workspace, lid)
    assert [v["text"] for v in history["versions"]] == ["Count letters one by one.",
                                                        "Spell the word, then count letters one by one."]
    assert "-Count letters one by one." in history["versions"][1]["diff"]
    assert [e["kind"] for e in history["events"]] == ["created", "edited", "retired", "restored"]
    assert all(e["author"] == "human" for e in history["events"])
    assert history["lesson"]["status"] == "active"


def test_bad_ids_and_states_raise_lesson_error(workspace):
    with pytest.raises(L.LessonError, match="no lesson"):
        L.retire_lesson(workspace, "les_missing")
    lid = L.add_lesson(workspace, "A lesson.").lesson_ids[0]
    with pytest.raises(L.LessonError, match="only retired or rejected"):
        L.restore_lesson(workspace, lid)
    with pytest.raises(L.LessonError, match="already says this"):
        L.add_lesson(workspace, "a lesson")
    with pytest.raises(L.LessonError, match="needs some text"):
        L.add_lesson(workspace, "   ")
    with pytest.raises(L.LessonError, match="no proposal"):
        L.accept_proposal(workspace, "prop_nope")


def test_snapshot_without_lessons_is_exactly_the_base_prompt(workspace):
    snap = current_snapshot(workspace)
    assert snap.system_prompt == base_prompt() and snap.lesson_count == 0
    assert render_system_prompt("B", []) == "B"


def test_scope_and_stable_order_in_the_snapshot(workspace):
    a = L.add_lesson(workspace, "First lesson.").lesson_ids[0]
    b = L.add_lesson(workspace, "Only for arithmetic.", scope=["arithmetic"]).lesson_ids[0]
    c = L.add_lesson(workspace, "Third lesson.").lesson_ids[0]
    plain = current_snapshot(workspace, None, "strawberry")
    arith = current_snapshot(workspace, None, "arithmetic")
    assert [r["lesson_id"] for r in snapshot_lessons(workspace, plain.id)] == [a, c]
    assert [r["lesson_id"] for r in snapshot_lessons(workspace, arith.id)] == [a, b, c]
    assert arith.system_prompt.startswith(base_prompt())
    assert arith.system_prompt.index("First lesson.") < arith.system_prompt.index("Only for arithmetic.") \
        < arith.system_prompt.index("Third lesson.")
    # identical prompts share one snapshot
    assert current_snapshot(workspace, None, "strawberry").id == plain.id


def test_accepting_a_lesson_changes_the_next_runs_snapshot_and_old_rollouts_keep_theirs(workspace, make_suite):
    path = make_suite(numeric_tasks(2))
    suite = load_suite(str(path))
    with ScriptedServer(lambda req, n: Reply(body=completion("Answer: 1"))) as server:
        endpoint = Endpoint(name="s", base_url=server.base_url, model="m")
        lid = L.add_lesson(workspace, "Check the sum twice.").lesson_ids[0]
        v1 = L.get_lesson(workspace, lid).version_id
        first = current_snapshot(workspace, None, suite.name)
        run1 = create_run(workspace, suite, suite.select(), endpoint=endpoint, snapshot=first, samples=1, split="train")
        asyncio.run(execute_run(workspace, run1, endpoint))
        L.edit_lesson(workspace, lid, "Check the sum twice, digit by digit.")
        second = current_snapshot(workspace, None, suite.name)
        run2 = create_run(workspace, suite, suite.select(), endpoint=endpoint, snapshot=second, samples=1, split="train")
        asyncio.run(execute_run(workspace, run2, endpoint))
        sent = [r["messages"][0]["content"] for r in server.requests]
    assert first.id != second.id
    assert "Check the sum twice." in sent[0] and "digit by digit" in sent[-1]
    old = workspace.query("SELECT DISTINCT snapshot_id FROM rollouts WHERE run_id = ?", (run1,))
    assert [r["snapshot_id"] for r in old] == [first.id]
    assert [(r["lesson_id"], r["version_id"]) for r in snapshot_lessons(workspace, first.id)] == [(lid, v1)]
    assert snapshot_lessons(workspace, second.id)[0]["version"] == 2


def _reflection_with(ws, ops: list[dict]) -> list[str]:
    """Insert a reflection row and pending proposals directly (the reflect tests cover parsing)."""
    ws.db["reflections"].insert({"id": "ref_test", "kind": "reflect", "endpoint": "x", "prompt_name": "reflect.md",
                                 "prompt_hash": "h", "request_json": "{}", "status": "ok", "created_at": "t"})
    ids = []
    for i, op in enumerate(ops):
        pid = f"prop_{i:08d}"
        ws.db["proposals"].insert({"id": pid, "reflection_id": "ref_test", "op": op["op"], "status": "pending",
                                   "text": op.get("text"), "rationale": "because",
                                   "lesson_ids_json": json.dumps(op.get("lessons", [])),
                                   "evidence_json": json.dumps(op.get("evidence", [])), "created_at": f"t{i}"})
        ids.append(pid)
    return ids


def test_accepting_each_operation(workspace):
    a = L.add_lesson(workspace, "Lesson A.").lesson_ids[0]
    b = L.add_lesson(workspace, "Lesson B.").lesson_ids[0]
    c = L.add_lesson(workspace, "Lesson C.").lesson_ids[0]
    add, edit, merge, retire = _reflection_with(workspace, [
        {"op": "add", "text": "New lesson.", "evidence": ["ro_1"]},
        {"op": "edit", "lessons": [a], "text": "Lesson A, better."},
        {"op": "merge", "lessons": [b, c], "text": "Lessons B and C."},
        {"op": "retire", "lessons": [a]},
    ])
    change = L.accept_proposal(workspace, add, text="New lesson, edited by me.")
    new = L.get_lesson(workspace, change.lesson_ids[0])
    assert (new.status, new.origin, new.reflection_id, new.text) == ("active", "reflection", "ref_test",
                                                                      "New lesson, edited by me.")
    hist = L.lesson_history(workspace, new.id)
    assert hist["versions"][0]["author"] == "human"  # the person rewrote it
    assert hist["proposals"][0]["evidence"] == ["ro_1"]
    L.accept_proposal(workspace, edit)
    a_hist = L.lesson_history(workspace, a)
    assert a_hist["versions"][-1]["author"] == "ref_test" and a_hist["versions"][-1]["version"] == 2
    merged = L.accept_proposal(workspace, merge)
    m = L.get_lesson(workspace, merged.lesson_ids[0])
    assert m.text == "Lessons B and C." and L.get_lesson(workspace, b).status == "retired"
    assert set(L.lesson_history(workspace, m.id)["versions"][0]["parents"]) == {
        L.get_lesson(workspace, b).version_id, L.get_lesson(workspace, c).version_id}
    assert [e["kind"] for e in L.lesson_history(workspace, c)["events"]][-1] == "merged"
    L.accept_proposal(workspace, retire)
    assert L.get_lesson(workspace, a).status == "retired"
    assert [p["status"] for p in L.list_proposals(workspace, status=None)] == ["accepted"] * 4
    with pytest.raises(L.LessonError, match="only pending"):
        L.accept_proposal(workspace, add)


def test_accept_fails_cleanly_when_the_lesson_changed_meanwhile(workspace):
    a = L.add_lesson(workspace, "Lesson A.").lesson_ids[0]
    (edit,) = _reflection_with(workspace, [{"op": "edit", "lessons": [a], "text": "Lesson A2."}])
    L.retire_lesson(workspace, a)
    with pytest.raises(L.LessonError, match="retired now"):
        L.accept_proposal(workspace, edit)
    assert L.list_proposals(workspace)[0]["status"] == "pending"  # nothing half-applied
    L.reject_proposal(workspace, edit, reason="stale")
    assert L.list_proposals(workspace, status="rejected")[0]["decision_reason"] == "stale"


def test_budget_reports_over(workspace):
    L.add_lesson(workspace, "x" * 400)
    budget = L.budget_status(workspace, 50)
    assert budget.over and budget.tokens == 100 and "distill" in budget.message()


def invoke(*args):
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_cli_lessons_commands(tmp_path):
    ws = str(tmp_path / "ws.db")
    r = invoke("lessons", "add", "Spell words out before counting letters.", "--scope", "strawberry", "-w", ws,
               "--json")
    assert r.exit_code == 0, r.output
    lid = json.loads(r.stdout)["lesson_ids"][0]
    r = invoke("lessons", "edit", lid, "Spell the word out, one letter per line, before counting.",
               "--reason", "sharper", "-w", ws)
    assert r.exit_code == 0 and "v2" in r.stdout
    r = invoke("lessons", "list", "-w", ws, "--json")
    data = json.loads(r.stdout)
    assert data["lessons"][0]["version"] == 2 and data["budget"]["over"] is False
    r = invoke("lessons", "history", lid, "-w", ws)
    assert "written by hand" in r.stdout and "+Spell the word out" in r.stdout and "sharper" in r.stdout
    r = invoke("export", "prompt", "--suite", "strawberry", "-w", ws)
    assert r.stdout.strip().endswith("- Spell the word out, one letter per line, before counting.")
    r = invoke("export", "prompt", "-w", ws)
    assert "Spell" not in r.stdout  # scoped to strawberry only
    r = invoke("lessons", "retire", lid, "-w", ws)
    assert r.exit_code == 0
    r = invoke("lessons", "retire", lid, "-w", ws)
    assert r.exit_code == 2 and "only active lessons" in r.output
    r = invoke("lessons", "show", "les_nope", "-w", ws)
    assert r.exit_code == 2 and "no lesson" in r.output
    for letter in "xyz":  # one lesson is at most MAX_LESSON_CHARS; three long ones exceed the budget
        assert invoke("lessons", "add", letter * 1900, "-w", ws).exit_code == 0
    r = invoke("lessons", "-w", ws)
    assert "OVER BUDGET" in r.output and "distill" in r.output
