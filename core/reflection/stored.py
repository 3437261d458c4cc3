"""Stored reflections: the list, and one reflection in full (request, raw reply, context, proposals)."""
from __future__ import annotations

import json

from lessonlab.core.errors import NotFound
from lessonlab.core.lessons import list_proposals
from lessonlab.core.runs.queries import resolve_id
from lessonlab.core.runs.owner import effective_status
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.reflection.results import ReflectionError


INTERRUPTED_ERROR = "interrupted: the process ended before the reply was stored"


def with_effective_status(row: dict) -> dict:
    """The row with its status as it really is: 'running' whose process is gone reads 'interrupted'."""
    status = effective_status(row)
    if status != row.get("status"):
        row = {**row, "status": status, "error": row.get("error") or INTERRUPTED_ERROR}
    for key in ("owner_pid", "owner_host", "owner_started"):
        row.pop(key, None)
    return row


def list_reflections(ws: Workspace, limit: int | None = 50) -> list[dict]:
    """Reflections newest first, with proposal counts."""
    rows = ws.query(
        "SELECT f.id, f.kind, f.endpoint, f.model, f.status, f.error, f.response_mode, f.created_at, f.prompt_tokens,"
        " f.completion_tokens, f.owner_pid, f.owner_host, f.owner_started,"
        " (SELECT COUNT(*) FROM proposals p WHERE p.reflection_id = f.id) AS proposals,"
        " (SELECT COUNT(*) FROM proposals p WHERE p.reflection_id = f.id AND p.status = 'pending') AS pending"
        " FROM reflections f ORDER BY f.created_at DESC, f.id LIMIT ?",
        (limit or -1,),
    )
    return [with_effective_status(row) for row in rows]


def reflection_detail(ws: Workspace, ident: str) -> dict:
    """One reflection with its request, raw reply, context record, rollouts and proposals."""
    try:
        full = resolve_id(ws, "reflections", ident)
    except NotFound as exc:
        raise ReflectionError(str(exc)) from exc
    row = with_effective_status(ws.one("SELECT * FROM reflections WHERE id = ?", (full,)))
    row["request"] = json.loads(row.pop("request_json"))
    row["context"] = json.loads(row.pop("context_json"))
    row["rollouts"] = ws.query("SELECT rollout_id, included, reason FROM reflection_rollouts WHERE reflection_id = ?",
                               (full,))
    row["proposals"] = list_proposals(ws, status=None, reflection_id=full)
    return row
