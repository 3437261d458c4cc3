"""The embedded model server as the app sees it: started in the background, state shown, stopped at quit."""
from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, Signal

from lessonlab.core.local_model import LocalModelServer

log = logging.getLogger("lessonlab.gui.local_server")


class LocalModelController(QObject):
    """Owns one LocalModelServer; `ensure_running()` may be called from any worker thread."""

    state_changed = Signal(str, str)   # state (off|starting|running|failed), detail

    def __init__(self, parent: QObject | None = None, server: LocalModelServer | None = None):
        super().__init__(parent)
        self.server = server or LocalModelServer()
        self._lock = threading.Lock()
        self.state = "off"
        self.detail = ""

    def _set(self, state: str, detail: str = "") -> None:
        self.state, self.detail = state, detail
        self.state_changed.emit(state, detail)  # queued to the GUI thread when emitted from a worker

    def ensure_running(self) -> str:
        """Start the server if needed (blocking; call from a worker) and return its base URL."""
        with self._lock:
            if self.server.running:
                return self.server.base_url
            self._set("starting", "loading SmolLM2-135M-Instruct…")
            try:
                url = self.server.start()
            except BaseException as exc:
                self._set("failed", str(exc))
                raise
            self._set("running", url)
            return url

    def stop(self) -> None:
        """Stop the server if it runs (at quit)."""
        with self._lock:
            if self.server.running:
                self.server.stop()
            if self.state != "off":
                self._set("off")
