"""Lessons as plain data and the reads over them: ids, lists, the token budget, a lesson's history.

`lessons` (changing lessons, curating proposals) builds on this module and re-exports it, so callers
keep importing everything from `lessonlab.core.lessons`.
"""
from __future__ import annotations

import difflib
import json
import math
from dataclasses import dataclass, field

from lessonlab.core.errors import BadInput, NotFound
from lessonlab.core.ids import resolve_id
from lessonlab.core.storage.workspace import Workspace

STATUSES = ("proposed", "active", "retired", "rejected")
HUMAN = "human"


class LessonError(BadInput, ValueError):
    """A lesson or proposal id that does not exist, or a change its current state does not allow."""


class LessonNotFound(NotFound, LessonError):
    """No lesson or proposal has this id (or a prefix matches several)."""


def estimate_tokens(text: str) -> int:
    """Token estimate used for every budget: ceil(characters / 4) (no tokenizer download needed)."""
    return math.ceil(len(text or "") / 4)


@dataclass
class Lesson:
    """One lesson with its current version."""

    id: str
    status: str
    scope: list[str] | None          # None: every suite
    origin: str                      # human | reflection
    reflection_id: str | None
    version_id: str
    version: int
    text: str
    tokens: int
    created_at: str
    updated_at: str
    seq: int = 0                     # insertion order: breaks ties between lessons created in the same millisecond

    def in_scope(self, suite: str | None) -> bool:
        """Whether this lesson applies to runs of `suite` (None: only lessons for every suite)."""
        return self.scope is None or (suite is not None and suite in self.scope)

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class LessonChange:
    """What one curation step changed (the GUI refreshes from this)."""

    action: str                                  # add | edit | retire | restore | accept | reject | merge
    lesson_ids: list[str] = field(default_factory=list)
    version_ids: list[str] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)   # lesson id -> new status
    proposal_id: str | None = None
    proposal_status: str | None = None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


# --- reading --------------------------------------------------------------------------------------

_LESSON_SQL = """
    SELECT l.*, l.rowid AS seq, v.id AS version_id, v.version, v.text, v.tokens_est
    FROM lessons l JOIN lesson_versions v ON v.id = l.current_version_id
"""


def _lesson(row: dict) -> Lesson:
    return Lesson(
        id=row["id"], status=row["status"],
        scope=json.loads(row["scope_json"]) if row["scope_json"] else None,
        origin=row["origin"], reflection_id=row["reflection_id"], version_id=row["version_id"],
        version=row["version"], text=row["text"], tokens=row["tokens_est"],
        created_at=row["created_at"], updated_at=row["updated_at"], seq=row["seq"],
    )


def resolve_lesson_id(ws: Workspace, ident: str) -> str:
    """A full lesson id from an id or a unique prefix of one; LessonError otherwise."""
    return _resolve(ws, "lessons", ident, "lesson")


def resolve_proposal_id(ws: Workspace, ident: str) -> str:
    """A full proposal id from an id or a unique prefix of one; LessonError otherwise."""
    return _resolve(ws, "proposals", ident, "proposal")


def _resolve(ws: Workspace, table: str, ident: str, what: str) -> str:
    return resolve_id(ws, table, ident, what, error=LessonNotFound)


def get_lesson(ws: Workspace, ident: str) -> Lesson:
    """A lesson by id (or unique prefix)."""
    lesson_id = resolve_lesson_id(ws, ident)
    return _lesson(ws.one(_LESSON_SQL + " WHERE l.id = ?", (lesson_id,)))


def list_lessons(ws: Workspace, *, status: str | None = None, suite: str | None = None) -> list[Lesson]:
    """Lessons in their stable order (creation time, then insertion order); filtered by status and by suite scope."""
    if status is not None and status not in STATUSES:
        raise LessonError(f"unknown status {status!r} (use one of {', '.join(STATUSES)})")
    sql, params = _LESSON_SQL, []
    if status:
        sql += " WHERE l.status = ?"
        params.append(status)
    sql += " ORDER BY l.created_at, l.rowid"
    lessons = [_lesson(r) for r in ws.query(sql, params)]
    if suite is not None:
        lessons = [lesson for lesson in lessons if lesson.in_scope(suite)]
    return lessons


def lesson_ids(ws: Workspace, *, statuses: tuple[str, ...] | None = None, suite: str | None = None,
               unscoped_only: bool = False) -> list[str]:
    """Ids of lessons in their stable order, with these statuses, that a run of `suite` sees (or only unscoped ones)."""
    sql, params, where = "SELECT id FROM lessons", [], []
    if statuses:
        where.append(f"status IN ({','.join('?' * len(statuses))})")
        params.extend(statuses)
    if unscoped_only:
        where.append("scope_json IS NULL")
    elif suite is not None:
        where.append("(scope_json IS NULL OR EXISTS (SELECT 1 FROM json_each(lessons.scope_json) j WHERE j.value = ?))")
        params.append(suite)
    if where:
        sql += " WHERE " + " AND ".join(where)
    return [row[0] for row in ws.conn.execute(sql + " ORDER BY created_at, rowid", params)]


