"""The Lessons page: a lesson written by hand, history diffs, the budget bar, filters, ablation, distill, export."""
from __future__ import annotations

import json

from PySide6.QtWidgets import QApplication

from lessonlab.core import lessons as L
from lessonlab.core.settings import load_settings, save_settings
from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui import lessons_model
from lessonlab.gui.lessons_model import LessonsModel
from lessonlab.gui.lessons_page import LessonsPage
from lessonlab.gui.operations import AblationRequest
from lessonlab.gui.pages import PageContext
from tests.helpers.review import ReviewServer, make_review_workspace
from tests.helpers.tasks import numeric_tasks, seed_run


class _Closer:
    """Closes the page before its workspace (a shown table reads rows while it paints)."""

    def __init__(self, page, ws):
        self.page, self.ws = page, ws

    def close(self):
        self.page.hide()
        self.ws.close()


def lessons_page(qtbot, path) -> tuple[LessonsPage, object]:
    ws = open_workspace(path)
    page = LessonsPage(PageContext(ws))
    qtbot.addWidget(page)
    page.resize(1200, 800)
    page.show()
    page.page_shown()
    qtbot.waitUntil(lambda: not page.is_loading(), timeout=5000)
    return page, _Closer(page, ws)


def test_write_a_lesson_by_hand(tmp_path, qtbot):
    page, closer = lessons_page(qtbot, tmp_path / "ws.db")
    ws = closer.ws
    try:
        assert page.model.total() == 0 and page.detail.header.text() == "Select a lesson"
        dialog = page.new_lesson()
        dialog.text.setPlainText("  Spell the word letter by letter before counting.  ")
        dialog.scope.setText("strawberry, arithmetic")
        dialog.reason.setText("counting errors")
        dialog.accept()
        lesson = L.list_lessons(ws)[0]
        assert (lesson.text, lesson.status, lesson.scope, lesson.origin) == (
            "Spell the word letter by letter before counting.", "active", ["arithmetic", "strawberry"], "human")
        assert ws.one("SELECT reason FROM lesson_versions WHERE id = ?", (lesson.version_id,))["reason"] == "counting errors"
        assert page.model.total() == 1 and page.detail.lesson_id == lesson.id
        qtbot.waitUntil(lambda: page.detail.history is not None, timeout=5000)
        assert "written by hand" in page.detail.header.text() and "suites arithmetic, strawberry" in page.detail.header.text()
        # a second one stored as proposed waits for review
        dialog = page.new_lesson()
        dialog.text.setPlainText("Read the question twice.")
        dialog.status.setCurrentIndex(1)
        dialog.accept()
        assert [x.status for x in L.list_lessons(ws)] == ["active", "proposed"]
        # an empty lesson is refused with the reason, nothing stored
        from lessonlab.gui import errors
        before = len(errors.shown_errors)
        assert page.add_lesson("   ") is None
        assert errors.shown_errors[before:] and "needs some text" in errors.shown_errors[-1][1]
        assert len(L.list_lessons(ws)) == 2
    finally:
        closer.close()


def test_history_shows_a_diff_after_an_edit(tmp_path, qtbot):
    path = tmp_path / "ws.db"
    with open_workspace(path) as ws:
        lesson_id = L.add_lesson(ws, "Check the sum.").lesson_ids[0]
    page, closer = lessons_page(qtbot, path)
    ws = closer.ws
    try:
        qtbot.waitUntil(lambda: page.detail.history is not None, timeout=5000)
        assert page.detail.versions.count() == 1
        dialog = page.detail.edit()
        assert dialog.text.toPlainText() == "Check the sum."
        dialog.text.setPlainText("Check the sum twice before answering.")
        dialog.reason.setText("be explicit")
        dialog.accept()
        qtbot.waitUntil(lambda: page.detail.versions.count() == 2, timeout=5000)
        qtbot.waitUntil(lambda: page.detail.diff.ops is not None, timeout=5000)
        assert page.detail.diff.ops == [("equal", "Check the sum"), ("insert", " twice before answering"), ("equal", ".")]
        assert (page.detail.from_version.currentText(), page.detail.to_version.currentText()) == ("v1", "v2")
        assert "be explicit" in page.detail.versions.item(1).text()
        assert [page.detail.events.item(i).text().split()[2] for i in range(page.detail.events.count())] == \
            ["created", "edited"]
        # any two versions: nothing → v2
        page.detail.from_version.setCurrentIndex(0)
        qtbot.waitUntil(lambda: page.detail.diff.ops == [("insert", "Check the sum twice before answering.")],
                        timeout=5000)
        assert L.get_lesson(ws, lesson_id).version == 2
    finally:
        closer.close()


