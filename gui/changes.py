"""The one "changed" notification: what an operation changed, sent to every page (Anki's operation_did_execute).

An operation that changes the workspace or the settings calls `changes.notify(...)` when it finishes;
pages connect to `changes.changed` and decide for themselves what to refresh. Pages never call each
other to say that something changed.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

# What can change. Strings rather than an enum so a page can test `"runs" in change`.
RUNS = "runs"
ROLLOUTS = "rollouts"
LESSONS = "lessons"
PROPOSALS = "proposals"
REFLECTIONS = "reflections"
ENDPOINTS = "endpoints"
WORKSPACE = "workspace"
KINDS = frozenset({RUNS, ROLLOUTS, LESSONS, PROPOSALS, REFLECTIONS, ENDPOINTS, WORKSPACE})


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
