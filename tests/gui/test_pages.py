"""Every page builds from a temporary workspace; the item models pass qtmodeltester."""
from __future__ import annotations

from PySide6.QtCore import Qt

from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui.compare_page import ComparePage
from lessonlab.gui.endpoints_dialog import EndpointsDialog
from lessonlab.gui.page_registry import PAGES
from lessonlab.gui.pages import PageContext
from lessonlab.gui.table_models import RolloutsModel, RunsModel
from lessonlab.gui.runs_page import NewRunDialog, RunsPage


def test_every_page_builds_on_an_empty_workspace(tmp_path, window_factory, qtbot):
    window = window_factory(tmp_path / "empty.db")
    for entry in PAGES:
        window.go_to(entry.name)
        assert window.current_page_name() == entry.title
        assert window.stack.currentWidget() is window.pages[entry.name]
    # keyboard shortcuts for every page
    by_key = {a.shortcut().toString(): a for a in window.actions()}
    for i, entry in enumerate(PAGES):
        by_key[f"Ctrl+{i + 1}"].trigger()
        assert window.current_page_name() == entry.title
    window.go_to("Runs")
    # the first screen of a new user leads somewhere
    assert not window.page("runs").welcome.isHidden()
    assert "embedded model" in window.page("runs").welcome_button.text()
    assert str(tmp_path / "empty.db") in window.workspace_label.text()
    assert window.local_label.text() == "embedded model: off"


def test_welcome_hides_once_there_are_runs(seeded, window_factory):
    path, run_id = seeded
    window = window_factory(path)
    assert window.page("runs").welcome.isHidden()
    assert window.page("runs").runs_model.total() == 1


def test_widgets_build_alone(seeded, qtbot):
    path, _ = seeded
    ws = open_workspace(path)
    try:
        for widget in (RunsPage(PageContext(ws)), ComparePage(PageContext(ws)), NewRunDialog(), EndpointsDialog()):
            qtbot.addWidget(widget)
    finally:
        ws.close()


def test_runs_model_passes_qtmodeltester(seeded, qtmodeltester, tmp_path, make_suite, scripted):
    from tests.helpers.tasks import seed_run

    path, _ = seeded
    for _ in range(3):
        seed_run(path, make_suite([{"id": "x", "prompt": "What is 4 + 1?", "verifier": {"kind": "numeric", "answer": 5}}],
                                  name="other"), scripted)
    ws = open_workspace(path)
    try:
        model = RunsModel(ws)
        qtmodeltester.check(model)
        assert model.rowCount() == 4
        model.set_filter("other")
        assert model.rowCount() == 3
        qtmodeltester.check(model)
        model.set_filter("")
        model.sort(0, Qt.SortOrder.AscendingOrder)
        assert model.data(model.index(0, 0)).startswith("mini")
        qtmodeltester.check(model)
    finally:
        ws.close()


def test_rollouts_model_passes_qtmodeltester(seeded, qtmodeltester):
    path, run_id = seeded
    ws = open_workspace(path)
    try:
        model = RolloutsModel(ws)
        model.set_run(run_id)
        qtmodeltester.check(model)
        assert model.rowCount() == 6
        assert model.data(model.index(0, 2)) == "1.000"
    finally:
        ws.close()


def test_runs_model_is_lazy(tmp_path, qtmodeltester, make_suite, scripted):
    """With more runs than a page, rows arrive through fetchMore."""
    from lessonlab.gui import table_models as models

    from tests.helpers.tasks import seed_run

    path = tmp_path / "many.db"
    suite = make_suite([{"id": "x", "prompt": "What is 1 + 1?", "verifier": {"kind": "numeric", "answer": 2}}])
    old = models.PAGE
    models.PAGE = 2
    try:
        for _ in range(5):
            seed_run(path, suite, scripted)
        ws = open_workspace(path)
        model = RunsModel(ws)
        assert model.rowCount() == 2 and model.canFetchMore()
        model.fetchMore()
        assert model.rowCount() == 4
        qtmodeltester.check(model)
        while model.canFetchMore():
            model.fetchMore()
        assert model.rowCount() == 5
        ws.close()
    finally:
        models.PAGE = old


def test_the_page_registry_is_read_without_qt_and_names_page_classes():
    import subprocess
    import sys

    from lessonlab.cli.app import gui_cmd
    from lessonlab.gui.pages import Page

    code = ("import sys, lessonlab.gui.page_registry as r; print(','.join(r.page_names())); "
            "print(any(m.startswith('PySide6') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == [",".join(entry.name for entry in PAGES), "False"]
    assert {"runs", "compare", "review", "lessons", "impact"} <= set(out[0].split(","))
    assert all(issubclass(entry.load(), Page) for entry in PAGES)
    page_option = next(p for p in gui_cmd.params if p.name == "page")
    assert list(page_option.type.choices) == [entry.name for entry in PAGES]  # one list, read by both


def test_every_registered_page_builds_from_a_context_alone(seeded, page_context, qtbot):
    for entry in PAGES:
        page = entry.load()(page_context(seeded[0]))
        qtbot.addWidget(page)
        assert not page.busy_reason()
