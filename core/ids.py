"""Ids: new ones, and full ids from a unique prefix (the CLI and the GUI accept shortened ids)."""
from __future__ import annotations

import hashlib
import secrets
from typing import TYPE_CHECKING

from lessonlab.core.errors import NotFound

if TYPE_CHECKING:
    from lessonlab.core.storage.workspace import Workspace


def new_id(prefix: str, nbytes: int = 5) -> str:
    """A short random id with a readable prefix, e.g. run_3f9a2c1b7d."""
    return f"{prefix}_{secrets.token_hex(nbytes)}"


def task_id(suite: str, name: str, content_hash: str) -> str:
    """A task row's stable id: its suite, name and content (a changed prompt or verifier is a new row).

    Suite tasks, imported ones and served ones all get theirs here, so the same task meets itself."""
    return "t_" + hashlib.sha256(f"{suite}\0{name}\0{content_hash}".encode()).hexdigest()[:12]


def like_prefix(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') matching strings that start with text."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def resolve_id(ws: "Workspace", table: str, ident: str, what: str | None = None,
               error: type[NotFound] = NotFound) -> str:
    """A full id from an id or a unique prefix of one; `error` when none or several match."""
    what = what or table.rstrip("s")
    ident = (ident or "").strip()
    if not ident:
        raise error(f"empty {what} id")
    if ws.one(f"SELECT id FROM {table} WHERE id = ?", (ident,)):
        return ident
    rows = ws.query(f"SELECT id FROM {table} WHERE id LIKE ? ESCAPE '\\' LIMIT 4", (like_prefix(ident),))
    if len(rows) == 1:
        return rows[0]["id"]
    if rows:
        shown = ", ".join(r["id"] for r in rows[:3]) + ("…" if len(rows) > 3 else "")
        raise error(f"{ident!r} is ambiguous: it starts several {what} ids ({shown}); give more of it")
    raise error(f"no {what} with id {ident!r}")