def test_budget_bar_turns_red_over_budget(tmp_path, qtbot):
    settings = load_settings()
    settings.lesson_token_budget = 20
    save_settings(settings)
    page, closer = lessons_page(qtbot, tmp_path / "ws.db")
    try:
        page.add_lesson("Short lesson.")                       # ~4 tokens
        assert not page.budget_over and "#e53935" not in page.budget_bar.styleSheet()
        assert page.budget_bar.maximum() == 20 and page.budget_bar.value() == 4
        long_id = page.add_lesson("A much longer lesson that says a great deal about how to count letters in words.")
        assert page.budget_over and "#e53935" in page.budget_bar.styleSheet()
        assert page.budget_label.text().startswith("OVER BUDGET by")
        qtbot.waitUntil(lambda: bool(page.detail.history) and page.detail.history["lesson"]["id"] == long_id,
                        timeout=5000)
        assert page.detail.retire()                            # the long one is selected: retire it
        assert not page.budget_over
    finally:
        closer.close()


def test_lessons_model_is_lazy_filters_and_passes_qtmodeltester(tmp_path, qtmodeltester):
    ws = open_workspace(tmp_path / "ws.db")
    old = lessons_model.PAGE
    lessons_model.PAGE = 2
    try:
        ids = [L.add_lesson(ws, f"Lesson number {i}.", scope=["arithmetic"] if i % 2 else None).lesson_ids[0]
               for i in range(5)]
        L.retire_lesson(ws, ids[0])
        model = LessonsModel(ws)
        assert model.rowCount() == 2 and model.canFetchMore() and model.total() == 4   # active + proposed
        qtmodeltester.check(model)
        while model.canFetchMore():
            model.fetchMore()
        assert [model.lesson_id(r) for r in range(model.rowCount())] == ids[1:]
        assert model.data(model.index(0, 5)) == lessons_model.PENDING      # impact not loaded yet
        model.set_filter(None, unscoped_only=True)
        assert model.rowCount() == 2 and model.total() == 3
        model.fetchMore()
        assert [model.lesson_id(r) for r in range(model.rowCount())] == [ids[0], ids[2], ids[4]]
        model.set_filter(("retired",))
        assert model.total() == 1 and model.data(model.index(0, 1)) == "retired"
        model.set_filter(("active",), suite="game24")
        assert model.total() == 2
        qtmodeltester.check(model)
        model.set_impacts({})
        assert model.data(model.index(0, 5)) == 0 and model.data(model.index(0, 6)) == "—"
        assert model.row_of(ids[3]) == -1 and model.row_of(ids[4]) == 1
    finally:
        lessons_model.PAGE = old
        ws.close()


def test_impact_columns_fill_in_from_the_background(tmp_path, make_suite, qtbot):
    path = tmp_path / "ws.db"
    suite = make_suite(numeric_tasks(4))
    with ReviewServer() as server:
        seed_run(path, suite, server)
        with open_workspace(path) as ws:
            lesson_id = L.add_lesson(ws, "Add one.").lesson_ids[0]
        seed_run(path, suite, server)
    page, closer = lessons_page(qtbot, path)
    ws = closer.ws
    try:
        qtbot.waitUntil(lambda: page.model.impacts is not None, timeout=5000)
        row = page.model.row_of(lesson_id)
        assert page.model.data(page.model.index(row, 5)) == 4          # used in the second run's 4 rollouts
        assert page.model.data(page.model.index(row, 6)) == "+0.00 [+0.00,+0.00]"
    finally:
        closer.close()


