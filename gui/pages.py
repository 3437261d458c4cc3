"""What every page gets and what the main window may call on it: `PageContext`, `Navigation`, `Page`.

A page is built from one `PageContext` and talks to the rest of the app only through it: what changed
arrives on `context.changes`, and a request to show something on another page ("compare this task")
goes out on `context.navigation`, which the main window routes. Pages never call each other.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from lessonlab.core.storage.workspace import Workspace

from .changes import Change, Changes
from .workers import abandon_jobs, jobs_of


class Navigation(QObject):
    """Requests to show something elsewhere; the main window connects each one once."""

    go_to = Signal(str)                   # a page name
    compare_task = Signal(str, list)      # task id, run ids
    compare_rollouts = Signal(list)       # rollout ids side by side
    reflect_on_run = Signal(str)          # run id
    show_run = Signal(str)                # run id
    show_lesson = Signal(str)             # lesson id


@dataclass
class PageContext:
    """Everything a page is built from: the open workspace, the embedded model, the change and navigation hubs."""

    workspace: Workspace
    local_controller: object | None = None     # LocalModelController (None: no embedded model here)
    changes: Changes = field(default_factory=Changes)
    navigation: Navigation = field(default_factory=Navigation)

    @property
    def path(self) -> Path:
        """The workspace file (background jobs open their own connection to it)."""
        return self.workspace.path


class Page(QWidget):
    """Base of the app's pages: keeps the context and gives the hooks the main window calls."""

    def __init__(self, context: PageContext, parent: QWidget | None = None):
        super().__init__(parent)
        self.context = context
        self.ws = context.workspace
        self.workspace_path = context.path
        self.local_controller = context.local_controller
        self.changes = context.changes
        self.changes.changed.connect(self.on_changed)

    def page_shown(self) -> None:
        """Called each time the page comes on screen (a page may load what it shows the first time)."""

    def on_changed(self, change: Change) -> None:
        """Called with every change notice; refresh what this page shows of it."""

    def is_loading(self) -> bool:
        """Whether the page is still loading in the background (a screenshot waits for it)."""
        return bool(jobs_of(self))

    def render_visible(self) -> None:
        """Draw what is lazily drawn on scroll (called before a screenshot)."""

    def busy_reason(self) -> str | None:
        """Why the workspace cannot be closed now (e.g. a run in progress), or None."""
        return None

    def close_page(self) -> None:
        """Stop listening and drop this page's background work (its workspace is about to close); once."""
        if getattr(self, "_closed", False):
            return  # the window closes pages when switching workspaces and again when it shuts down
        self._closed = True
        abandon_jobs(self)
        self.changes.changed.disconnect(self.on_changed)
