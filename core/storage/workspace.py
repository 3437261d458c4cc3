"""The workspace: one SQLite file, opened through sqlite-utils, migrated in order."""
from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import secrets
import sqlite3
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from lessonlab.core.storage import migrations
from lessonlab.core.storage.integrity import damage_from, ensure_intact, refuse_if_damaged
from lessonlab.core.errors import (BadInput, DatabaseBusy, DatabaseReadOnly, WorkFailed,
                                   database_error)
from lessonlab.core.ids import new_id  # noqa: F401  (re-exported: most modules import it from here)
from lessonlab.core.paths import workspace_path

if TYPE_CHECKING:
    import sqlite_utils

log = logging.getLogger("lessonlab.workspace")

# Before the first write of a process, files up to this size get SQLite's quick check (about 0.3 s per
# 100 MB): damage found then refuses the write instead of building on it. Larger files rely on SQLite's
# own errors and on damage noted earlier (see integrity.py); `lessonlab check` reads any size.
QUICK_CHECK_MAX_BYTES = 256 * 1024 * 1024

# How long a write waits for another process's write lock before giving up with one clear line.
BUSY_TIMEOUT_SECONDS = 30.0


class WorkspaceError(BadInput, RuntimeError):
    """The workspace file cannot be opened or is not a lessonlab workspace."""