def test_retire_restore_copy_prompt_and_export(tmp_path, qtbot):
    path = tmp_path / "ws.db"
    with open_workspace(path) as ws:
        lesson_id = L.add_lesson(ws, "Always show the final answer on its own line.").lesson_ids[0]
    page, closer = lessons_page(qtbot, path)
    ws = closer.ws
    try:
        qtbot.waitUntil(lambda: page.detail.history is not None, timeout=5000)
        prompt = page.copy_system_prompt()
        assert "- Always show the final answer on its own line." in prompt
        assert QApplication.clipboard().text() == prompt
        assert page.detail.retire()
        assert L.get_lesson(ws, lesson_id).status == "retired" and page.model.total() == 0   # filter: active + proposed
        assert "Always show" not in page.copy_system_prompt()
        assert page.select_lesson(lesson_id)                  # widens the filter to show it
        qtbot.waitUntil(lambda: page.detail.buttons["restore"].isEnabled(), timeout=5000)
        assert page.detail.restore() and L.get_lesson(ws, lesson_id).status == "active"
        page.status_filter.setCurrentIndex(0)
        assert page.export_to(tmp_path / "lessons.json", "json")
        data = json.loads((tmp_path / "lessons.json").read_text())
        assert [row["id"] for row in data["lessons"]] == [lesson_id]
        assert page.export_to(tmp_path / "lessons.md", "markdown")
        assert "Always show the final answer on its own line." in (tmp_path / "lessons.md").read_text()
    finally:
        closer.close()


def test_ablate_in_the_background_with_progress(tmp_path, make_suite, qtbot):
    path = tmp_path / "ws.db"
    suite = make_suite(numeric_tasks(4))
    with open_workspace(path) as ws:
        lesson_id = L.add_lesson(ws, "Add one to the number.").lesson_ids[0]
    page, closer = lessons_page(qtbot, path)
    ws = closer.ws
    try:
        progress = []
        with ReviewServer() as server:
            job = page.detail.start_ablation(AblationRequest(lesson_id=lesson_id, suite=str(suite),
                                                             endpoint=server.endpoint(), split="train", samples=1))
            job.signals.progress.connect(progress.append)
            assert not page.detail.ablation_bar.isHidden() and not page.detail.buttons["ablate"].isEnabled()
            qtbot.waitUntil(lambda: page.detail.ablation_job is None, timeout=20000)
        assert "completed" in page.detail.ablation_label.text() and "lift" in page.detail.ablation_label.text()
        assert progress and {"with", "without"} <= set(progress[-1])
        row = ws.one("SELECT * FROM ablations WHERE lesson_id = ?", (lesson_id,))
        assert row["status"] == "completed" and row["n_with"] == 4 and row["n_without"] == 4
        qtbot.waitUntil(lambda: page.model.impacts is not None and bool(page.model.impacts[lesson_id].latest_ablation),
                        timeout=5000)
        assert page.model.data(page.model.index(page.model.row_of(lesson_id), 7)) == "+0.00 [+0.00,+0.00]"
    finally:
        closer.close()


def test_distill_sends_its_proposals_to_review(tmp_path, make_suite, window_factory, qtbot):
    path = tmp_path / "ws.db"
    ids = make_review_workspace(path, make_suite)
    with ReviewServer() as server:
        settings = load_settings()
        settings.add_endpoint(server.endpoint())
        save_settings(settings)
        server.reflection_reply = {"analysis": "Two lessons say the same.", "operations": [
            {"op": "merge", "lessons": ids["lessons"][:2], "text": "Show your working and answer with digits only.",
             "rationale": "shorter"}]}
        window = window_factory(path)
        window.go_to("Lessons")
        page = window.page("lessons")
        before = len(window.page("review").pending_ids())
        assert page.start_distill("reviewer", 10) is not None
        qtbot.waitUntil(lambda: page.distill_job is None, timeout=15000)
    assert "1 proposal(s) wait in Review" in page.distill_label.text(), page.distill_label.text()
    assert len(window.page("review").pending_ids()) == before + 1
    page.review_button.click()
    assert window.current_page_name() == "Review"
    group = window.page("review").queue.topLevelItem(0).text(0)
    assert "distill" in group
