"""The Compare page lists the lessons each rollout saw and shows a task's rollouts with and without one lesson."""
from __future__ import annotations

import pytest
from tests.helpers.lesson_runs import HELPFUL, NEUTRAL, lesson_aware_server, seed_lesson_history
from tests.helpers.tasks import numeric_tasks

from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui.compare_lessons import GroupHeader
from lessonlab.gui.compare_page import ComparePage


@pytest.fixture
def history(tmp_path, make_suite):
    path = tmp_path / "ws.db"
    with lesson_aware_server() as server:
        made = seed_lesson_history(path, make_suite(numeric_tasks(3)), server)
    ws = open_workspace(path)
    task_id = ws.one("SELECT id FROM tasks WHERE name = 't0'")["id"]
    ws.close()
    return path, task_id, made


def test_each_column_lists_the_lessons_in_its_prompt(history, qtbot, page_context):
    path, task_id, made = history
    page = ComparePage(page_context(path))
    qtbot.addWidget(page)
    page.resize(1400, 800)
    page.show()
    page.show_task(task_id)
    qtbot.waitUntil(lambda: len(page.columns) == 12, timeout=5000)   # 6 runs × 2 samples
    by_run: dict[str, list[list[str]]] = {}
    for column in page.columns:
        by_run.setdefault(column.rollout["run_id"], []).append(column.lessons.texts())
    first, with_helpful, with_both, _abl_with, _abl_without, last = (by_run[r][0] for r in made.runs)
    assert first == ["no lessons in its prompt"]
    assert with_helpful == [f"{made.helpful} v1 · {HELPFUL}"]
    assert with_both == [f"{made.helpful} v1 · {HELPFUL}", f"{made.neutral} v1 · {NEUTRAL}"]
    assert last == [f"{made.neutral} v1 · {NEUTRAL}"]
    # the full text (and the version) on hover
    column = next(c for c in page.columns if c.rollout["run_id"] == made.runs[2])
    tip = column.lessons.item(0).toolTip()
    assert HELPFUL in tip and f"{made.helpful} version 1" in tip and "retired now" in tip


def test_the_lesson_filter_puts_rollouts_with_and_without_it_side_by_side(history, qtbot, page_context):
    path, task_id, made = history
    page = ComparePage(page_context(path))
    qtbot.addWidget(page)
    page.resize(1400, 800)
    page.show()
    page.show_task(task_id)
    qtbot.waitUntil(lambda: len(page.columns) == 12, timeout=5000)
    choices = [page.lesson_filter.itemData(i) for i in range(page.lesson_filter.count())]
    assert choices == [None, made.helpful, made.neutral]
    assert not any(h.isVisible() for h in page.strip.findChildren(GroupHeader))

    page.choose_lesson(made.helpful)
    shown = page.visible_columns()
    assert len(shown) == 12
    with_runs = {made.runs[1], made.runs[2], made.ablation_runs[0]}
    assert [c.rollout["run_id"] in with_runs for c in shown] == [True] * 6 + [False] * 6
    assert all(c.saw(made.helpful) for c in shown[:6]) and not any(c.saw(made.helpful) for c in shown[6:])
    heads = [h for h in page.strip.findChildren(GroupHeader) if h.isVisible()]
    assert [(h.has_lesson, h.count, h.mean) for h in heads] == [(True, 6, 1.0), (False, 6, 0.0)]
    # the strip holds: header, 6 columns, header, 6 columns — side by side in that order
    order = [page.strip_layout.itemAt(i).widget() for i in range(page.strip_layout.count())]
    assert order[0] is heads[0] and order[7] is heads[1] and order[1:7] == shown[:6] and order[8:] == shown[6:]

    page.choose_lesson(made.neutral)
    heads = [h for h in page.strip.findChildren(GroupHeader) if h.isVisible()]
    assert [(h.has_lesson, h.count, h.mean) for h in heads] == [(True, 8, 0.5), (False, 4, 0.5)]

    # the reward filter still applies inside the groups
    page.filter.setCurrentIndex(1)   # reward = 1
    heads = [h for h in page.strip.findChildren(GroupHeader) if h.isVisible()]
    assert [(h.has_lesson, h.count) for h in heads] == [(True, 4), (False, 2)]

    page.filter.setCurrentIndex(0)
    page.choose_lesson(None)
    assert not any(h.isVisible() for h in page.strip.findChildren(GroupHeader))
    assert len(page.visible_columns()) == 12
