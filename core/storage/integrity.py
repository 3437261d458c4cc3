"""Damage to a workspace file: found by SQLite's own checks or by stored text that no longer decodes.

Once damage is found it is noted in a file beside the workspace (`<workspace>.damaged`), because the
damaged file itself cannot be trusted with the note; every later write is refused (reads still work)
until `check_workspace` passes again, e.g. after the file was restored from a backup.
"""
from __future__ import annotations

import contextlib
import json
import sqlite3
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from lessonlab.core.errors import WorkspaceDamaged, damaged_error, database_error

# Problems listed by `check` (SQLite can report thousands for one damaged page).
MAX_PROBLEMS = 20

ADVICE = ("Restore the workspace from a backup if you have one. Otherwise salvage what SQLite can read: "
          "`sqlite3 {path} .recover | sqlite3 {stem}-recovered.db`, then use the recovered file with "
          "--workspace (and keep the damaged one until you have checked it).")


def damage_note_path(path: Path | str) -> Path:
    """The file beside a workspace that says it was found damaged."""
    path = Path(path)
    return path.with_name(path.name + ".damaged")


def noted_damage(path: Path | str) -> str | None:
    """Why the workspace was found damaged, or None when no damage is noted."""
    note = damage_note_path(path)
    try:
        return note.read_text(encoding="utf-8", errors="replace").strip() or "damage was found earlier"
    except FileNotFoundError:
        return None
    except OSError:
        return "damage was found earlier"


def note_damage(path: Path | str, cause: str) -> None:
    """Remember that the workspace is damaged (best effort: a folder that cannot be written keeps no note)."""
    with contextlib.suppress(OSError):
        damage_note_path(path).write_text(cause.strip() + "\n", encoding="utf-8")


def clear_damage(path: Path | str) -> None:
    """Forget noted damage (after a check found none)."""
    with contextlib.suppress(FileNotFoundError):
        damage_note_path(path).unlink()


@dataclass
class IntegrityReport:
    """What `check_workspace` found: ok, or the problems (the first MAX_PROBLEMS) and what to do."""

    path: str
    ok: bool
    problems: list[str] = field(default_factory=list)
    advice: str | None = None

    def to_dict(self) -> dict:
        """The fields as a plain dict (for JSON output)."""
        return dict(self.__dict__)


def _connect_read_only(path: Path) -> sqlite3.Connection:
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    conn.text_factory = bytes  # text is decoded here, so that undecodable text is a finding, not a crash
    return conn


def _text(value) -> str:
    """A value SQLite returned as text (bytes where the connection reads text as bytes)."""
    return value if isinstance(value, str) else bytes(value or b"").decode("utf-8", "replace")


def _sqlite_problems(conn: sqlite3.Connection, quick: bool) -> list[str]:
    pragma = "quick_check" if quick else "integrity_check"
    rows = conn.execute(f"PRAGMA {pragma}({MAX_PROBLEMS})").fetchall()
    problems = [_text(row[0]) for row in rows]
    return [] if problems == ["ok"] else problems


def _text_problems(conn: sqlite3.Connection) -> list[str]:
    """Text that is not UTF-8, and *_json columns that are not JSON, table by table."""
    problems: list[str] = []
    tables = [_text(name) for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND sql NOT LIKE"
        " 'CREATE VIRTUAL%' AND name NOT LIKE '%fts%'")]
    for table in tables:
        columns = [_text(row[1]) for row in conn.execute(f"PRAGMA table_info([{table}])")
                   if _text(row[2]).upper() == "TEXT"]
        for column in columns:
            problems.extend(_column_problems(conn, table, column, MAX_PROBLEMS - len(problems)))
            if len(problems) >= MAX_PROBLEMS:
                return problems
    return problems


def _column_problems(conn: sqlite3.Connection, table: str, column: str, limit: int) -> list[str]:
    """Rows (counted from 1 in storage order) whose text does not decode, or whose JSON does not parse."""
    found = []
    check_json = column.endswith("_json")
    cursor = conn.execute(f"SELECT [{column}], typeof([{column}]) = 'text' AND {'json_valid([' + column + '])' if check_json else '1'}"
                          f" FROM [{table}]")
    for number, (value, valid_json) in enumerate(cursor, start=1):
        if not isinstance(value, bytes):
            continue
        try:
            value.decode("utf-8")
        except UnicodeDecodeError:
            found.append(f"{table}.{column} of row {number} is not valid UTF-8 text")
        else:
            if check_json and not valid_json:
                found.append(f"{table}.{column} of row {number} is not valid JSON")
        if len(found) >= limit:
            break
    return found


def check_workspace(path: Path | str) -> IntegrityReport:
    """SQLite's integrity check plus a decode of every stored text; notes damage found, clears a note if none."""
    path = Path(path).expanduser()
    try:
        conn = _connect_read_only(path)
        try:
            problems = _sqlite_problems(conn, quick=False)
            if not problems:
                problems = _text_problems(conn)
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    if problems:
        note_damage(path, problems[0])
        return IntegrityReport(str(path), False, problems[:MAX_PROBLEMS],
                               ADVICE.format(path=path, stem=path.with_suffix("")))
    clear_damage(path)
    return IntegrityReport(str(path), True)


def ensure_intact(conn: sqlite3.Connection, path: Path | str) -> None:
    """WorkspaceDamaged (and the damage noted) unless SQLite's quick check passes: for reads that must be whole."""
    try:
        problems = _sqlite_problems(conn, quick=True)
    except sqlite3.DatabaseError as exc:
        problems = [str(exc)]
    if problems:
        note_damage(path, problems[0])
        raise damaged_error(path, problems[0][:120])


def damage_from(exc: BaseException, path: Path | str) -> WorkspaceDamaged | None:
    """The damage an error reveals (noted beside the workspace), or None when it is not damage.

    SQLite's "malformed" and undecodable text are damage; so is a JSON or Unicode decode error that
    reaches a front end, because files and replies are decoded (and refused with their own message) in
    core: what is left is text stored in the workspace that no longer decodes."""
    if isinstance(exc, sqlite3.Error):
        clear = database_error(exc, path)
        if not isinstance(clear, WorkspaceDamaged):
            return None
        note_damage(path, str(exc).split(" with text", 1)[0])
        return clear
    if isinstance(exc, (json.JSONDecodeError, UnicodeDecodeError)):
        cause = f"stored text does not decode: {str(exc)[:80]}"
        note_damage(path, cause)
        return damaged_error(path, cause)
    return None


def refuse_if_damaged(path: Path | str) -> None:
    """WorkspaceDamaged when damage was noted for this workspace (writes are refused until a check passes)."""
    cause = noted_damage(path)
    if cause is not None:
        raise damaged_error(path, cause[:120])


__all__ = ["IntegrityReport", "WorkspaceDamaged", "check_workspace", "ensure_intact", "note_damage",
           "noted_damage", "clear_damage", "damage_from", "refuse_if_damaged", "damage_note_path"]
