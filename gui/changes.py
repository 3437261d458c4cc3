"""The one "changed" notification: what an operation changed, sent to every page (Anki's operation_did_execute).

Operations do not pick what to announce: they run through `gui/perform.py`, which looks up what their
result changed in `CHANGED_BY` (one line per result type) and notifies once. Pages connect to
`changes.changed` and decide for themselves what to refresh. Pages never call each other to say that
something changed.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from lessonlab.core.impact import AblationResult
from lessonlab.core.lessons import LessonChange
from lessonlab.core.reflection import ReflectionResult
from lessonlab.core.runs.runner import RunResult
from lessonlab.core.runs.scoring import Scored
from lessonlab.core.settings import Settings
from lessonlab.core.transfer import ImportReport

from .operations import RunCreated

# What can change. Strings rather than an enum so a page can test `"runs" in change`.
RUNS = "runs"
ROLLOUTS = "rollouts"
LESSONS = "lessons"
PROPOSALS = "proposals"
REFLECTIONS = "reflections"
ENDPOINTS = "endpoints"
WORKSPACE = "workspace"
KINDS = frozenset({RUNS, ROLLOUTS, LESSONS, PROPOSALS, REFLECTIONS, ENDPOINTS, WORKSPACE})

# What an operation changed, by the type of what it returns (or reports as progress). A new kind of
# result is one line here; running an operation whose result is not listed fails loudly (TypeError)
# instead of leaving the pages stale.
CHANGED_BY: dict[type, tuple[str, ...]] = {
    RunCreated: (RUNS,),                                 # the run row exists
    RunResult: (RUNS, ROLLOUTS),
    Scored: (RUNS, ROLLOUTS),                            # a rollout's reward, its run's mean
    ImportReport: (RUNS, ROLLOUTS),
    AblationResult: (RUNS, ROLLOUTS, LESSONS),           # two runs, and the lesson's impact
    ReflectionResult: (REFLECTIONS, PROPOSALS),          # a failed reflection is stored too
    LessonChange: (LESSONS, PROPOSALS),                  # proposed lessons wait in Review
    Settings: (ENDPOINTS,),                              # the settings as saved
}


def kinds_changed_by(result_type: type) -> tuple[str, ...]:
    """The kinds of thing a result of this type says changed; TypeError if the type is not in CHANGED_BY."""
    for known, kinds in CHANGED_BY.items():
        if issubclass(result_type, known):
            return kinds
    raise TypeError(f"{result_type.__name__} is not in gui.changes.CHANGED_BY: say what it changes there")


def reports_change(value: object) -> bool:
    """Whether value (a result or a progress report) is one of the results in CHANGED_BY."""
    return any(isinstance(value, known) for known in CHANGED_BY)


@dataclass(frozen=True)
class Change:
    """What changed: some of KINDS, and the run it concerns when there is one."""

    kinds: frozenset[str]
    run_id: str | None = None

    def __contains__(self, kind: str) -> bool:
        return kind in self.kinds


class Changes(QObject):
    """Holder of the `changed` signal; the main window owns one and hands it to its pages."""

    changed = Signal(object)  # a Change

    def notify(self, *kinds: str, run_id: str | None = None) -> Change:
        """Tell every page that these kinds of thing changed; return the Change sent."""
        unknown = set(kinds) - KINDS
        if unknown:
            raise ValueError(f"unknown kinds of change: {sorted(unknown)}")
        change = Change(frozenset(kinds), run_id)
        self.changed.emit(change)
        return change

    def notify_result(self, result: object) -> Change:
        """Notify what result (an operation's return value) changed, with its run when it names one."""
        return self.notify(*kinds_changed_by(type(result)), run_id=getattr(result, "run_id", None))