def lessons_by_ids(ws: Workspace, ids: list[str]) -> dict[str, Lesson]:
    """These lessons with their current versions, keyed by id."""
    if not ids:
        return {}
    rows = ws.query(_LESSON_SQL + f" WHERE l.id IN ({','.join('?' * len(ids))})", list(ids))
    return {row["id"]: _lesson(row) for row in rows}


def scope_names(ws: Workspace) -> list[str]:
    """Suite names a lesson can be scoped to: the workspace's suites and every name used in a scope."""
    names = {row[0] for row in ws.conn.execute("SELECT DISTINCT suite FROM tasks")}
    names |= {row[0] for row in ws.conn.execute(
        "SELECT DISTINCT j.value FROM lessons, json_each(lessons.scope_json) j WHERE lessons.scope_json IS NOT NULL")}
    return sorted(names)


def active_lessons(ws: Workspace, suite: str | None = None) -> list[Lesson]:
    """The active lessons a run of `suite` sees, in the order they enter the system prompt."""
    return [lesson for lesson in list_lessons(ws, status="active") if lesson.in_scope(suite)]


@dataclass
class Budget:
    """Estimated size of the lessons block against the budget setting."""

    tokens: int
    budget: int
    lessons: int

    @property
    def over(self) -> bool:
        return self.tokens > self.budget

    def message(self) -> str:
        """One line for listings; loud when over budget."""
        text = f"lessons block: ~{self.tokens} tokens (estimate) of a {self.budget}-token budget, {self.lessons} active"
        if self.over:
            text = (f"OVER BUDGET: {text} — {self.tokens - self.budget} tokens too many; "
                    f"run `lessonlab distill` to propose a shorter set")
        return text


def budget_status(ws: Workspace, budget: int, suite: str | None = None, *, all_scopes: bool = True) -> Budget:
    """Estimated tokens of the active lessons (all of them, or those a run of `suite` sees)."""
    lessons = list_lessons(ws, status="active") if all_scopes and suite is None else active_lessons(ws, suite)
    return Budget(tokens=sum(lesson.tokens for lesson in lessons), budget=budget, lessons=len(lessons))


def lesson_history(ws: Workspace, ident: str) -> dict:
    """A lesson's versions (with unified diffs against the previous one), events and provenance."""
    lesson = get_lesson(ws, ident)
    versions = ws.query("SELECT * FROM lesson_versions WHERE lesson_id = ? ORDER BY version", (lesson.id,))
    previous = ""
    for v in versions:
        v["parents"] = json.loads(v.pop("parents_json")) if v.get("parents_json") else []
        v["diff"] = "".join(difflib.unified_diff(
            previous.splitlines(keepends=True) if previous else [],
            _nl(v["text"]).splitlines(keepends=True),
            fromfile=f"v{v['version'] - 1}" if v["version"] > 1 else "(none)",
            tofile=f"v{v['version']}",
        ))
        previous = _nl(v["text"])
    events = ws.query("SELECT * FROM lesson_events WHERE lesson_id = ? ORDER BY created_at, rowid", (lesson.id,))
    proposals = ws.query(
        "SELECT id, reflection_id, op, status, rationale, evidence_json, decided_by, decided_at FROM proposals"
        " WHERE result_lesson_id = ? OR EXISTS (SELECT 1 FROM json_each(proposals.lesson_ids_json) j"
        " WHERE j.value = ?) ORDER BY created_at",
        (lesson.id, lesson.id),
    )
    for p in proposals:
        p["evidence"] = json.loads(p.pop("evidence_json") or "[]")
    reflection = None
    if lesson.reflection_id:
        reflection = ws.one(
            "SELECT id, kind, endpoint, model, server_model, prompt_name, created_at FROM reflections WHERE id = ?",
            (lesson.reflection_id,),
        )
    used_in = ws.one(
        "SELECT COUNT(DISTINCT sl.snapshot_id) AS snapshots, COUNT(DISTINCT r.id) AS rollouts"
        " FROM snapshot_lessons sl LEFT JOIN rollouts r ON r.snapshot_id = sl.snapshot_id WHERE sl.lesson_id = ?",
        (lesson.id,),
    )
    return {"lesson": lesson.to_dict(), "versions": versions, "events": events, "proposals": proposals,
            "reflection": reflection, "used_in": used_in}


def _nl(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"
