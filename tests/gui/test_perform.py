"""Operations run through gui/perform.py: one error path, one change notice taken from what they return."""
from __future__ import annotations

import inspect
from dataclasses import dataclass

import pytest
from PySide6.QtWidgets import QWidget

from lessonlab.core.lessons import LessonChange
from lessonlab.core.runs.runner import RunResult
from lessonlab.gui import errors, importing, operations
from lessonlab.gui.changes import CHANGED_BY, Changes, kinds_changed_by
from lessonlab.gui.operations import changes_result
from lessonlab.gui.perform import perform, perform_in_background, start_with_request


@dataclass
class Unlisted:
    """A result type nobody said anything about."""


@changes_result(LessonChange)
def retire_in_background(job, lesson_id: str) -> LessonChange:
    return LessonChange("retire", [lesson_id], statuses={lesson_id: "retired"})


@changes_result(RunResult)
def failing_run(job) -> RunResult:
    raise RuntimeError("the endpoint went away")


def unmarked(job) -> LessonChange:
    return LessonChange("add")


@pytest.fixture
def owner(qtbot):
    widget = QWidget()
    qtbot.addWidget(widget)
    return widget


@pytest.fixture
def notices():
    changes = Changes()
    seen = []
    changes.changed.connect(seen.append)
    return changes, seen


def test_a_quick_write_notifies_what_its_result_changed_once(owner, notices):
    changes, seen = notices
    result = perform(owner, changes, "Cannot retire", lambda: LessonChange("retire", ["L1"]))
    assert result.lesson_ids == ["L1"]
    assert [c.kinds for c in seen] == [frozenset({"lessons", "proposals"})]


def test_a_failed_quick_write_shows_one_error_and_notifies_nothing(owner, notices):
    changes, seen = notices
    before = len(errors.shown_errors)

    def refuse():
        raise ValueError("lesson L9 is retired")

    assert perform(owner, changes, "Cannot retire", refuse) is None
    assert errors.shown_errors[before:] == [("Cannot retire", "lesson L9 is retired")]
    assert seen == []


def test_a_result_nobody_listed_fails_loudly_instead_of_leaving_pages_stale(owner, notices):
    changes, seen = notices
    with pytest.raises(TypeError, match="Unlisted is not in gui.changes.CHANGED_BY"):
        perform(owner, changes, "Cannot do it", Unlisted)
    with pytest.raises(TypeError, match="mark it with @changes_result"):
        perform_in_background(owner, changes, "unmarked", unmarked)
    assert seen == []


def test_a_background_operation_notifies_then_calls_back(owner, notices, qtbot):
    changes, seen = notices
    done = []
    perform_in_background(owner, changes, "retire", retire_in_background, "L2",
                          on_done=lambda result: done.append((result, len(seen))))
    qtbot.waitUntil(lambda: bool(done), timeout=5000)
    assert done[0][0].lesson_ids == ["L2"] and done[0][1] == 1   # the pages were told before the caller
    assert [c.kinds for c in seen] == [frozenset({"lessons", "proposals"})]


def test_a_failed_background_operation_shows_its_error_once_and_notifies_what_it_may_have_written(owner, notices,
                                                                                                   qtbot):
    changes, seen = notices
    before = len(errors.shown_errors)
    failed = []
    perform_in_background(owner, changes, "run", failing_run, on_failed=failed.append, error_title="The run failed")
    qtbot.waitUntil(lambda: bool(failed), timeout=5000)
    assert str(failed[0]) == "the endpoint went away"
    assert errors.shown_errors[before:] == [("The run failed", "the endpoint went away")]
    assert [c.kinds for c in seen] == [frozenset({"runs", "rollouts"})]  # finished rollouts are kept


def test_a_request_that_cannot_be_built_is_an_error_and_nothing_starts(owner):
    before = len(errors.shown_errors)
    started = []

    def bad_request():
        raise ValueError("no endpoint named 'nowhere'")

    assert start_with_request(owner, "Cannot reflect", bad_request, started.append) is None
    assert started == [] and errors.shown_errors[before:] == [("Cannot reflect", "no endpoint named 'nowhere'")]
    assert start_with_request(owner, "Cannot reflect", lambda: "ok", lambda r: started.append(r) or r) == "ok"


def test_every_background_operation_says_what_it_changes():
    marked = [fn for module in (operations, importing) for _, fn in inspect.getmembers(module, inspect.isfunction)
              if hasattr(fn, "result_type")]
    assert {fn.__name__ for fn in marked} >= {"start_and_execute_run", "reflect", "retry_reflection", "distill",
                                              "ablate", "import_job"}
    for fn in marked:
        assert kinds_changed_by(fn.result_type), fn.__name__
    assert all(kinds for kinds in CHANGED_BY.values())
