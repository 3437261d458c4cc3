"""Changing the lessons database: lessons with versions and status events, and the curation of proposals.

Nothing is overwritten: every change is a new `lesson_versions` row or a `lesson_events` row
with its author ('human', a reflection id, or 'loop:gated') and reason. Every function that
changes something does it in one transaction and returns a dataclass saying what changed.
"""
from __future__ import annotations

import json
import logging
import re

from lessonlab.core.formatting import printable
# The data and the reads live in lessons.data; the package re-exports both modules.
from lessonlab.core.lessons.data import (HUMAN, STATUSES, Budget, Lesson, LessonChange, LessonError, LessonNotFound,  # noqa: F401
                             active_lessons, budget_status, estimate_tokens, get_lesson, lesson_history,
                             lesson_ids, lessons_by_ids, list_lessons, resolve_lesson_id, resolve_proposal_id,
                             scope_names)
from lessonlab.core.storage.workspace import Workspace, new_id, now

log = logging.getLogger("lessonlab.lessons")

# A lesson enters every system prompt of its scope: past this it is a document, not a lesson.
MAX_LESSON_CHARS = 2000
# Lessons are plain text: tabs and newlines, nothing that could drive a terminal or a template.
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


# --- changing ---------------------------------------------------------------------------------------


def check_lesson_text(text: str | None) -> str:
    """The text as a lesson stores it (stripped), or LessonError saying which lesson rule it breaks."""
    return _clean_text(text)


def _clean_text(text: str | None) -> str:
    text = (text or "").replace("\r\n", "\n").strip()
    if not text:
        raise LessonError("a lesson needs some text")
    if len(text) > MAX_LESSON_CHARS:
        raise LessonError(f"the lesson is {len(text):,} characters; a lesson is at most {MAX_LESSON_CHARS:,} "
                          "(it goes into every system prompt of its scope): shorten it")
    bad = _CONTROL_RE.search(text)
    if bad and "\ud800" <= bad.group(0) <= "\udfff":
        raise LessonError(f"the lesson text is not valid Unicode ({printable(bad.group(0))} at character "
                          f"{bad.start() + 1}: bytes that are not UTF-8?)")
    if bad:
        raise LessonError(f"the lesson text contains a control character ({printable(bad.group(0))} at character "
                          f"{bad.start() + 1}); lessons are plain text")
    return text


def _clean_scope(scope) -> list[str] | None:
    if scope is None:
        return None
    names = sorted({s.strip() for s in scope if s and s.strip()})
    return names or None


def known_suites(ws: Workspace) -> set[str]:
    """Suite names a lesson can be scoped to: the built-in suites and every suite this workspace has run."""
    # Imported here: suites load the verifiers (and their worker pool), which listing lessons never needs.
    from lessonlab.core.tasks.suites import builtin_suites

    rows = ws.query("SELECT DISTINCT suite FROM tasks UNION SELECT DISTINCT suite FROM runs")
    return set(builtin_suites()) | {row["suite"] for row in rows}


def _check_scope(ws: Workspace, scope, allow_unknown: bool) -> None:
    """LessonError when the scope names a suite neither built in nor run here (a typo scopes a lesson to nothing)."""
    names = _clean_scope(scope) or []
    unknown = [name for name in names if name not in known_suites(ws)] if names and not allow_unknown else []
    if unknown:
        known = ", ".join(sorted(known_suites(ws))) or "none"
        raise LessonError(f"no suite named {', '.join(map(repr, unknown))} (known: {known}); "
                          "pass --allow-unknown-suite to scope a lesson to a suite not run yet")


