"""Stored reflections: the list, and one reflection in full (request, raw reply, context, proposals)."""
from __future__ import annotations

import json

from ..errors import NotFound
from ..lessons import list_proposals
from ..queries import resolve_id
from ..workspace import Workspace
from .results import ReflectionError


def list_reflections(ws: Workspace, limit: int | None = 50) -> list[dict]:
    """Reflections newest first, with proposal counts."""
    return ws.query(
        "SELECT f.id, f.kind, f.endpoint, f.model, f.status, f.error, f.response_mode, f.created_at, f.prompt_tokens,"
        " f.completion_tokens, (SELECT COUNT(*) FROM proposals p WHERE p.reflection_id = f.id) AS proposals,"
        " (SELECT COUNT(*) FROM proposals p WHERE p.reflection_id = f.id AND p.status = 'pending') AS pending"
        " FROM reflections f ORDER BY f.created_at DESC, f.id LIMIT ?",
        (limit or -1,),
    )


def reflection_detail(ws: Workspace, ident: str) -> dict:
    """One reflection with its request, raw reply, context record, rollouts and proposals."""
    try:
        full = resolve_id(ws, "reflections", ident)
    except NotFound as exc:
        raise ReflectionError(str(exc)) from exc
    row = ws.one("SELECT * FROM reflections WHERE id = ?", (full,))
    row["request"] = json.loads(row.pop("request_json"))
    row["context"] = json.loads(row.pop("context_json"))
    row["rollouts"] = ws.query("SELECT rollout_id, included, reason FROM reflection_rollouts WHERE reflection_id = ?",
                               (full,))
    row["proposals"] = list_proposals(ws, status=None, reflection_id=full)
    return row
