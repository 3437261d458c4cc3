"""What an endpoint was found to accept (a reply mode, a tool-call protocol), remembered per endpoint.

An endpoint is known by its profile name, the profile's base URL ('' for the embedded model, whose port
changes on every start) and the model. Each kind of mode has its own table with the same columns
(`reflection_modes`, `tool_modes`); a record changes only when the mode does.
"""
from __future__ import annotations

from lessonlab.core.settings import Endpoint
from lessonlab.core.storage.workspace import Workspace, now

MODE_TABLES = ("reflection_modes", "tool_modes")


def endpoint_key(endpoint: Endpoint) -> tuple[str, str, str]:
    """(profile name, configured base URL or '', model)."""
    return endpoint.name, endpoint.base_url or "", endpoint.model


def remembered(ws: Workspace, table: str, endpoint: Endpoint, known: tuple[str, ...]) -> str | None:
    """The mode in `table` that last worked for this endpoint, if any and still one of `known`."""
    assert table in MODE_TABLES, table
    row = ws.one(f"SELECT mode FROM {table} WHERE endpoint = ? AND base_url = ? AND model = ?",
                 endpoint_key(endpoint))
    return row["mode"] if row and row["mode"] in known else None


def remember(ws: Workspace, table: str, endpoint: Endpoint, mode: str, note: str | None = None) -> None:
    """Record in `table` that `mode` worked for this endpoint; the same mode again changes nothing."""
    assert table in MODE_TABLES, table
    name, base_url, model = endpoint_key(endpoint)
    with ws.transaction():
        ws.conn.execute(
            f"INSERT INTO {table} (endpoint, base_url, model, mode, note, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (endpoint, base_url, model) DO UPDATE SET mode = excluded.mode, note = excluded.note,"
            f" updated_at = excluded.updated_at WHERE {table}.mode != excluded.mode",
            (name, base_url, model, mode, note, now()),
        )
