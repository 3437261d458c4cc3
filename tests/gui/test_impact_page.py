"""The Impact page draws reward over runs with lesson changes marked and each lesson's lift; clicks lead on."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from tests.helpers.impact_data import thin_and_unsettled
from tests.helpers.lesson_runs import HELPFUL, lesson_aware_server, seed_lesson_history
from tests.helpers.tasks import numeric_tasks, seed_run

from lessonlab.core import lessons
from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui.changes import Changes
from lessonlab.gui.impact_page import ImpactLessonsModel, ImpactPage
from lessonlab.gui.main_window import MainWindow
from lessonlab.gui.pages import PageContext


@pytest.fixture
def history(tmp_path, make_suite):
    """3 tasks × 2 samples: run · +helpful · run · +neutral · run · ablation (2 runs) · −helpful · run."""
    path = tmp_path / "ws.db"
    suite = make_suite(numeric_tasks(3))
    with lesson_aware_server() as server:
        made = seed_lesson_history(path, suite, server)
    return path, made, suite


def open_page(qtbot, path, changes=None) -> ImpactPage:
    ws = open_workspace(path)
    page = ImpactPage(PageContext(ws, changes=changes or Changes()))
    page.destroyed.connect(ws.close)
    qtbot.addWidget(page)
    page.resize(1200, 800)
    page.show()
    with qtbot.waitSignal(page.loaded, timeout=10000):
        page.page_shown()
    return page


def click(qtbot, chart, x: float, y: float) -> None:
    """A left click where the chart draws the view point (x, y)."""
    pos = chart.mapFromScene(chart.scene_pos(x, y))
    qtbot.mouseClick(chart.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def test_the_timeline_draws_each_run_and_marks_where_lessons_changed(history, qtbot):
    path, made, _suite = history
    page = open_page(qtbot, path)
    chart = page.timeline
    assert list(chart.series) == ["scripted-model"]
    x, y = chart.series["scripted-model"].getData()
    assert x.tolist() == [1, 2, 3, 6] and y.tolist() == [0.0, 1.0, 1.0, 0.0]   # the ordinary runs, in time order
    ax, ay = chart.ablation_series.getData()
    # the two ablation arms, apart (created in the same instant, so in either order)
    assert ax.tolist() == [4, 5] and sorted(ay.tolist()) == [0.0, 1.0]
    assert [m.value() for m in chart.markers] == [1.5, 2.5, 5.5]
    assert [[(e["lesson_id"], e["kind"]) for e in m.events] for m in chart.markers] == [
        [(made.helpful, "created")], [(made.neutral, "created")], [(made.helpful, "retired")]]
    # hovering a marker says which lesson changed and how; hovering a point describes the run
    tip = chart.tip_at(chart.scene_pos(5.5, 0.5))
    assert f"− {made.helpful} retired by human: trying without it" in tip
    assert chart.tip_at(chart.scene_pos(1.5, 0.5)).endswith(f"+ {made.helpful} created (active) by human: written by hand")
    run_tip = chart.tip_at(chart.scene_pos(2, 1.0))
    assert made.runs[1] in run_tip and "mean reward 1.000 over 6 rollouts" in run_tip and "1 lessons" in run_tip
    assert chart.tip_at(chart.scene_pos(4.5, 0.5)) == ""
    # and the pointer really gets it: moving onto the marker sets the plot's tooltip
    qtbot.mouseMove(chart.viewport(), chart.mapFromScene(chart.scene_pos(5.5, 0.5)))
    qtbot.waitUntil(lambda: made.helpful in chart.plot_item.getViewBox().toolTip(), timeout=2000)
    assert page.summary.text() == "6 runs · 3 lesson changes between them · 2 lessons"


def test_the_lift_chart_and_table_show_each_lesson_with_its_interval(history, qtbot, qtmodeltester):
    path, made, _suite = history
    page = open_page(qtbot, path)
    chart = page.lift
    assert [row.lesson_id for row in chart.lessons] == [made.helpful, made.neutral]
    bars = chart.bars.opts
    assert np.asarray(bars["width"]).tolist() == [1.0, 0.0]          # observed lift, bar from 0
    assert np.asarray(bars["y"]).tolist() == [-0.15, 0.85]
    assert np.asarray(chart.whiskers.opts["left"]).tolist() == [0.0, 0.0]   # every unit moved alike: [1, 1] and [0, 0]
    ax, ay = chart.ablations.getData()
    assert ax.tolist() == [1.0] and ay.tolist() == [0.2]              # the ablation, drawn below its lesson's bar
    assert chart.plot_item.getAxis("left")._tickLevels[0] == [(0, made.helpful), (1, made.neutral)]
    # the ids and text beside the chart, in the same order
    model = page.lessons_model
    qtmodeltester.check(model)
    rows = [[model.data(model.index(r, c)) for c in range(model.columnCount())] for r in range(model.rowCount())]
    assert rows[0] == [made.helpful, HELPFUL, "+1.00 [+1.00, +1.00]", "+1.00 [+1.00, +1.00]", "retired"]
    assert rows[1][0] == made.neutral and rows[1][3] == "—" and rows[1][4] == "active"
    assert model.data(model.index(0, 1), Qt.ItemDataRole.ToolTipRole) == HELPFUL
    assert made.helpful in chart.tip_at(chart.scene_pos(0.5, 0)) and HELPFUL in chart.tip_at(chart.scene_pos(0.5, 0))


def test_clicking_a_lift_bar_selects_that_lesson(history, qtbot):
    path, made, _suite = history
    page = open_page(qtbot, path)
    assert page.selected_lesson() is None and page.lift.selected_row() is None
    with qtbot.waitSignal(page.lesson_requested, timeout=2000) as asked:
        click(qtbot, page.lift, 0.5, -0.15)            # the middle of the first lesson's bar
    assert asked.args == [made.helpful]
    assert page.selected_lesson() == made.helpful and page.lift.selected_row() == 0
    click(qtbot, page.lift, 0.3, 1.0)                   # the second lesson's row (its lift is 0: no bar to hit)
    assert page.selected_lesson() == made.neutral and page.lift.selected_row() == 1
    page.table.selectRow(0)                             # and the table selection highlights the chart's row
    assert page.lift.selected_row() == 0


def test_in_the_window_a_bar_shows_the_lesson_and_a_point_opens_its_run(history, qtbot):
    path, made, _suite = history
    window = MainWindow(path)
    qtbot.addWidget(window)
    try:
        window.resize(1280, 800)
        window.show()
        page = window.page("impact")
        with qtbot.waitSignal(page.loaded, timeout=10000):
            window.go_to("Impact")
        click(qtbot, page.lift, 0.5, -0.15)
        # The lesson opens on the Lessons page (history, provenance, actions).
        assert window.current_page_name() == "Lessons"
        assert window.page("lessons").detail.lesson_id == made.helpful
        window.go_to("Impact")
        click(qtbot, page.timeline, 3, 1.0)            # the third run's point
        assert window.current_page_name() == "Runs"
        assert window.page("runs").selected_run_id() == made.runs[2]
    finally:
        window.close()   # hides the window, then shuts it down (no repaint over a closed workspace)


def test_the_page_follows_changes_and_filters_by_model(history, qtbot):
    path, made, suite = history
    changes = Changes()
    page = open_page(qtbot, path, changes)
    ws = open_workspace(path)
    lessons.restore_lesson(ws, made.helpful, reason="it helped")
    ws.close()
    with lesson_aware_server() as server:
        seed_run(path, suite, server, samples=2)
    with qtbot.waitSignal(page.loaded, timeout=10000):
        changes.notify("runs", "lessons")
    x, y = page.timeline.series["scripted-model"].getData()
    assert x.tolist() == [1, 2, 3, 6, 7] and y.tolist()[-1] == 1.0
    assert [m.value() for m in page.timeline.markers][-1] == 6.5
    assert page.timeline.markers[-1].events[0]["kind"] == "restored"
    # one model chosen: the same runs (there is one model); an unknown model falls back to all
    assert [page.model.itemText(i) for i in range(page.model.count())] == ["all models", "scripted-model"]
    page.model.setCurrentIndex(1)
    with qtbot.waitSignal(page.loaded, timeout=10000):
        page.reload()
    assert page.model.currentData() == "scripted-model" and len(page.timeline.points) == 7


def test_an_empty_workspace_says_so(tmp_path, qtbot):
    page = open_page(qtbot, tmp_path / "empty.db")
    assert page.summary.text() == "No runs in this workspace yet."
    assert page.timeline.points == [] and page.lessons_model.rowCount() == 0
    assert "No runs yet" in page.timeline.empty_text.textItem.toPlainText()


def test_model_is_a_lessons_table(qtmodeltester):
    qtmodeltester.check(ImpactLessonsModel())


def test_the_page_says_too_little_data_and_how_many_more_rollouts(tmp_path, qtbot):
    path = tmp_path / "ws.db"
    thin, unsettled = thin_and_unsettled(path)
    page = open_page(qtbot, path)
    model = page.lessons_model
    observed = {model.data(model.index(r, 0)): model.data(model.index(r, 2)) for r in range(model.rowCount())}
    assert observed[thin] == "too little data · ~4 more rollouts"
    more = next(row.observational.more_rollouts for row in model.rows if row.lesson_id == unsettled)
    assert more > 0 and observed[unsettled] == f"+0.17 [-0.10, +0.44] · ~{more} more"
    tip = model.data(model.index(model.row_of(unsettled), 2), Qt.ItemDataRole.ToolTipRole)
    assert f"too little data: the interval includes 0; about {more} more rollouts would settle it" in tip
    assert [note.textItem.toPlainText() for note in page.lift.notes] == ["too little data (~4 more)"]
    assert "too little data (2 matched tasks, need 3): at least 4 more rollouts" in page.lift.tip_at(
        page.lift.scene_pos(0.0, model.row_of(thin)))
    assert page.summary.text().endswith("· 2 lessons · 2 with too little data")
    page.grab().save("/tmp/gate/impact_too_little.png")
