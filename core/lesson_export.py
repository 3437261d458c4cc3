"""Lessons out of the workspace as JSON (every version, with provenance) or Markdown (the current texts).

A minimal exporter for the app's "Export…" button; the broader export (SFT and preference data,
rollouts) lives with the import/export work.
"""
from __future__ import annotations

import json

from . import formatting
from .errors import BadInput
from .lessons import STATUSES, list_lessons
from .workspace import Workspace, now

FORMATS = ("json", "markdown")


def export_lessons(ws: Workspace, fmt: str = "json", *, statuses: tuple[str, ...] | None = None) -> str:
    """The lessons (all, or those with these statuses) as a JSON document or Markdown text."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown export format {fmt!r} (use one of {', '.join(FORMATS)})")
    unknown = set(statuses or ()) - set(STATUSES)
    if unknown:
        raise BadInput(f"unknown status {sorted(unknown)[0]!r} (use one of {', '.join(STATUSES)})")
    lessons = [lesson for lesson in list_lessons(ws) if not statuses or lesson.status in statuses]
    if fmt == "markdown":
        return _markdown(lessons)
    versions: dict[str, list[dict]] = {}
    for row in ws.query("SELECT lesson_id, version, text, author, reason, parents_json, created_at"
                        " FROM lesson_versions ORDER BY lesson_id, version"):
        parents = json.loads(row.pop("parents_json")) if row["parents_json"] else []
        versions.setdefault(row.pop("lesson_id"), []).append({**row, "parents": parents})
    document = {
        "exported_at": now(),
        "lessons": [{
            "id": lesson.id, "status": lesson.status, "scope": lesson.scope, "origin": lesson.origin,
            "reflection_id": lesson.reflection_id, "text": lesson.text, "version": lesson.version,
            "tokens_estimate": lesson.tokens, "created_at": lesson.created_at, "updated_at": lesson.updated_at,
            "versions": versions.get(lesson.id, []),
        } for lesson in lessons],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _markdown(lessons) -> str:
    lines = ["# Lessons", ""]
    for status in STATUSES:
        chosen = [lesson for lesson in lessons if lesson.status == status]
        if not chosen:
            continue
        lines += [f"## {status.capitalize()}", ""]
        for lesson in chosen:
            text = "\n  ".join(lesson.text.strip().splitlines())
            origin = f"from reflection {lesson.reflection_id}" if lesson.reflection_id else "written by hand"
            lines.append(f"- {text}")
            lines.append(f"  ({lesson.id} v{lesson.version} · {formatting.scope(lesson.scope, long=True)} · {origin})")
        lines.append("")
    if len(lines) == 2:
        lines += ["(no lessons)", ""]
    return "\n".join(lines)
