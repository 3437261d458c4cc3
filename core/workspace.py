"""The workspace: one SQLite file, opened through sqlite-utils, migrated in order."""
from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import secrets
import sqlite3
from pathlib import Path
from typing import Iterator

import sqlite_utils

from . import migrations
from .errors import BadInput, database_error
from .ids import new_id  # noqa: F401  (re-exported: most modules import it from here)
from .paths import default_workspace_path

log = logging.getLogger("lessonlab.workspace")

# How long a write waits for another process's write lock before giving up with one clear line.
BUSY_TIMEOUT_SECONDS = 30.0


class WorkspaceError(BadInput, RuntimeError):
    """The workspace file cannot be opened or is not a lessonlab workspace."""


def now() -> str:
    """Current UTC time as an ISO-8601 string with milliseconds (sortable)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Workspace:
    """An open workspace. `db` is the sqlite_utils.Database; writes go through `transaction()`."""

    def __init__(self, path: Path, db: sqlite_utils.Database):
        self.path = path
        self.db = db

    @property
    def conn(self) -> sqlite3.Connection:
        return self.db.conn

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite_utils.Database]:
        """All-or-nothing block of writes: commits on success, rolls back on any exception."""
        conn = self.db.conn
        if conn.in_transaction:
            # Nested use joins the outer transaction through a savepoint.
            name = f"sp_{secrets.token_hex(4)}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield self.db
            except BaseException:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
                raise
            conn.execute(f"RELEASE {name}")
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params=()) -> list[dict]:
        """Rows of a read query as dicts."""
        return list(self.db.query(sql, params))

    def one(self, sql: str, params=()) -> dict | None:
        """The first row of a read query, or None."""
        for row in self.db.query(sql, params):
            return row
        return None

    def close(self) -> None:
        """Close the connection."""
        self.db.conn.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_workspace(path: str | Path | None = None, *, create: bool = True) -> Workspace:
    """Open (and create/migrate) the workspace at path, or the default one."""
    path = Path(path) if path else default_workspace_path()
    path = path.expanduser()
    if not path.exists():
        if not create:
            raise WorkspaceError(f"no workspace at {path}")
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so a transaction
        # spans exactly the writes of one operation.
        conn = sqlite3.connect(str(path), isolation_level=None,
                               timeout=BUSY_TIMEOUT_SECONDS)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        db = sqlite_utils.Database(conn)
        migrations.migrate(db)
    except migrations.NewerWorkspaceError as exc:
        raise WorkspaceError(f"{path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        clear = database_error(exc, path)
        if clear is not None and not isinstance(clear, BadInput):
            raise clear from exc  # locked, read-only, disk full: the work failed, the file is fine
        raise WorkspaceError(f"{path} is not a usable lessonlab workspace: {exc}") from exc
    log.debug("opened workspace %s", path)
    return Workspace(path, db)
