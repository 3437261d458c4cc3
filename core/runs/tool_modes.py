"""Which tool-call protocol an endpoint accepts, remembered in the workspace (`tool_modes`).

`native` sends OpenAI `tools` and reads `tool_calls`; `hermes` puts the schemas in the system prompt and
reads `<tool_call>` blocks from the text (see `hermes`). An endpoint is keyed as reflection reply modes
are (`models.endpoint_modes.endpoint_key`). Without a record a run starts with `native`, except on the embedded
model: llama-cpp-python accepts `tools` there but hands them to SmolLM2's chat template, which drops them,
so the model would never see a schema; it starts with `hermes`.
"""
from __future__ import annotations

import logging
import sqlite3

from lessonlab.core.models.endpoint_modes import remember, remembered
from lessonlab.core.settings import Endpoint
from lessonlab.core.storage.workspace import Workspace

log = logging.getLogger("lessonlab.runner")

TOOL_MODES = ("native", "hermes")


def remembered_tool_mode(ws: Workspace, endpoint: Endpoint) -> str | None:
    """The tool mode that last worked for this endpoint, if any."""
    return remembered(ws, "tool_modes", endpoint, TOOL_MODES)


def remember_tool_mode(ws: Workspace, endpoint: Endpoint, mode: str, note: str | None = None) -> None:
    """Record that `mode` worked for this endpoint; a workspace that refuses the write only loses the hint."""
    try:
        remember(ws, "tool_modes", endpoint, mode, note)
    except sqlite3.Error as exc:
        log.warning("could not remember tool mode %s for endpoint %s: %s", mode, endpoint.name, exc)


class ToolModeMemo:
    """The tool mode of one run's endpoint: read once, switched at most once when `tools` is rejected."""

    def __init__(self, ws: Workspace, endpoint: Endpoint):
        self.ws, self.endpoint = ws, endpoint
        self._recorded = remembered_tool_mode(ws, endpoint)
        self.mode = self._recorded or ("hermes" if endpoint.is_local else "native")
        self._note: str | None = None

    def rejected_native(self, why: str) -> None:
        """The endpoint refused `tools`: every later call of this run uses Hermes."""
        self.mode = "hermes"
        self._note = why

    def worked(self, mode: str) -> None:
        """A call in `mode` was answered: remember it for the endpoint (written once per change)."""
        if self._recorded == mode:
            return
        self._recorded = mode
        remember_tool_mode(self.ws, self.endpoint, mode, self._note if mode == "hermes" else None)