def _insert_version(ws: Workspace, lesson_id: str, text: str, author: str, reason: str | None,
                    parents: list[str] | None = None, *, make_current: bool = True) -> str:
    row = ws.one("SELECT COALESCE(MAX(version), 0) AS n FROM lesson_versions WHERE lesson_id = ?", (lesson_id,))
    version_id = new_id("lv", 5)
    stamp = now()
    ws.conn.execute(
        "INSERT INTO lesson_versions (id, lesson_id, version, text, tokens_est, author, reason, parents_json,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (version_id, lesson_id, row["n"] + 1, text, estimate_tokens(text), author, reason,
         json.dumps(parents) if parents else None, stamp),
    )
    if make_current:
        ws.conn.execute("UPDATE lessons SET current_version_id = ?, updated_at = ? WHERE id = ?",
                        (version_id, stamp, lesson_id))
    return version_id


def _event(ws: Workspace, lesson_id: str, kind: str, author: str, reason: str | None, *,
           from_status: str | None = None, to_status: str | None = None, version_id: str | None = None) -> None:
    ws.conn.execute(
        "INSERT INTO lesson_events (id, lesson_id, kind, from_status, to_status, version_id, author, reason,"
        " created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (new_id("lev", 5), lesson_id, kind, from_status, to_status, version_id, author, reason, now()),
    )


def _set_status(ws: Workspace, lesson_id: str, status: str) -> None:
    ws.conn.execute("UPDATE lessons SET status = ?, updated_at = ? WHERE id = ?", (status, now(), lesson_id))


def _create(ws: Workspace, text: str, *, status: str, scope, origin: str, author: str, reason: str | None,
            reflection_id: str | None = None, parents: list[str] | None = None) -> tuple[str, str]:
    lesson_id = new_id("les", 4)
    stamp = now()
    scope = _clean_scope(scope)
    ws.conn.execute(
        "INSERT INTO lessons (id, status, scope_json, origin, reflection_id, current_version_id, created_at,"
        " updated_at) VALUES (?, ?, ?, ?, ?, NULL, ?, ?)",
        (lesson_id, status, json.dumps(scope) if scope else None, origin, reflection_id, stamp, stamp),
    )
    version_id = _insert_version(ws, lesson_id, text, author, reason, parents)
    _event(ws, lesson_id, "created", author, reason, to_status=status, version_id=version_id)
    return lesson_id, version_id


def add_lesson(ws: Workspace, text: str, *, scope: list[str] | None = None, reason: str | None = None,
               author: str = HUMAN, status: str = "active", allow_unknown_suite: bool = False) -> LessonChange:
    """Write a lesson by hand: active at once, or `proposed` to be accepted later."""
    text = _clean_text(text)
    if status not in ("active", "proposed"):
        raise LessonError("a new lesson is either active or proposed")
    _check_scope(ws, scope, allow_unknown_suite)
    with ws.transaction():
        duplicate = _duplicate_of(ws, text)
        if duplicate:
            raise LessonError(f"an active lesson already says this: {duplicate}")
        lesson_id, version_id = _create(ws, text, status=status, scope=scope, origin=HUMAN, author=author,
                                        reason=reason or "written by hand")
    return LessonChange("add", [lesson_id], [version_id], {lesson_id: status})


def edit_lesson(ws: Workspace, ident: str, text: str, *, reason: str | None = None, author: str = HUMAN,
                scope: list[str] | None | str = "unchanged", allow_unknown_suite: bool = False) -> LessonChange:
    """A new version of a lesson's text (and optionally a new scope); the old version stays."""
    text = _clean_text(text)
    if scope != "unchanged":
        _check_scope(ws, scope, allow_unknown_suite)
    lesson = get_lesson(ws, ident)
    if lesson.status == "rejected":
        raise LessonError(f"lesson {lesson.id} was rejected; restore it before editing")
    if text == lesson.text and scope == "unchanged":
        raise LessonError(f"lesson {lesson.id} already has exactly this text")
    with ws.transaction():
        if scope != "unchanged":
            clean = _clean_scope(scope)
            ws.conn.execute("UPDATE lessons SET scope_json = ? WHERE id = ?",
                            (json.dumps(clean) if clean else None, lesson.id))
        version_id = _insert_version(ws, lesson.id, text, author, reason)
        _event(ws, lesson.id, "edited", author, reason, from_status=lesson.status, to_status=lesson.status,
               version_id=version_id)
    return LessonChange("edit", [lesson.id], [version_id], {lesson.id: lesson.status})


