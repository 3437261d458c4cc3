"""The one worker mechanism: a QRunnable on the global thread pool reporting through signals.

A job is a plain function `fn(job: Job, *args)`; it runs off the GUI thread, may call
`job.progress(obj)` / `job.chunk(text)`, and should stop soon after `job.cancel` is set.
Jobs that need the workspace open their own connection (`open_workspace(path)`) —
sqlite connections are not shared between threads.

A job belongs to an `owner` widget. When the owner goes away (a page rebuilt for another
workspace), `abandon_jobs(owner)` cancels its jobs and whatever they report later is dropped,
so no callback ever reaches a deleted widget.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal
from PySide6.QtWidgets import QWidget

from . import errors

log = logging.getLogger("lessonlab.gui.workers")


class JobSignals(QObject):
    """Signals of one job; they live on the GUI thread so slots run there."""

    progress = Signal(object)
    chunk = Signal(str)
    finished = Signal(object)      # the function's return value
    failed = Signal(object, str)   # the exception, its traceback


class Job(QRunnable):
    """One piece of slow work; use `start_job` rather than building these directly."""

    def __init__(self, name: str, fn: Callable[..., Any], *args, owner: QObject | None = None, **kwargs):
        super().__init__()
        self.setAutoDelete(False)  # the registry below owns it until it has reported
        self.name = name
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.owner = owner
        self.cancel = threading.Event()
        self.abandoned = False     # set on the GUI thread: drop every later report
        self.signals = JobSignals()

    def progress(self, value: Any) -> None:
        """Report progress (any object) to the GUI thread."""
        self.signals.progress.emit(value)

    def chunk(self, text: str) -> None:
        """Report a piece of streamed text to the GUI thread."""
        self.signals.chunk.emit(text)

    def reports_wanted(self) -> bool:
        """Whether callbacks may still run: not abandoned and the owner still exists."""
        return not self.abandoned and (self.owner is None or shiboken6.isValid(self.owner))

    def run(self) -> None:  # runs on a pool thread
        try:
            result = self.fn(self, *self.args, **self.kwargs)
        except BaseException as exc:  # noqa: BLE001 - every failure goes to the one error path
            log.debug("job %s failed", self.name, exc_info=True)
            self.signals.failed.emit(exc, errors.format_exception(exc))
        else:
            self.signals.finished.emit(result)


_active: set[Job] = set()


def _guarded(job: Job, callback: Callable[..., None]) -> Callable[..., None]:
    def call(*args) -> None:
        if job.reports_wanted():
            callback(*args)
    return call


def _report_failure(job: Job, on_error, error_title: str, exc: BaseException, details: str) -> None:
    if not job.reports_wanted():
        # Nobody is left to show it to, but a failure is never silent.
        log.warning("%s (abandoned) failed: %s", job.name, exc)
    elif on_error is not None:
        on_error(exc, details)
    else:
        parent = job.owner if isinstance(job.owner, QWidget) else None
        errors.show_exception(parent, error_title, exc, details)


def start_job(
    name: str,
    fn: Callable[..., Any],
    *args,
    owner: QObject | None = None,
    on_done: Callable[[Any], None] | None = None,
    on_error: Callable[[BaseException, str], None] | None = None,
    error_title: str | None = None,
    on_progress: Callable[[Any], None] | None = None,
    on_chunk: Callable[[str], None] | None = None,
    **kwargs,
) -> Job:
    """Run fn(job, *args, **kwargs) on the thread pool; callbacks run on the GUI thread while owner lives.

    A failure goes to on_error when given, else to the error dialog titled error_title.
    """
    job = Job(name, fn, *args, owner=owner, **kwargs)
    if on_progress:
        job.signals.progress.connect(_guarded(job, on_progress))
    if on_chunk:
        job.signals.chunk.connect(_guarded(job, on_chunk))
    if on_done:
        job.signals.finished.connect(_guarded(job, on_done))
    title = error_title or f"{name[:1].upper()}{name[1:]} failed"
    job.signals.failed.connect(lambda exc, details: _report_failure(job, on_error, title, exc, details))
    job.signals.finished.connect(lambda _r, j=job: _active.discard(j))
    job.signals.failed.connect(lambda _e, _t, j=job: _active.discard(j))
    _active.add(job)
    QThreadPool.globalInstance().start(job)
    return job


def active_jobs() -> list[Job]:
    """Jobs started and not yet reported back."""
    return list(_active)


def _owned_by(obj: QObject | None, owner: QObject) -> bool:
    while obj is not None and shiboken6.isValid(obj):
        if obj is owner:
            return True
        obj = obj.parent()
    return False


def jobs_of(owner: QObject) -> list[Job]:
    """Jobs of owner (or of its children) not yet reported back."""
    return [job for job in list(_active) if _owned_by(job.owner, owner)]


def abandon_jobs(owner: QObject) -> int:
    """Cancel the jobs of owner (or of its children) and drop what they report from now on; return how many."""
    jobs = jobs_of(owner)
    for job in jobs:
        job.abandoned = True
        job.cancel.set()
    return len(jobs)


def cancel_all_and_wait(timeout_ms: int = 15000) -> bool:
    """Ask every job to stop and wait for the pool (at quit); True if all stopped in time."""
    for job in list(_active):
        job.cancel.set()
    return QThreadPool.globalInstance().waitForDone(timeout_ms)
