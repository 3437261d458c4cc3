"""One way to run an operation from the GUI: its error in the one error dialog, one change notice for what it changed.

A user action that writes calls `perform` (a quick write on the GUI thread, on the page's connection) or
`perform_in_background` (slow work on a worker, `fn(job, ...)` opening its own connection). Neither
lets the caller choose what to announce: the notice comes from the result's type (`CHANGED_BY` in
gui/changes.py), so a new operation cannot forget to refresh the pages.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, TypeVar

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QWidget

from .changes import Changes, kinds_changed_by, reports_change
from .errors import show_exception
from .workers import Job, start_job

log = logging.getLogger("lessonlab.gui.perform")

Result = TypeVar("Result")


def perform(parent: QWidget | None, changes: Changes, error_title: str, fn: Callable[..., Result], *args,
            **kwargs) -> Result | None:
    """Call fn(*args, **kwargs) now; notify what its result changed and return it, or show its error and return None."""
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - the one error path; the write is a transaction, nothing is half-done
        show_exception(parent, error_title, exc)
        return None
    changes.notify_result(result)
    return result


def perform_in_background(
    owner: QObject,
    changes: Changes,
    name: str,
    fn: Callable[..., Any],
    *args,
    on_done: Callable[[Any], None] | None = None,
    on_failed: Callable[[BaseException], None] | None = None,
    on_progress: Callable[[Any], None] | None = None,
    on_chunk: Callable[[str], None] | None = None,
    error_title: str | None = None,
    **kwargs,
) -> Job:
    """Run fn(job, *args, **kwargs) on a worker; notify what it changed (progress reports included), then call back.

    fn must be marked with `operations.changes_result`. On failure the error dialog shows it (after on_failed
    has put the caller's widgets back) and the kinds fn could have changed are notified, since the
    work done before the failure (a run's finished rollouts) is kept.
    """
    result_type = getattr(fn, "result_type", None)
    if result_type is None:
        raise TypeError(f"{getattr(fn, '__name__', fn)} does not say what it changes: mark it with @changes_result")
    kinds = kinds_changed_by(result_type)
    title = error_title or f"{name[:1].upper()}{name[1:]} failed"
    parent = owner if isinstance(owner, QWidget) else owner.parent()  # a QObject owner: its window
    if not isinstance(parent, QWidget):
        parent = None

    def progress(message: Any) -> None:
        if reports_change(message):
            changes.notify_result(message)
        if on_progress is not None:
            on_progress(message)

    def done(result: Any) -> None:
        changes.notify_result(result)
        if on_done is not None:
            on_done(result)

    def failed(exc: BaseException, details: str) -> None:
        changes.notify(*kinds)
        if on_failed is not None:
            on_failed(exc)
        show_exception(parent, title, exc, details)

    return start_job(name, fn, *args, owner=owner, on_done=done, on_error=failed, on_progress=progress,
                     on_chunk=on_chunk, **kwargs)


def start_with_request(parent: QWidget | None, error_title: str, make_request: Callable[[], Any],
                       start: Callable[[Any], Result]) -> Result | None:
    """Build a request (from a dialog's fields, the settings…) and start it; a request that cannot be built is shown as an error."""
    try:
        request = make_request()
    except Exception as exc:  # noqa: BLE001 - the one error path
        show_exception(parent, error_title, exc)
        return None
    return start(request)
