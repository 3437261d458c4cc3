"""The one "changed" notification reaches the pages, and each page refreshes what it shows."""
from __future__ import annotations

import pytest
from tests.helpers.tasks import numeric_tasks, scripted_endpoint, seed_run

from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui import changes as changed
from lessonlab.gui.changes import Changes
from lessonlab.gui.compare_page import ComparePage
from lessonlab.gui.operations import RunRequest
from lessonlab.gui.pages import PageContext
from lessonlab.gui.runs_page import RunsPage


def task_names(page: ComparePage) -> list[str]:
    return [page.task_list.item(i).text() for i in range(page.task_list.count())]


def test_a_finished_run_refreshes_the_runs_list_and_the_compare_picker(tmp_path, make_suite, scripted,
                                                                       window_factory, qtbot):
    endpoint = scripted_endpoint(scripted)
    window = window_factory(tmp_path / "ws.db")
    window.go_to("Compare")  # the picker is filled (empty) once the page has been shown
    qtbot.waitUntil(lambda: not window.page("compare").is_loading(), timeout=5000)
    assert task_names(window.page("compare")) == []
    window.go_to("Runs")
    seen = []
    window.changes.changed.connect(seen.append)
    window.page("runs").start_run(RunRequest(suite=str(make_suite(numeric_tasks(3))), endpoint=endpoint, samples=2))
    qtbot.waitUntil(lambda: window.page("runs").job is None, timeout=15000)
    run_id = window.page("runs").active_run_id
    # one change when the run row appears, one when it finishes (with its rollouts)
    assert [c.kinds for c in seen] == [frozenset({"runs"}), frozenset({"runs", "rollouts"})]
    assert all(c.run_id == run_id for c in seen)
    assert window.page("runs").runs_model.total() == 1
    assert window.page("runs").runs_model.data(window.page("runs").runs_model.index(0, 4)) == "6/6"
    # the picker now lists the run's tasks with their rollout counts
    qtbot.waitUntil(lambda: task_names(window.page("compare")) == ["t0  (2)", "t1  (2)", "t2  (2)"], timeout=5000)


def test_pages_refresh_from_a_change_made_elsewhere(tmp_path, make_suite, scripted, qtbot):
    """A run stored by someone else (the CLI, a loop): one notification and both pages follow."""
    path = tmp_path / "ws.db"
    ws = open_workspace(path)
    changes = Changes()
    try:
        runs_page = RunsPage(PageContext(ws, changes=changes))
        compare_page = ComparePage(PageContext(ws, changes=changes))
        for page in (runs_page, compare_page):
            qtbot.addWidget(page)
        compare_page.page_shown()
        qtbot.waitUntil(lambda: not compare_page.is_loading(), timeout=5000)
        run_id = seed_run(path, make_suite(numeric_tasks(2)), scripted, samples=1)
        assert runs_page.runs_model.total() == 0  # nothing refreshes by itself
        changes.notify(changed.RUNS, changed.ROLLOUTS, run_id=run_id)
        assert runs_page.runs_model.total() == 1
        qtbot.waitUntil(lambda: len(task_names(compare_page)) == 2, timeout=5000)
        # the selected run stays selected when the list is re-read
        runs_page.select_run(run_id)
        seed_run(path, make_suite(numeric_tasks(1), name="other"), scripted)
        changes.notify(changed.RUNS)
        assert runs_page.runs_model.total() == 2 and runs_page.selected_run_id() == run_id
    finally:
        ws.close()


def test_saving_an_endpoint_refreshes_the_compare_endpoint_chooser(tmp_path, window_factory, qtbot):
    window = window_factory(tmp_path / "ws.db")
    combo = window.page("compare").reflect_endpoint
    names = lambda: [combo.itemData(i) for i in range(combo.count())]  # noqa: E731
    assert "judge" not in names()
    dialog = window.open_endpoints_dialog()
    qtbot.addWidget(dialog)
    dialog._new()
    dialog.name.setText("judge")
    dialog.base_url.setText("http://127.0.0.1:9/v1")
    dialog.model.setText("judge-model")
    assert dialog.save_current()
    assert "judge" in names()
    combo.setCurrentIndex(combo.findData("judge"))
    dialog.list.setCurrentRow([dialog.list.item(i).text() for i in range(dialog.list.count())].index("judge"))
    dialog.remove_current()
    assert "judge" not in names()
    assert combo.currentData() is not None  # the chooser falls back to what remains


def test_an_unknown_kind_of_change_is_refused():
    with pytest.raises(ValueError, match="unknown"):
        Changes().notify("everything")
