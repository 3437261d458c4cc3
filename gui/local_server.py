"""The embedded model server as the app sees it: started in the background, state shown, stopped at quit.

The state shown is the truth: a timer looks at the server process every few seconds, and if it
has exited while the app believed it running, the state becomes "failed" (the next job that needs
the model starts it again).
"""
from __future__ import annotations

import logging
import threading

from PySide6.QtCore import QObject, QTimer, Signal

from lessonlab.core.models.local_model import LocalModelServer

log = logging.getLogger("lessonlab.gui.local_server")

CHECK_INTERVAL_MS = 3000


class LocalModelController(QObject):
    """Owns one LocalModelServer; `ensure_running()` may be called from any worker thread."""

    state_changed = Signal(str, str)   # state (off|starting|running|failed), detail

    def __init__(self, parent: QObject | None = None, server: LocalModelServer | None = None,
                 check_interval_ms: int = CHECK_INTERVAL_MS):
        super().__init__(parent)
        self.server = server or LocalModelServer()
        self._lock = threading.Lock()
        self.state = "off"
        self.detail = ""
        # Lives on the GUI thread (the controller is built there); checks only while "running".
        self._watch = QTimer(self)
        self._watch.setInterval(check_interval_ms)
        self._watch.timeout.connect(self.check_alive)
        self.state_changed.connect(self._follow_state)

    def _set(self, state: str, detail: str = "") -> None:
        self.state, self.detail = state, detail
        self.state_changed.emit(state, detail)  # queued to the GUI thread when emitted from a worker

    def _follow_state(self, state: str, _detail: str) -> None:
        if state == "running":
            self._watch.start()
        else:
            self._watch.stop()

    def check_alive(self) -> bool:
        """Whether the server the app believes running still runs; if it exited, say so (state "failed")."""
        if self.state != "running":
            return False
        if not self._lock.acquire(blocking=False):
            return True  # a job is starting or stopping it right now; look again at the next tick
        try:
            if self.state != "running" or self.server.running:
                return self.state == "running"
            process = self.server.process
            code = process.returncode if process is not None else None
            how = f"exit code {code}" if code is not None and code >= 0 else \
                f"killed by signal {-code}" if code is not None else "stopped"
            log.warning("the embedded model server exited (%s)", how)
            self._set("failed", f"the model server exited ({how}); the next job that needs it starts it again")
            return False
        finally:
            self._lock.release()

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
