"""Which structured-reply mode an endpoint accepts, remembered in the workspace (`reflection_modes`).

An endpoint is keyed as `models.endpoint_modes` says. Without a record the first mode is `json_schema`,
except for the embedded model: llama-cpp-python's server rejects that type (with HTTP 500, a request
validation error), so it starts at `json_object_schema`, which it turns into a grammar.
"""
from __future__ import annotations

from lessonlab.core.models.endpoint_modes import remember, remembered
from lessonlab.core.settings import Endpoint
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.reflection.schema import MODES


def remembered_mode(ws: Workspace, endpoint: Endpoint) -> str | None:
    """The mode that last worked for this endpoint, if any."""
    return remembered(ws, "reflection_modes", endpoint, MODES)


def modes_to_try(ws: Workspace, endpoint: Endpoint) -> list[str]:
    """The modes in fallback order, starting at the remembered one (or the default first mode)."""
    first = remembered_mode(ws, endpoint) or ("json_object_schema" if endpoint.is_local else "json_schema")
    return list(MODES[MODES.index(first):])


def remember_mode(ws: Workspace, endpoint: Endpoint, mode: str, note: str | None = None) -> None:
    """Record that `mode` worked for this endpoint (the next reflection starts with it); same mode: no change."""
    remember(ws, "reflection_modes", endpoint, mode, note)
