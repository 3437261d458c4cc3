"""Snapshots: the exact system prompt a rollout was sent with; content-hashed and immutable."""
from __future__ import annotations

import re
from dataclasses import dataclass

from lessonlab.core.resources import read_prompt, sha256
from lessonlab.core.storage.workspace import Workspace, now

TEMPLATE_NAME = "system_template.md"


@dataclass(frozen=True)
class Snapshot:
    """One system prompt exactly as sent."""

    id: str
    hash: str
    system_prompt: str
    base_prompt: str
    lesson_count: int


def base_prompt(settings=None) -> str:
    """The base system prompt: the user's setting, else the built-in resource."""
    if settings is not None and settings.base_prompt:
        return settings.base_prompt
    return read_prompt("base_system.md").strip()


def get_or_create_snapshot(ws: Workspace, system_prompt: str, base: str, lesson_count: int = 0,
                           lesson_versions: list[tuple[str, str]] | None = None) -> Snapshot:
    """The snapshot row for this exact prompt text, creating it once (identical prompts share one).

    `lesson_versions` is the ordered (lesson id, version id) list rendered into the prompt; it is
    recorded in `snapshot_lessons` when the snapshot is first created.
    """
    lesson_versions = list(lesson_versions or [])
    if lesson_versions:
        lesson_count = len(lesson_versions)
    digest = sha256(system_prompt)
    snap_id = f"snap_{digest[:12]}"
    if ws.read_only:
        # Showing the prompt of a read-only workspace: the stored snapshot, else computed and not stored.
        if ws.one("SELECT 1 FROM snapshots WHERE id = ?", (snap_id,)):
            return load_snapshot(ws, snap_id)
        return Snapshot(snap_id, digest, system_prompt, base, lesson_count)
    with ws.transaction():
        created = ws.conn.execute(
            "INSERT OR IGNORE INTO snapshots (id, hash, system_prompt, base_prompt, lesson_count, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (snap_id, digest, system_prompt, base, lesson_count, now()),
        ).rowcount
        if created and lesson_versions:
            ws.conn.executemany(
                "INSERT INTO snapshot_lessons (snapshot_id, position, lesson_id, version_id) VALUES (?, ?, ?, ?)",
                [(snap_id, i, lesson_id, version_id) for i, (lesson_id, version_id) in enumerate(lesson_versions)],
            )
    return load_snapshot(ws, snap_id)


def render_system_prompt(base: str, lesson_texts: list[str]) -> str:
    """Base prompt + the lessons block from resources/prompts/system_template.md (exactly `base` without lessons)."""
    if not lesson_texts:
        return base
    items = []
    for text in lesson_texts:
        lines = text.strip().splitlines() or [""]
        items.append("- " + "\n  ".join(line.rstrip() for line in lines))
    template = read_prompt(TEMPLATE_NAME)
    values = {"base_prompt": base, "lessons": "\n".join(items)}
    # One pass, so braces inside a lesson or the base prompt are never substituted again.
    return re.sub(r"\{(base_prompt|lessons)\}", lambda m: values[m.group(1)], template).strip()


def snapshot_for_lessons(ws: Workspace, base: str, lessons: list) -> Snapshot:
    """The snapshot of `base` + these lessons (objects with id, version_id, text) in the order given."""
    prompt = render_system_prompt(base, [lesson.text for lesson in lessons])
    return get_or_create_snapshot(ws, prompt, base, len(lessons), [(l.id, l.version_id) for l in lessons])


def load_snapshot(ws: Workspace, snap_id: str) -> Snapshot:
    """A snapshot by id."""
    row = ws.one("SELECT * FROM snapshots WHERE id = ?", (snap_id,))
    if row is None:
        raise KeyError(f"no snapshot {snap_id}")
    return Snapshot(row["id"], row["hash"], row["system_prompt"], row["base_prompt"], row["lesson_count"])


def current_snapshot(ws: Workspace, settings=None, suite: str | None = None) -> Snapshot:
    """The snapshot a new run of `suite` would be sent with now: base prompt + the active lessons in scope."""
    from lessonlab.core.lessons import active_lessons  # lessons builds on workspace only; imported here to keep layers simple

    base = base_prompt(settings)
    return snapshot_for_lessons(ws, base, active_lessons(ws, suite))


def snapshot_lessons(ws: Workspace, snap_id: str) -> list[dict]:
    """The exact lesson versions a snapshot holds, in prompt order."""
    return ws.query(
        "SELECT sl.position, sl.lesson_id, sl.version_id, v.version, v.text FROM snapshot_lessons sl"
        " JOIN lesson_versions v ON v.id = sl.version_id WHERE sl.snapshot_id = ? ORDER BY sl.position",
        (snap_id,),
    )


def build_messages(system_prompt: str, task_messages: list[dict]) -> list[dict]:
    """Request messages: the snapshot's system prompt first (merged with a task's own system message)."""
    messages = [dict(m) for m in task_messages]
    if not system_prompt:
        return messages
    if messages and messages[0].get("role") == "system":
        messages[0]["content"] = f"{system_prompt}\n\n{messages[0]['content']}"
        return messages
    return [{"role": "system", "content": system_prompt}, *messages]
