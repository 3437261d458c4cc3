"""The Review page, keyboard first: the decisions change the workspace exactly as `lessonlab accept/reject` do."""
from __future__ import annotations

import json
import sqlite3

from click.testing import CliRunner
from PySide6.QtCore import Qt

from lessonlab.cli.root import cli
from lessonlab.core.settings import load_settings, save_settings
from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui import errors
from tests.helpers.review import ReviewServer, make_review_workspace, reflect_with
from tests.helpers.tasks import numeric_tasks, seed_run


def copy_workspace(src, dst) -> None:
    """A byte-for-byte twin (same proposal and lesson ids) through SQLite's backup API."""
    source, target = sqlite3.connect(src), sqlite3.connect(dst)
    source.backup(target)
    source.close()
    target.close()


def curation_state(path) -> dict:
    """Lessons, versions, events and proposals without times; generated ids replaced by their order of creation."""
    ws = open_workspace(path)
    try:
        lessons = ws.query("SELECT * FROM lessons ORDER BY rowid")
        rank = {row["id"]: f"lesson#{i}" for i, row in enumerate(lessons)}
        versions = ws.query("SELECT * FROM lesson_versions ORDER BY rowid")
        vrank = {v["id"]: f"{rank[v['lesson_id']]}/v{v['version']}" for v in versions}

        def norm(text):  # reasons name the lessons they created ("merged into les_…")
            for ident, name in rank.items():
                text = text.replace(ident, name) if text else text
            return text

        return {
            "lessons": [(rank[r["id"]], r["status"], r["scope_json"], r["origin"], r["reflection_id"],
                         vrank[r["current_version_id"]]) for r in lessons],
            "versions": [(vrank[v["id"]], v["text"], v["tokens_est"], v["author"], norm(v["reason"]),
                          [vrank[p] for p in json.loads(v["parents_json"] or "[]")]) for v in versions],
            "events": [(rank[e["lesson_id"]], e["kind"], e["from_status"], e["to_status"],
                        vrank.get(e["version_id"]), e["author"], norm(e["reason"]))
                       for e in ws.query("SELECT * FROM lesson_events ORDER BY rowid")],
            "proposals": [(p["id"], p["status"], p["decided_by"], norm(p["decision_reason"]), rank.get(p["result_lesson_id"]))
                          for p in ws.query("SELECT * FROM proposals ORDER BY rowid")],
        }
    finally:
        ws.close()


def open_review(window_factory, qtbot, path):
    window = window_factory(path)
    window.show()
    qtbot.waitUntil(lambda: (window.activateWindow() or True) and window.isActiveWindow(), timeout=3000)
    window.go_to("Review")
    page = window.page("review")
    assert page.queue.hasFocus()
    return window, page


def test_keyboard_review_changes_the_workspace_exactly_as_the_cli(tmp_path, make_suite, window_factory, qtbot,
                                                                 monkeypatch):
    path, twin = tmp_path / "gui.db", tmp_path / "cli.db"
    make_review_workspace(path, make_suite)
    copy_workspace(path, twin)
    shown = []
    monkeypatch.setattr(errors, "show_error", lambda *a, **k: shown.append(a))
    window, page = open_review(window_factory, qtbot, path)
    queue = page.pending_ids()
    assert len(queue) == 6
    # the newest reflection first; its first proposal is selected at once
    leak, edit, merge, evidence, older_add, retire = queue
    assert page.current_item()["id"] == leak and not page.leak.isHidden()
    done: list[list[str]] = []

    # R, a reason, Enter: rejected; the next proposal takes its place
    qtbot.keyClick(page.queue, Qt.Key.Key_R)
    assert page.reason.hasFocus()
    qtbot.keyClicks(page.reason, "leaks an answer")
    qtbot.keyClick(page.reason, Qt.Key.Key_Return)
    done.append(["reject", leak, "--reason", "leaks an answer"])
    assert page.current_item()["id"] == edit and leak not in page.pending_ids()

    # J and K move through the queue
    qtbot.keyClick(page.queue, Qt.Key.Key_J)
    assert page.current_item()["id"] == merge
    qtbot.keyClick(page.queue, Qt.Key.Key_K)
    assert page.current_item()["id"] == edit

    # E, rewrite, Ctrl+Enter: accepted with the new text
    qtbot.keyClick(page.queue, Qt.Key.Key_E)
    assert page.editor.hasFocus() and page.editor.toPlainText() == "Show your working step by step, then check it."
    page.editor.selectAll()
    qtbot.keyClicks(page.editor, "Show your working, then check every step.")
    qtbot.keyClick(page.editor, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)
    done.append(["accept", edit, "--text", "Show your working, then check every step."])
    assert page.current_item()["id"] == merge

    # A accepts as proposed (a merge here)
    qtbot.keyClick(page.queue, Qt.Key.Key_A)
    done.append(["accept", merge])
    assert page.current_item()["id"] == evidence
    qtbot.keyClick(page.queue, Qt.Key.Key_J)
    assert page.current_item()["id"] == older_add
    qtbot.keyClick(page.queue, Qt.Key.Key_A)
    done.append(["accept", older_add])
    # the retirement targets a lesson the merge retired: it cannot apply, and nothing changes
    assert page.current_item()["id"] == retire
    qtbot.keyClick(page.queue, Qt.Key.Key_A)
    assert shown and shown[-1][1] == f"Cannot accept {retire}" and "is retired now" in shown[-1][2]
    done.append(["accept", retire])  # the CLI refuses it in the same words
    assert page.current_item()["id"] == retire
    # R then Enter: rejected without a reason
    qtbot.keyClick(page.queue, Qt.Key.Key_R)
    qtbot.keyClick(page.reason, Qt.Key.Key_Return)
    done.append(["reject", retire])
    assert page.pending_ids() == [evidence]
    assert page.current_item()["id"] == evidence
    assert "left to review" in page.status.text()

    runner = CliRunner()
    for args in done:
        result = runner.invoke(cli, [*args, "--workspace", str(twin)])
        if args == ["accept", retire]:
            assert result.exit_code == 2 and "is retired now" in result.output
        else:
            assert result.exit_code == 0, result.output
    assert curation_state(path) == curation_state(twin)