def retire_lesson(ws: Workspace, ident: str, *, reason: str | None = None, author: str = HUMAN) -> LessonChange:
    """Take an active (or proposed) lesson out of the system prompt; it stays in the database."""
    lesson = get_lesson(ws, ident)
    if lesson.status not in ("active", "proposed"):
        raise LessonError(f"lesson {lesson.id} is {lesson.status}; only active lessons can be retired")
    with ws.transaction():
        _set_status(ws, lesson.id, "retired")
        _event(ws, lesson.id, "retired", author, reason, from_status=lesson.status, to_status="retired",
               version_id=lesson.version_id)
    return LessonChange("retire", [lesson.id], [], {lesson.id: "retired"})


def restore_lesson(ws: Workspace, ident: str, *, reason: str | None = None, author: str = HUMAN) -> LessonChange:
    """Make a retired or rejected lesson active again (its current version)."""
    lesson = get_lesson(ws, ident)
    if lesson.status not in ("retired", "rejected"):
        raise LessonError(f"lesson {lesson.id} is {lesson.status}; only retired or rejected lessons can be restored")
    with ws.transaction():
        duplicate = _duplicate_of(ws, lesson.text)
        if duplicate:
            raise LessonError(f"an active lesson already says this: {duplicate}")
        _set_status(ws, lesson.id, "active")
        _event(ws, lesson.id, "restored", author, reason, from_status=lesson.status, to_status="active",
               version_id=lesson.version_id)
    return LessonChange("restore", [lesson.id], [], {lesson.id: "active"})


def set_proposed_lesson(ws: Workspace, ident: str, accept: bool, *, reason: str | None = None,
                        author: str = HUMAN) -> LessonChange:
    """Accept (→ active) or reject a lesson in status `proposed`."""
    lesson = get_lesson(ws, ident)
    if lesson.status != "proposed":
        raise LessonError(f"lesson {lesson.id} is {lesson.status}, not proposed")
    status = "active" if accept else "rejected"
    with ws.transaction():
        _set_status(ws, lesson.id, status)
        _event(ws, lesson.id, "accepted" if accept else "rejected", author, reason, from_status="proposed",
               to_status=status, version_id=lesson.version_id)
    return LessonChange("accept" if accept else "reject", [lesson.id], [], {lesson.id: status})


def normalise_text(text: str) -> str:
    """Lower-case, whitespace collapsed and trailing punctuation dropped (for duplicate checks)."""
    return " ".join((text or "").lower().split()).rstrip(".!;: ")


def _duplicate_of(ws: Workspace, text: str, exclude: set[str] = frozenset()) -> str | None:
    wanted = normalise_text(text)
    for lesson in list_lessons(ws, status="active"):
        if lesson.id not in exclude and normalise_text(lesson.text) == wanted:
            return lesson.id
    return None


# --- proposals --------------------------------------------------------------------------------------


def _proposal(row: dict) -> dict:
    row = dict(row)
    row["lesson_ids"] = json.loads(row.pop("lesson_ids_json") or "[]")
    row["evidence"] = json.loads(row.pop("evidence_json") or "[]")
    row["evidence_steps"] = json.loads(row.pop("evidence_steps_json", None) or "[]")   # ["ro_x#4", ...]
    leakage = row.pop("leakage_json")
    row["leakage"] = json.loads(leakage) if leakage else []
    return row


def _proposal_filter(status: str | None, reflection_id: str | None) -> tuple[str, list]:
    where, params = [], []
    if status:
        where.append("status = ?")
        params.append(status)
    if reflection_id:
        where.append("reflection_id = ?")
        params.append(reflection_id)
    return (" WHERE " + " AND ".join(where) if where else ""), params


