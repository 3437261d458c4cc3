"""The review queue and its decisions, shared by `lessonlab proposals/accept/reject` and the app's Review page.

The queue holds the pending proposals grouped by reflection (newest reflection first) and the lessons
written by hand in status `proposed`; failed reflections are listed apart so they can be retried over
the same rollouts. Accepting and rejecting go through `accept` / `reject`, which take a proposal id or
a proposed lesson's id, exactly as the CLI commands do.
"""
from __future__ import annotations

import json

from lessonlab.core import lessons as L
from lessonlab.core import reflection
from lessonlab.core.errors import NotFound
from lessonlab.core.lessons import LessonChange, LessonError
from lessonlab.core.runs.queries import resolve_id
from lessonlab.core.reflection.stored import with_effective_status
from lessonlab.core.settings import Endpoint, Settings
from lessonlab.core.storage.workspace import Workspace

HAND_WRITTEN = "proposed lessons"   # the queue group of lessons written by hand in status proposed


def is_lesson_id(ident: str) -> bool:
    """Whether ident names a lesson (les_…) rather than a proposal."""
    return ident.startswith("les_")


# --- deciding --------------------------------------------------------------------------------------


def accept(ws: Workspace, ident: str, *, text: str | None = None, reason: str | None = None,
           scope: list[str] | None = None, allow_unknown_suite: bool = False) -> LessonChange:
    """Accept a proposal (optionally with edited text and a scope) or a proposed lesson (optionally re-worded)."""
    if not is_lesson_id(ident):
        return L.accept_proposal(ws, ident, text=text, reason=reason, scope=scope,
                                 allow_unknown_suite=allow_unknown_suite)
    with ws.transaction():
        if text:
            L.edit_lesson(ws, ident, text, reason=reason)
        return L.set_proposed_lesson(ws, ident, True, reason=reason)


def reject(ws: Workspace, ident: str, *, reason: str | None = None) -> LessonChange:
    """Reject a proposal or a proposed lesson; the active lessons stay as they are."""
    if is_lesson_id(ident):
        return L.set_proposed_lesson(ws, ident, False, reason=reason)
    return L.reject_proposal(ws, ident, reason=reason)


# --- the queue --------------------------------------------------------------------------------------------


def review_queue(ws: Workspace) -> list[dict]:
    """Pending work, newest first: one group per reflection with its pending proposals, and the hand-written ones."""
    # Each group is {"reflection": summary or None, "title", "created_at", "items"}; each item has the
    # operation, the old text (the lessons it changes) and the new text, rationale, evidence rollouts
    # (with task and reward), the steps it cites (`ro_x#N`: call and result) and leakage findings.
    proposals = L.list_proposals(ws, status="pending")
    reflections = _reflection_summaries(ws, sorted({p["reflection_id"] for p in proposals}))
    lessons = _lessons_by_id(ws, {lid for p in proposals for lid in p["lesson_ids"]})
    evidence = rollout_briefs(ws, sorted({rid for p in proposals for rid in p["evidence"]}))
    groups: dict[str, dict] = {}
    trajectories: dict[str, list | None] = {}   # the cited rollouts' steps, each read once for every proposal
    for prop in proposals:
        ref = reflections.get(prop["reflection_id"]) or {"id": prop["reflection_id"], "created_at": prop["created_at"]}
        group = groups.setdefault(ref["id"], {"reflection": ref, "title": _reflection_title(ref),
                                              "created_at": ref["created_at"], "items": []})
        targets = [lessons[lid] for lid in prop["lesson_ids"] if lid in lessons]
        group["items"].append({
            "id": prop["id"], "kind": "proposal", "op": prop["op"], "reflection_id": prop["reflection_id"],
            "old_text": "\n".join(t["text"] for t in targets),
            "new_text": "" if prop["op"] == "retire" else (prop["text"] or ""),
            "rationale": prop["rationale"] or "", "note": prop.get("note") or "", "lesson_ids": prop["lesson_ids"], "targets": targets,
            "evidence": [evidence.get(rid, {"id": rid, "task": "?", "reward": None, "status": "missing"})
                         for rid in prop["evidence"]],
            "steps": reflection.cited_steps(ws, prop["evidence_steps"], trajectories),
            "leakage": prop["leakage"], "created_at": prop["created_at"],
        })
    staged = {p["result_lesson_id"] for p in proposals if p["result_lesson_id"]}
    hand = [lesson for lesson in L.list_lessons(ws, status="proposed") if lesson.id not in staged]
    if hand:
        groups[HAND_WRITTEN] = {
            "reflection": None, "title": "Proposed lessons (written by hand)",
            "created_at": max(lesson.created_at for lesson in hand), "items": [{
                "id": lesson.id, "kind": "lesson", "op": "add", "reflection_id": None, "old_text": "",
                "new_text": lesson.text, "rationale": _version_reason(ws, lesson.version_id), "lesson_ids": [lesson.id],
                "targets": [], "evidence": [], "steps": [], "leakage": [], "created_at": lesson.created_at,
            } for lesson in hand],
        }
    return sorted(groups.values(), key=lambda g: g["created_at"], reverse=True)


