"""Selecting what a reflection reads: the rollouts (a run, ids, or a suite's last runs) and the lessons they ran under."""
from __future__ import annotations

from lessonlab.core.errors import NotFound
from lessonlab.core.lessons import Lesson, active_lessons, list_lessons
from lessonlab.core.runs.queries import resolve_id
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.reflection.results import ReflectionError

_ROLLOUT_SQL = """
    SELECT r.id, r.run_id, r.task_id, r.sample_index, r.snapshot_id, r.status, r.reward, r.feedback, r.error,
           r.created_at, t.suite, t.name AS task, t.split, t.prompt_json, x.output
    FROM rollouts r JOIN tasks t ON t.id = r.task_id JOIN rollout_texts x ON x.rollout_id = r.id
"""
_ORDER = " ORDER BY r.created_at, r.id"


def _placeholders(ids: list) -> str:
    return ",".join("?" * len(ids))


def _rows_of_runs(ws: Workspace, run_ids: list[str]) -> list[dict]:
    return ws.query(_ROLLOUT_SQL + f" WHERE r.run_id IN ({_placeholders(run_ids)})" + _ORDER, run_ids)


def _last_runs_of_suite(ws: Workspace, suite: str, last: int | None) -> list[str]:
    if last is not None and last < 1:
        raise ReflectionError("--last must be at least 1")
    runs = ws.query("SELECT id FROM runs WHERE suite = ? ORDER BY created_at DESC LIMIT ?", (suite, last or 1))
    if not runs:
        raise ReflectionError(f"no runs of suite {suite!r} yet")
    return [r["id"] for r in runs]


def select_rollouts(ws: Workspace, *, run_id: str | None = None, rollout_ids: list[str] | None = None,
                    suite: str | None = None, last: int | None = None) -> list[dict]:
    """The rollouts named by a run id, explicit rollout ids, or the last N runs of a suite."""
    chosen = [bool(run_id), bool(rollout_ids), bool(suite)]
    if sum(chosen) != 1:
        raise ReflectionError("say what to reflect on: --run RUN, or --rollouts ID..., or --suite S [--last N]")
    try:
        if run_id:
            rows = _rows_of_runs(ws, [resolve_id(ws, "runs", run_id)])
        elif rollout_ids:
            ids = [resolve_id(ws, "rollouts", ident) for ident in rollout_ids]
            rows = ws.query(_ROLLOUT_SQL + f" WHERE r.id IN ({_placeholders(ids)})" + _ORDER, ids)
        else:
            rows = _rows_of_runs(ws, _last_runs_of_suite(ws, suite, last))
    except NotFound as exc:
        raise ReflectionError(str(exc)) from exc
    if not rows:
        raise ReflectionError("no rollouts to reflect on")
    return rows


def lessons_for(ws: Workspace, rows: list[dict]) -> list[Lesson]:
    """The active lessons these rollouts' suites see (global ones and those scoped to a suite among them)."""
    suites = {r["suite"] for r in rows}
    lessons = list(active_lessons(ws, None))
    lessons += [lesson for lesson in list_lessons(ws, status="active")
                if lesson.scope is not None and suites & set(lesson.scope)]
    lessons.sort(key=lambda lesson: (lesson.created_at, lesson.seq))
    return lessons