def test_buttons_do_what_the_keys_do(tmp_path, make_suite, window_factory, qtbot):
    path = tmp_path / "ws.db"
    make_review_workspace(path, make_suite)
    window, page = open_review(window_factory, qtbot, path)
    first = page.current_item()["id"]
    page.buttons["next"].click()
    assert page.current_item()["id"] != first
    page.buttons["previous"].click()
    assert page.current_item()["id"] == first
    page.buttons["accept"].click()
    assert first not in page.pending_ids()
    assert window.page("lessons").model.total() == 4  # the accepted add is a new active lesson, listed there too


def test_space_opens_the_evidence_side_by_side_in_compare(tmp_path, make_suite, window_factory, qtbot):
    path = tmp_path / "ws.db"
    make_review_workspace(path, make_suite)
    window, page = open_review(window_factory, qtbot, path)
    while not page.current_item()["evidence"]:
        qtbot.keyClick(page.queue, Qt.Key.Key_J)
    wanted = [ev["id"] for ev in page.current_item()["evidence"]]
    assert page.evidence.count() == len(wanted) == 2
    qtbot.keyClick(page.queue, Qt.Key.Key_Space)
    assert window.current_page_name() == "Compare"
    compare = window.page("compare")
    qtbot.waitUntil(lambda: len(compare.columns) == 2, timeout=5000)
    assert [c.rollout["id"] for c in compare.columns] == wanted
    assert "2 rollouts of 2 tasks" in compare.title.text() and "2 chosen rollouts" in compare.scope_label.text()


def test_old_and_new_text_as_a_word_diff_and_the_raw_reply(tmp_path, make_suite, window_factory, qtbot):
    path = tmp_path / "ws.db"
    ids = make_review_workspace(path, make_suite)
    window, page = open_review(window_factory, qtbot, path)
    qtbot.keyClick(page.queue, Qt.Key.Key_J)
    assert page.current_item()["op"] == "edit"
    qtbot.waitUntil(lambda: page.diff.ops is not None, timeout=5000)
    assert page.diff.ops == [("equal", "Show your working"), ("insert", " step by step, then check it"), ("equal", ".")]
    assert "#c8e6c9" in page.diff.toHtml() and "0 words removed, 6 added" in page.diff_caption.text()
    assert page.analysis.toPlainText() == "The model adds one too many on even numbers."
    dialog = page.show_reply()
    assert json.loads(dialog.raw.toPlainText())["analysis"] == "The model adds one too many on even numbers."
    assert ids["newer"] in dialog.windowTitle()
    dialog.close()
    # the target lesson is one click from its history on the Lessons page
    page.targets.linkActivated.emit(f"lesson:{ids['lessons'][0]}")
    assert window.current_page_name() == "Lessons"
    assert window.page("lessons").detail.lesson_id == ids["lessons"][0]


def test_a_failed_reflection_is_listed_and_retried(tmp_path, make_suite, window_factory, qtbot):
    path = tmp_path / "ws.db"
    with ReviewServer() as server:
        run_id = seed_run(path, make_suite(numeric_tasks(3)), server, samples=2)
        settings = load_settings()
        settings.add_endpoint(server.endpoint())
        save_settings(settings)
        ws = open_workspace(path)
        failed = reflect_with(ws, server, "Sorry, I cannot answer in JSON today.", run_id=run_id)
        ws.close()
        assert failed.status == "failed"
        window, page = open_review(window_factory, qtbot, path)
        assert page.pending_ids() == []
        assert page.current_item()["id"] == failed.reflection_id  # nothing pending: the failed one is shown
        assert "could not parse" in page.failed.error.text()
        assert page.failed.reply.toPlainText() == "Sorry, I cannot answer in JSON today."
        server.reflection_reply = {"analysis": "Right every time.", "operations": [
            {"op": "add", "text": "Keep answering with the number only.", "rationale": "it works"}]}
        page.failed.retry_button.click()
        assert page.failed.job is not None
        qtbot.waitUntil(lambda: page.failed.job is None, timeout=15000)
    assert "1 new proposal(s)" in page.status.text(), page.status.text()
    assert "Keep answering" in page.failed.output.toPlainText()  # the new reply streamed in
    assert len(page.pending_ids()) == 1
    ws = open_workspace(path)
    try:
        retried = ws.query("SELECT id, endpoint FROM reflections WHERE status = 'ok'")
        covered = ws.query("SELECT rollout_id FROM reflection_rollouts WHERE reflection_id = ?", (retried[0]["id"],))
    finally:
        ws.close()
    assert retried[0]["endpoint"] == "reviewer" and len(covered) == 6
