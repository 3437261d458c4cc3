"""The lessons block in a client's request: rendered exactly as a run renders it, after the client's own
system prompt (which stays first and whole), or as a system message of its own."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from lessonlab.core.lessons.data import active_lessons
from lessonlab.core.lessons.snapshots import Snapshot, snapshot_for_lessons
from lessonlab.core.storage.workspace import Workspace

# How long a scope's lessons are trusted before the workspace is asked whether they changed.
RECHECK_SECONDS = 0.5


@dataclass(frozen=True)
class LessonsBlock:
    """A scope's current lessons: the snapshot recording them and the text added to requests ('' for none)."""

    snapshot: Snapshot
    text: str


def inject(messages: list[dict], block: str) -> list[dict]:
    """The messages with the lessons block appended to the first system message, or added as one before them."""
    if not block:
        return messages
    out = list(messages)
    if out and isinstance(out[0], dict) and out[0].get("role") in ("system", "developer"):
        first = dict(out[0])
        content = first.get("content")
        if isinstance(content, list):  # content parts: the block becomes one more text part
            first["content"] = [*content, {"type": "text", "text": block}]
        else:
            first["content"] = f"{content}\n\n{block}" if content else block
        out[0] = first
        return out
    return [{"role": "system", "content": block}, *out]


class LessonSource:
    """The lessons block per scope, re-read only when the lessons changed (one cheap query per recheck)."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self._cache: dict[str | None, tuple[float, object, LessonsBlock]] = {}
        self._lock = threading.Lock()

    def block(self, scope: str | None) -> LessonsBlock:
        """The current block for `scope` (None: lessons for every suite)."""
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(scope)
            if hit is not None and now - hit[0] < RECHECK_SECONDS:
                return hit[2]
            mark = self._lessons_mark()
            if hit is not None and hit[1] == mark:
                self._cache[scope] = (now, mark, hit[2])
                return hit[2]
            lessons = active_lessons(self.ws, scope)
            # The base of a served snapshot is empty: the client's own system prompt takes its place.
            snapshot = snapshot_for_lessons(self.ws, "", lessons)
            block = LessonsBlock(snapshot, snapshot.system_prompt)
            self._cache[scope] = (now, mark, block)
            return block

    def _lessons_mark(self):
        # The identity of the active set (ids, versions, scopes): any curation changes it.
        return self.ws.conn.execute(
            "SELECT COUNT(*), group_concat(id || ':' || COALESCE(current_version_id, '') || ':'"
            " || COALESCE(scope_json, ''), ',') FROM lessons WHERE status = 'active'").fetchone()
