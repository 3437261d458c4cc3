"""The review queue, the shared accept/reject, retrying a failed reflection, lesson queries and the lessons export."""
from __future__ import annotations


import pytest

from lessonlab.core import lessons as L
from lessonlab.core.lessons import review
from lessonlab.core.storage.workspace import open_workspace
from tests.helpers.review import ReviewServer, reflect_with, seed_review
from tests.helpers.tasks import numeric_tasks


@pytest.fixture
def server():
    with ReviewServer() as srv:
        yield srv


@pytest.fixture
def seeded_review(tmp_path, make_suite, server):
    path = tmp_path / "review.db"
    ids = seed_review(path, make_suite(numeric_tasks(4)), server)
    ws = open_workspace(path)
    yield ws, ids
    ws.close()


def test_queue_groups_pending_proposals_newest_reflection_first(seeded_review):
    ws, ids = seeded_review
    queue = review.review_queue(ws)
    assert [g["reflection"]["id"] for g in queue] == [ids["newer"], ids["older"]]
    newer, older = queue
    assert [i["op"] for i in newer["items"]] == ["add", "edit", "merge", "add"]
    assert [i["op"] for i in older["items"]] == ["add", "retire"]
    leak, edit, merge, add = newer["items"]
    assert leak["leakage"] and leak["leakage"][0]["kind"] == "answer"
    assert (edit["old_text"], edit["new_text"]) == ("Show your working.", "Show your working step by step, then check it.")
    assert merge["old_text"] == "Answer with digits only.\nDouble-check the sum."
    assert older["items"][1]["new_text"] == "" and older["items"][1]["old_text"] == "Double-check the sum."
    assert [e["id"] for e in add["evidence"]] and all(e["task"].startswith("t") for e in add["evidence"])
    assert newer["reflection"]["analysis"].startswith("The model adds one")


def test_hand_written_proposed_lessons_are_in_the_queue(seeded_review):
    ws, _ = seeded_review
    lesson_id = L.add_lesson(ws, "Read the question twice.", status="proposed").lesson_ids[0]
    queue = review.review_queue(ws)
    assert queue[0]["reflection"] is None and queue[0]["items"][0]["id"] == lesson_id
    change = review.accept(ws, lesson_id, text="Read the question twice, slowly.")
    assert change.statuses == {lesson_id: "active"}
    assert L.get_lesson(ws, lesson_id).text == "Read the question twice, slowly."
    other = L.add_lesson(ws, "Guess.", status="proposed").lesson_ids[0]
    review.reject(ws, other, reason="no")
    assert L.get_lesson(ws, other).status == "rejected"
    assert all(g["reflection"] is not None for g in review.review_queue(ws))


def test_accept_and_reject_proposals_through_the_shared_functions(seeded_review):
    ws, ids = seeded_review
    newer = review.review_queue(ws)[0]["items"]
    change = review.accept(ws, newer[1]["id"])
    assert change.lesson_ids == [ids["lessons"][0]]
    review.reject(ws, newer[0]["id"], reason="leaks an answer")
    assert L.get_proposal(ws, newer[0]["id"])["decision_reason"] == "leaks an answer"
    with pytest.raises(L.LessonError, match="only pending"):
        review.accept(ws, newer[0]["id"])
    assert [i["op"] for i in review.review_queue(ws)[0]["items"]] == ["merge", "add"]


def test_failed_reflection_is_listed_and_retried_over_the_same_rollouts(seeded_review, server):
    ws, ids = seeded_review
    failed = reflect_with(ws, server, "I think the model should try harder.", rollout_ids=ids["rollouts"][:3])
    assert failed.status == "failed"
    listed = review.failed_reflections(ws)
    assert listed[0]["id"] == failed.reflection_id and "could not parse" in listed[0]["error"]
    assert listed[0]["rollouts"] == 3
    target = review.retry_target(ws, failed.reflection_id)
    assert target["endpoint"] == "reviewer" and sorted(target["rollout_ids"]) == sorted(ids["rollouts"][:3])
    server.reflection_reply = {"analysis": "ok", "operations": [{"op": "add", "text": "Count carefully."}]}
    again = review.retry_reflection(ws, failed.reflection_id, server.endpoint())
    assert again.status == "ok" and again.n_pending == 1 and again.reflection_id != failed.reflection_id
    covered = [r[0] for r in ws.conn.execute(
        "SELECT rollout_id FROM reflection_rollouts WHERE reflection_id = ? ORDER BY rowid", (again.reflection_id,))]
    assert sorted(covered) == sorted(ids["rollouts"][:3])
    reply = review.reflection_reply(ws, failed.reflection_id)
    assert reply["raw_reply"] == "I think the model should try harder." and reply["status"] == "failed"


def test_lesson_ids_filter_by_status_and_scope(workspace):
    everywhere = L.add_lesson(workspace, "General.").lesson_ids[0]
    scoped = L.add_lesson(workspace, "Only arithmetic.", scope=["arithmetic"]).lesson_ids[0]
    retired = L.add_lesson(workspace, "Old.").lesson_ids[0]
    L.retire_lesson(workspace, retired)
    assert L.lesson_ids(workspace) == [everywhere, scoped, retired]
    assert L.lesson_ids(workspace, statuses=("active",)) == [everywhere, scoped]
    assert L.lesson_ids(workspace, suite="arithmetic") == [everywhere, scoped, retired]
    assert L.lesson_ids(workspace, suite="game24") == [everywhere, retired]
    assert L.lesson_ids(workspace, unscoped_only=True) == [everywhere, retired]
    assert set(L.lessons_by_ids(workspace, [scoped, retired])) == {scoped, retired}
    assert "arithmetic" in L.scope_names(workspace)


def test_a_proposals_note_and_the_reflections_mode_reach_the_queue(seeded_review):
    ws, ids = seeded_review
    first = review.review_queue(ws)[0]["items"][0]
    L.note_proposal(ws, first["id"], "dropped evidence ids not in the context: ro_nothere")
    group = review.review_queue(ws)[0]
    assert group["items"][0]["note"] == "dropped evidence ids not in the context: ro_nothere"
    mode = group["reflection"]["response_mode"]
    assert mode and group["title"].endswith(mode)