def list_proposals(ws: Workspace, *, status: str | None = "pending", reflection_id: str | None = None,
                   limit: int | None = None, offset: int = 0) -> list[dict]:
    """Proposals (pending ones by default), oldest first, with their lesson ids, evidence and leakage flags;
    `limit` of them from `offset` (None: all)."""
    where, params = _proposal_filter(status, reflection_id)
    sql = f"SELECT * FROM proposals{where} ORDER BY created_at, rowid"
    if limit is not None:
        sql += " LIMIT ? OFFSET ?"
        params += [limit, offset]
    return [_proposal(r) for r in ws.query(sql, params)]


def count_proposals(ws: Workspace, *, status: str | None = "pending", reflection_id: str | None = None) -> int:
    """How many proposals list_proposals would give without a limit."""
    where, params = _proposal_filter(status, reflection_id)
    return ws.one(f"SELECT COUNT(*) AS n FROM proposals{where}", params)["n"]


def get_proposal(ws: Workspace, ident: str) -> dict:
    """One proposal by id (or unique prefix), with the current text of the lessons it touches."""
    prop = _proposal(ws.one("SELECT * FROM proposals WHERE id = ?", (resolve_proposal_id(ws, ident),)))
    found = lessons_by_ids(ws, prop["lesson_ids"])
    prop["lessons"] = [found[lesson_id].to_dict() for lesson_id in prop["lesson_ids"] if lesson_id in found]
    return prop


def _decide(ws: Workspace, prop_id: str, status: str, by: str, reason: str | None, result: str | None) -> None:
    ws.conn.execute(
        "UPDATE proposals SET status = ?, decided_at = ?, decided_by = ?, decision_reason = ?,"
        " result_lesson_id = COALESCE(?, result_lesson_id) WHERE id = ?",
        (status, now(), by, reason, result, prop_id),
    )


def _active_lesson(ws: Workspace, lesson_id: str, op: str) -> Lesson:
    lesson = lessons_by_ids(ws, [lesson_id]).get(lesson_id)
    if lesson is None:
        raise LessonError(f"cannot {op}: lesson {lesson_id} no longer exists")
    if lesson.status != "active":
        raise LessonError(f"cannot {op}: lesson {lesson_id} is {lesson.status} now, not active")
    return lesson


