"""Snapshots: the exact system prompt a rollout was sent with; content-hashed and immutable."""
from __future__ import annotations

from dataclasses import dataclass

from .resources import read_prompt, sha256
from .workspace import Workspace, now


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


def get_or_create_snapshot(ws: Workspace, system_prompt: str, base: str, lesson_count: int = 0) -> Snapshot:
    """The snapshot row for this exact prompt text, creating it once (identical prompts share one)."""
    digest = sha256(system_prompt)
    snap_id = f"snap_{digest[:12]}"
    with ws.transaction():
        ws.conn.execute(
            "INSERT OR IGNORE INTO snapshots (id, hash, system_prompt, base_prompt, lesson_count, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (snap_id, digest, system_prompt, base, lesson_count, now()),
        )
    return load_snapshot(ws, snap_id)


def load_snapshot(ws: Workspace, snap_id: str) -> Snapshot:
    """A snapshot by id."""
    row = ws.one("SELECT * FROM snapshots WHERE id = ?", (snap_id,))
    if row is None:
        raise KeyError(f"no snapshot {snap_id}")
    return Snapshot(row["id"], row["hash"], row["system_prompt"], row["base_prompt"], row["lesson_count"])


def current_snapshot(ws: Workspace, settings=None, suite: str | None = None) -> Snapshot:
    """The snapshot a new run of `suite` would be sent with now."""
    base = base_prompt(settings)
    return get_or_create_snapshot(ws, base, base, 0)


def build_messages(system_prompt: str, task_messages: list[dict]) -> list[dict]:
    """Request messages: the snapshot's system prompt first (merged with a task's own system message)."""
    messages = [dict(m) for m in task_messages]
    if not system_prompt:
        return messages
    if messages and messages[0].get("role") == "system":
        messages[0]["content"] = f"{system_prompt}\n\n{messages[0]['content']}"
        return messages
    return [{"role": "system", "content": system_prompt}, *messages]
