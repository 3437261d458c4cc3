"""Which structured-reply mode an endpoint accepts, remembered in the workspace (`reflection_modes`).

An endpoint is known by its profile name, the profile's base URL ('' for the embedded model, whose
port changes on every start) and the model. Without a record the first mode is `json_schema`, except
for the embedded model: llama-cpp-python's server rejects that type (with HTTP 500, a request
validation error), so it starts at `json_object_schema`, which it turns into a grammar.
"""
from __future__ import annotations

from lessonlab.core.settings import Endpoint
from lessonlab.core.storage.workspace import Workspace, now
from lessonlab.core.reflection.schema import MODES


def endpoint_key(endpoint: Endpoint) -> tuple[str, str, str]:
    """(profile name, configured base URL or '', model)."""
    return endpoint.name, endpoint.base_url or "", endpoint.model


def remembered_mode(ws: Workspace, endpoint: Endpoint) -> str | None:
    """The mode that last worked for this endpoint, if any."""
    row = ws.one("SELECT mode FROM reflection_modes WHERE endpoint = ? AND base_url = ? AND model = ?",
                 endpoint_key(endpoint))
    return row["mode"] if row and row["mode"] in MODES else None


def modes_to_try(ws: Workspace, endpoint: Endpoint) -> list[str]:
    """The modes in fallback order, starting at the remembered one (or the default first mode)."""
    first = remembered_mode(ws, endpoint) or ("json_object_schema" if endpoint.is_local else "json_schema")
    return list(MODES[MODES.index(first):])


def remember_mode(ws: Workspace, endpoint: Endpoint, mode: str, note: str | None = None) -> None:
    """Record that `mode` worked for this endpoint (the next reflection starts with it); same mode: no change."""
    name, base_url, model = endpoint_key(endpoint)
    with ws.transaction():
        ws.conn.execute(
            "INSERT INTO reflection_modes (endpoint, base_url, model, mode, note, updated_at) VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (endpoint, base_url, model) DO UPDATE SET mode = excluded.mode, note = excluded.note,"
            " updated_at = excluded.updated_at WHERE reflection_modes.mode != excluded.mode",
            (name, base_url, model, mode, note, now()),
        )