def accept_proposal(ws: Workspace, ident: str, *, text: str | None = None, reason: str | None = None,
                    decided_by: str = HUMAN, scope: list[str] | None = None,
                    allow_unknown_suite: bool = False) -> LessonChange:
    """Apply a pending proposal (optionally with edited text) in one transaction."""
    _check_scope(ws, scope, allow_unknown_suite)
    prop = get_proposal(ws, ident)
    if prop["status"] != "pending":
        detail = f" ({prop['invalid_reason']})" if prop["status"] == "invalid" else ""
        raise LessonError(f"proposal {prop['id']} is {prop['status']}{detail}; only pending proposals can be accepted")
    op = prop["op"]
    edited = text is not None and text.strip() != (prop["text"] or "").strip()
    new_text = _clean_text(text if text is not None else prop["text"]) if op != "retire" else None
    # The words are the reflection's unless the person rewrote them.
    author = decided_by if edited else prop["reflection_id"]
    why = reason or prop["rationale"]
    change = LessonChange("accept", proposal_id=prop["id"], proposal_status="accepted")
    with ws.transaction():
        staged = prop["result_lesson_id"] if op == "add" else None
        if staged and ws.one("SELECT 1 FROM lessons WHERE id = ? AND status = 'proposed'", (staged,)):
            # Tried by an interrupted gated loop: the lesson exists as `proposed`; activate that one.
            if normalise_text(new_text) != normalise_text(get_lesson(ws, staged).text):
                _insert_version(ws, staged, new_text, author, why)
            change = set_proposed_lesson(ws, staged, True, reason=reason or f"accepted proposal {prop['id']}",
                                         author=decided_by)
            _decide(ws, prop["id"], "accepted", decided_by, reason, staged)
            change.proposal_id, change.proposal_status = prop["id"], "accepted"
            return change
        if op == "add":
            duplicate = _duplicate_of(ws, new_text)
            if duplicate:
                raise LessonError(f"an active lesson already says this: {duplicate}")
            lesson_id, version_id = _create(ws, new_text, status="proposed", scope=scope, origin="reflection",
                                            author=author, reason=prop["rationale"],
                                            reflection_id=prop["reflection_id"])
            _set_status(ws, lesson_id, "active")
            _event(ws, lesson_id, "accepted", decided_by, reason or f"accepted proposal {prop['id']}",
                   from_status="proposed", to_status="active", version_id=version_id)
            change.lesson_ids, change.version_ids, change.statuses = [lesson_id], [version_id], {lesson_id: "active"}
            result = lesson_id
        elif op == "edit":
            lesson = _active_lesson(ws, prop["lesson_ids"][0], "edit")
            if normalise_text(new_text) == normalise_text(lesson.text):
                raise LessonError(f"lesson {lesson.id} already has this text")
            version_id = _insert_version(ws, lesson.id, new_text, author, why)
            _event(ws, lesson.id, "edited", decided_by, reason or f"accepted proposal {prop['id']}",
                   from_status="active", to_status="active", version_id=version_id)
            change.lesson_ids, change.version_ids, change.statuses = [lesson.id], [version_id], {lesson.id: "active"}
            result = lesson.id
        elif op == "merge":
            sources = [_active_lesson(ws, lid, "merge") for lid in prop["lesson_ids"]]
            scopes = [s.scope for s in sources]
            merged_scope = None if any(s is None for s in scopes) else sorted({n for s in scopes for n in s})
            lesson_id, version_id = _create(
                ws, new_text, status="proposed", scope=scope or merged_scope, origin="reflection", author=author,
                reason=why, reflection_id=prop["reflection_id"], parents=[s.version_id for s in sources],
            )
            _set_status(ws, lesson_id, "active")
            _event(ws, lesson_id, "accepted", decided_by, reason or f"accepted proposal {prop['id']}",
                   from_status="proposed", to_status="active", version_id=version_id)
            for source in sources:
                _set_status(ws, source.id, "retired")
                _event(ws, source.id, "merged", decided_by, f"merged into {lesson_id} (proposal {prop['id']})",
                       from_status="active", to_status="retired", version_id=source.version_id)
            change.action = "merge"
            change.lesson_ids = [lesson_id, *[s.id for s in sources]]
            change.version_ids = [version_id]
            change.statuses = {lesson_id: "active", **{s.id: "retired" for s in sources}}
            result = lesson_id
        elif op == "retire":
            lesson = _active_lesson(ws, prop["lesson_ids"][0], "retire")
            _set_status(ws, lesson.id, "retired")
            _event(ws, lesson.id, "retired", decided_by, reason or f"accepted proposal {prop['id']}: {prop['rationale'] or ''}".strip(),
                   from_status="active", to_status="retired", version_id=lesson.version_id)
            change.lesson_ids, change.statuses = [lesson.id], {lesson.id: "retired"}
            result = lesson.id
        else:  # pragma: no cover - validation never stores other ops
            raise LessonError(f"unknown operation {op!r}")
        _decide(ws, prop["id"], "accepted", decided_by, reason or ("edited before accepting" if edited else None), result)
    return change


