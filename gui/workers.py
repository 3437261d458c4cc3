"""The one worker mechanism: a QRunnable on the global thread pool reporting through signals.

A job is a plain function `fn(job: Job, *args)`; it runs off the GUI thread, may call
`job.progress(obj)` / `job.chunk(text)`, and should stop soon after `job.cancel` is set.
Jobs that need the workspace open their own connection (`open_workspace(path)`) —
sqlite connections are not shared between threads.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from .errors import format_exception

log = logging.getLogger("lessonlab.gui.workers")


class JobSignals(QObject):
    """Signals of one job; they live on the GUI thread so slots run there."""

    progress = Signal(object)
    chunk = Signal(str)
    finished = Signal(object)      # the function's return value
    failed = Signal(object, str)   # the exception, its traceback


class Job(QRunnable):
    """One piece of slow work; use `start_job` rather than building these directly."""

    def __init__(self, name: str, fn: Callable[..., Any], *args, **kwargs):
        super().__init__()
        self.setAutoDelete(False)  # the registry below owns it until it has reported
        self.name = name
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.cancel = threading.Event()
        self.signals = JobSignals()
        self.done = threading.Event()

    def progress(self, value: Any) -> None:
        """Report progress (any object) to the GUI thread."""
        self.signals.progress.emit(value)

    def chunk(self, text: str) -> None:
        """Report a piece of streamed text to the GUI thread."""
        self.signals.chunk.emit(text)

    def run(self) -> None:  # runs on a pool thread
        try:
            result = self.fn(self, *self.args, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the one error path
            log.debug("job %s failed", self.name, exc_info=True)
            self.signals.failed.emit(exc, format_exception(exc))
        else:
            self.signals.finished.emit(result)
        finally:
            self.done.set()


_active: set[Job] = set()


def start_job(
    name: str,
    fn: Callable[..., Any],
    *args,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException, str], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
    on_chunk: Callable[[str], None] | None = None,
    **kwargs,
) -> Job:
    """Run fn(job, *args, **kwargs) on the thread pool; callbacks run on the GUI thread."""
    job = Job(name, fn, *args, **kwargs)
    if on_progress:
        job.signals.progress.connect(on_progress)
    if on_chunk:
        job.signals.chunk.connect(on_chunk)
    if on_done:
        job.signals.finished.connect(on_done)
    if on_error:
        job.signals.failed.connect(on_error)
    job.signals.finished.connect(lambda _r, j=job: _active.discard(j))
    job.signals.failed.connect(lambda _e, _t, j=job: _active.discard(j))
    _active.add(job)
    QThreadPool.globalInstance().start(job)
    return job


def active_jobs() -> list[Job]:
    """Jobs started and not yet reported back."""
    return list(_active)


def cancel_all_and_wait(timeout_ms: int = 15000) -> bool:
    """Ask every job to stop and wait for the pool (at quit); True if all stopped in time."""
    for job in list(_active):
        job.cancel.set()
    return QThreadPool.globalInstance().waitForDone(timeout_ms)