def now() -> str:
    """Current UTC time as an ISO-8601 string with milliseconds (sortable)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Workspace:
    """An open workspace. `db` is the sqlite_utils.Database; writes go through `transaction()`."""

    def __init__(self, path: Path, conn: sqlite3.Connection, *, read_only: bool = False):
        self.path = path
        self._conn = conn
        self._db: sqlite_utils.Database | None = None
        self.read_only = read_only   # opened read-only because the file or its folder cannot be written
        self._checked = False        # whether the file was checked for damage before this process wrote to it

    @property
    def conn(self) -> sqlite3.Connection:
        return self._conn

    @property
    def db(self) -> sqlite_utils.Database:
        """The sqlite_utils view of the connection, made on first use (reads need only `conn`)."""
        if self._db is None:
            # sqlite_utils (and numpy, which it loads when installed) takes longer to import than a
            # listing takes to run: commands that only read never pay for it.
            import sqlite_utils

            self._db = sqlite_utils.Database(self._conn)
        return self._db

    def require_writable(self) -> None:
        """DatabaseReadOnly now, before slow work (a model call) whose result could not be stored."""
        if self.read_only:
            raise read_only_error(self.path)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """All-or-nothing block of writes: commits on success, rolls back on any exception.

        It yields nothing: writes go through `conn`, so a write does not import sqlite_utils (see `db`)."""
        conn = self._conn
        if self.read_only:
            raise read_only_error(self.path)
        if conn.in_transaction:
            # Nested use joins the outer transaction through a savepoint.
            name = f"sp_{secrets.token_hex(4)}"
            conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except BaseException:
                conn.execute(f"ROLLBACK TO {name}")
                conn.execute(f"RELEASE {name}")
                raise
            conn.execute(f"RELEASE {name}")
            return
        refuse_if_damaged(self.path)  # a file found damaged is not written to again until a check passes
        if not self._checked:
            self._checked = True
            if _size(self.path) <= QUICK_CHECK_MAX_BYTES:
                ensure_intact(conn, self.path)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException as exc:
            conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.DatabaseError):
                damage_from(exc, self.path)   # notes damage the failed write revealed
            raise
        conn.execute("COMMIT")

    def query(self, sql: str, params=()) -> list[dict]:
        """Rows of a read query as dicts."""
        cursor = self._conn.execute(sql, params)
        if cursor.description is None:
            return []
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def one(self, sql: str, params=()) -> dict | None:
        """The first row of a read query, or None."""
        cursor = self._conn.execute(sql, params)
        row = cursor.fetchone()
        if row is None:
            return None
        return dict(zip([column[0] for column in cursor.description], row))

    def close(self) -> None:
        """Close the connection."""
        self._conn.close()

    def __enter__(self) -> "Workspace":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextlib.contextmanager
def pragma_for_block(conn: sqlite3.Connection, name: str, value: int) -> Iterator[None]:
    """An integer PRAGMA (busy_timeout, cache_size …) set to `value` for the block, then put back as it was."""
    previous = conn.execute(f"PRAGMA {name}").fetchone()[0]
    conn.execute(f"PRAGMA {name} = {int(value)}")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA {name} = {int(previous)}")


def _size(path: Path) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def read_only_error(path: Path) -> DatabaseReadOnly:
    """The one-line error every write to a read-only workspace gives."""
    return DatabaseReadOnly(f"the workspace {path} is read-only; listing and showing work, writing does not")


def _writable(path: Path) -> bool:
    # WAL mode writes two files beside the database (-wal, -shm): the folder must be writable too.
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _open_read_only(path: Path) -> Workspace:
    """Open a workspace whose file or folder cannot be written: reads work, every write is refused."""
    uri = "file:" + urllib.parse.quote(str(path.resolve()))
    last_error: sqlite3.Error | None = None
    # mode=ro reads a WAL database whose -shm can be used; immutable=1 reads one in a folder where SQLite
    # cannot create it (a read-only mount), which is safe because nothing can write there either.
    for suffix in ("?mode=ro", "?mode=ro&immutable=1"):
        try:
            conn = sqlite3.connect(uri + suffix, uri=True, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_SECONDS)
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            break
        except sqlite3.DatabaseError as exc:
            last_error = exc
    else:
        clear = database_error(last_error, path)
        if isinstance(clear, BadInput) or "file is not a database" in str(last_error):
            raise WorkspaceError(f"{path} is not a usable lessonlab workspace: {last_error}") from last_error
        raise WorkFailed(f"the workspace {path} is read-only and cannot be read either ({last_error})") from last_error
    conn.execute("PRAGMA query_only = ON")
    conn.execute("PRAGMA recursive_triggers = ON")  # as sqlite_utils.Database sets it, so reads and writes agree
    ws = Workspace(path, conn, read_only=True)
    try:
        pending = migrations.pending(ws)
    except migrations.NewerWorkspaceError as exc:
        raise WorkspaceError(f"{path}: {exc}") from exc
    if pending:
        raise DatabaseReadOnly(f"the workspace {path} is read-only and was written by an older lessonlab; "
                               f"it needs upgrading ({', '.join(pending)}) where it can be written")
    log.debug("opened workspace %s read-only", path)
    return ws


def open_workspace(path: str | Path | None = None, *, create: bool = True) -> Workspace:
    """Open (and create/migrate) the workspace at path, or the default one; read-only when it cannot be written."""
    path = workspace_path(path)
    if not path.exists():
        if not create:
            raise WorkspaceError(f"no workspace at {path}")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise WorkspaceError(f"no workspace at {path}, and none can be created there "
                                 f"({exc.strerror or exc})") from None
    elif not _writable(path):
        return _open_read_only(path)
    try:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so a transaction
        # spans exactly the writes of one operation.
        conn = sqlite3.connect(str(path), isolation_level=None,
                               timeout=BUSY_TIMEOUT_SECONDS)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA cell_size_check=ON")  # damaged pages are reported as such, not read as data
        conn.execute("PRAGMA recursive_triggers = ON")  # what sqlite_utils.Database sets; set here for every use
        ws = Workspace(path, conn)
        if migrations.pending(ws):
            migrations.migrate(ws.db)
    except migrations.NewerWorkspaceError as exc:
        raise WorkspaceError(f"{path}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        clear = database_error(exc, path)
        if isinstance(clear, (DatabaseReadOnly, WorkFailed)) and path.exists() and not isinstance(clear, DatabaseBusy):
            # A read-only file system (os.access cannot always tell): reading still works.
            return _open_read_only(path)
        if clear is not None and not isinstance(clear, BadInput):
            raise clear from exc  # locked, disk full: the work failed, the file is fine
        raise WorkspaceError(f"{path} is not a usable lessonlab workspace: {exc}") from exc
    log.debug("opened workspace %s", path)
    return ws