def reject_proposal(ws: Workspace, ident: str, *, reason: str | None = None, decided_by: str = HUMAN) -> LessonChange:
    """Mark a pending (or invalid) proposal rejected; the lessons stay as they are."""
    prop = get_proposal(ws, ident)
    if prop["status"] not in ("pending", "invalid"):
        raise LessonError(f"proposal {prop['id']} is already {prop['status']}")
    change = LessonChange("reject", proposal_id=prop["id"], proposal_status="rejected")
    staged = prop["result_lesson_id"] if prop["op"] == "add" else None
    with ws.transaction():
        if staged and ws.one("SELECT 1 FROM lessons WHERE id = ? AND status = 'proposed'", (staged,)):
            # Tried (and held) by the gated loop: its staged lesson goes with the proposal.
            set_proposed_lesson(ws, staged, False, reason=reason or f"rejected proposal {prop['id']}",
                                author=decided_by)
            change.lesson_ids, change.statuses = [staged], {staged: "rejected"}
        _decide(ws, prop["id"], "rejected", decided_by, reason, None)
    return change


def note_proposal(ws: Workspace, ident: str, note: str) -> None:
    """Append a line to a proposal's note (why the gate held it, which evidence ids were dropped)."""
    prop_id = resolve_proposal_id(ws, ident)
    with ws.transaction():
        ws.conn.execute("UPDATE proposals SET note = CASE WHEN note IS NULL OR note = '' THEN ? "
                        "ELSE note || char(10) || ? END WHERE id = ?", (note, note, prop_id))


# --- trying a proposal before accepting it (the gated loop) -----------------------------------------------

GATE = "loop:gated"


def stage_proposal(ws: Workspace, ident: str, suite: str | None) -> list[Lesson]:
    """The lessons a run of `suite` would see if this add/retire proposal were accepted.

    An `add` is materialised as a lesson in status `proposed` (so the trial snapshot can record its
    exact version); it becomes active or rejected in `settle_staged`.
    """
    prop = get_proposal(ws, ident)
    if prop["status"] != "pending":
        raise LessonError(f"proposal {prop['id']} is {prop['status']}, not pending")
    current = active_lessons(ws, suite)
    if prop["op"] == "retire":
        _active_lesson(ws, prop["lesson_ids"][0], "retire")
        return [lesson for lesson in current if lesson.id != prop["lesson_ids"][0]]
    if prop["op"] != "add":
        raise LessonError(f"only add and retire proposals can be tried automatically, not {prop['op']}")
    lesson_id = prop["result_lesson_id"]
    if not lesson_id:
        with ws.transaction():
            duplicate = _duplicate_of(ws, prop["text"])
            if duplicate:
                raise LessonError(f"an active lesson already says this: {duplicate}")
            lesson_id, _ = _create(ws, _clean_text(prop["text"]), status="proposed", scope=None,
                                   origin="reflection", author=prop["reflection_id"], reason=prop["rationale"],
                                   reflection_id=prop["reflection_id"])
            ws.conn.execute("UPDATE proposals SET result_lesson_id = ? WHERE id = ?", (lesson_id, prop["id"]))
    staged = get_lesson(ws, lesson_id)
    return sorted([*current, staged], key=lambda lesson: (lesson.created_at, lesson.seq))


def settle_staged(ws: Workspace, ident: str, accept: bool, reason: str, decided_by: str = GATE) -> LessonChange:
    """Accept or reject a proposal tried with `stage_proposal`, recording the gate's reason."""
    prop = get_proposal(ws, ident)
    if prop["op"] == "add" and prop["result_lesson_id"]:
        lesson_id = prop["result_lesson_id"]
        with ws.transaction():
            change = set_proposed_lesson(ws, lesson_id, accept, reason=reason, author=decided_by)
            _decide(ws, prop["id"], "accepted" if accept else "rejected", decided_by, reason, lesson_id)
        change.proposal_id, change.proposal_status = prop["id"], "accepted" if accept else "rejected"
        return change
    if accept:
        return accept_proposal(ws, prop["id"], reason=reason, decided_by=decided_by)
    return reject_proposal(ws, prop["id"], reason=reason, decided_by=decided_by)