def failed_reflections(ws: Workspace, limit: int = 20) -> list[dict]:
    """Reflections that failed (or whose process died mid-call), newest first, with their error and rollout count."""
    rows = ws.query(
        "SELECT f.id, f.kind, f.endpoint, f.model, f.error, f.created_at, f.status, f.owner_pid, f.owner_host,"
        " f.owner_started, (SELECT COUNT(*) FROM reflection_rollouts x WHERE x.reflection_id = f.id) AS rollouts"
        " FROM reflections f WHERE f.status IN ('failed', 'running') ORDER BY f.created_at DESC, f.id LIMIT ?",
        (limit,),
    )
    rows = [with_effective_status(row) for row in rows]
    return [{k: v for k, v in row.items() if k != "status"} for row in rows if row["status"] != "running"]


def rollout_briefs(ws: Workspace, ids: list[str]) -> dict[str, dict]:
    """Task name, reward and status of these rollouts, keyed by id (ids that no longer exist are left out)."""
    if not ids:
        return {}
    rows = ws.query(
        "SELECT r.id, t.name AS task, r.reward, r.status FROM rollouts r JOIN tasks t ON t.id = r.task_id"
        f" WHERE r.id IN ({','.join('?' * len(ids))})",
        list(ids),
    )
    return {row["id"]: row for row in rows}


def _reflection_summaries(ws: Workspace, ids: list[str]) -> dict[str, dict]:
    if not ids:
        return {}
    rows = ws.query(
        "SELECT id, kind, endpoint, model, server_model, status, analysis, response_mode, created_at FROM reflections"
        f" WHERE id IN ({','.join('?' * len(ids))})",
        ids,
    )
    return {row["id"]: row for row in rows}


def _reflection_title(ref: dict) -> str:
    when = (ref.get("created_at") or "").replace("T", " ")[5:16]
    model = ref.get("server_model") or ref.get("model") or ref.get("endpoint") or "?"
    kind = " · distill" if ref.get("kind") == "distill" else ""
    mode = f" · {ref['response_mode']}" if ref.get("response_mode") else ""
    return f"{ref['id']} · {when} · {model}{kind}{mode}"


def _lessons_by_id(ws: Workspace, ids: set[str]) -> dict[str, dict]:
    out = {}
    for lesson_id in sorted(ids):
        try:
            lesson = L.get_lesson(ws, lesson_id)
        except LessonError:
            continue  # gone: the proposal will fail to apply with a clear message
        out[lesson_id] = {"id": lesson.id, "status": lesson.status, "version": lesson.version, "text": lesson.text}
    return out


def _version_reason(ws: Workspace, version_id: str) -> str:
    row = ws.one("SELECT reason FROM lesson_versions WHERE id = ?", (version_id,))
    return (row or {}).get("reason") or ""


# --- retrying a failed reflection --------------------------------------------------------------------------


def retry_target(ws: Workspace, reflection_id: str) -> dict:
    """What a retry re-runs: the reflection's kind, the endpoint it used and the rollouts it covered."""
    try:
        full = resolve_id(ws, "reflections", reflection_id)
    except NotFound as exc:
        raise LessonError(str(exc)) from exc
    row = ws.one("SELECT id, kind, endpoint FROM reflections WHERE id = ?", (full,))
    row["rollout_ids"] = [r[0] for r in ws.conn.execute(
        "SELECT rollout_id FROM reflection_rollouts WHERE reflection_id = ? ORDER BY rowid", (full,))]
    if row["kind"] != "distill" and not row["rollout_ids"]:
        raise LessonError(f"reflection {full} recorded no rollouts, so it cannot be retried")
    return row


def retry_reflection(ws: Workspace, reflection_id: str, endpoint: Endpoint, *, base_url: str | None = None,
                     settings: Settings | None = None, on_chunk=None, cancel=None):
    """Run a failed reflection again (a new reflection) over the same rollouts; a distill is simply run again."""
    target = retry_target(ws, reflection_id)
    if target["kind"] == "distill":
        return reflection.distill(ws, endpoint, base_url=base_url, settings=settings, on_chunk=on_chunk, cancel=cancel)
    return reflection.reflect(ws, endpoint, base_url=base_url, rollout_ids=target["rollout_ids"], settings=settings,
                              on_chunk=on_chunk, cancel=cancel)


def reflection_reply(ws: Workspace, reflection_id: str) -> dict:
    """A reflection's analysis, raw reply, error and notes (for viewing)."""
    row = ws.one("SELECT id, kind, endpoint, model, server_model, status, error, analysis, raw_reply, context_json,"
                 " created_at FROM reflections WHERE id = ?", (reflection_id,))
    if row is None:
        raise LessonError(f"no reflection with id {reflection_id!r}")
    context = json.loads(row.pop("context_json") or "{}")
    row["notes"] = context.get("notes", [])
    row["omitted"] = len(context.get("omitted_rollouts", []))
    return row
