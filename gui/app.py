"""Starting the desktop app; the command line (`lessonlab gui`, `lessonlab-gui`) is parsed by click in cli/app.py."""
from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer
from PySide6.QtWidgets import QApplication, QWidget

from .main_window import MainWindow

log = logging.getLogger("lessonlab.gui")


def application() -> QApplication:
    """The QApplication (created once)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("lessonlab")
        app.setOrganizationName("lessonlab")
    return app


def wait_for(condition, timeout: float = 10.0) -> bool:
    """Process events until condition() is true or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)
    return True


def save_screenshot(window: MainWindow, path: Path, page: str | None = None) -> Path:
    """Render the window on a page (waiting for its background loading) and save it as an image."""
    window.resize(1280, 800)  # the same size every time, whatever geometry was saved
    window.show()
    window.go_to(page or "runs")
    shown = window.stack.currentWidget()
    wait_for(lambda: not shown.is_loading(), 10)  # what the page loads in the background
    wait_for(lambda: False, 0.3)  # let layouts settle and lazy rendering run
    shown.render_visible()
    wait_for(lambda: False, 0.1)
    image = window.grab()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not image.save(str(path)):
        raise OSError(f"could not save the screenshot to {path}")
    return path


def run_app(workspace: str | Path | None = None, screenshot: str | Path | None = None, page: str | None = None) -> int:
    """Open the main window (or render a screenshot and exit); return the exit code."""
    app = application()
    window = MainWindow(workspace)
    if screenshot:
        try:
            saved = save_screenshot(window, Path(screenshot), page)
        finally:
            window.close()
        print(f"saved {saved}")
        return 0
    if page:
        window.go_to(page)
    window.show()
    quit_on_signals(window)
    return app.exec()


def quit_on_signals(window: QWidget) -> QTimer:
    """Close the window cleanly on Ctrl-C and SIGTERM (runs interrupted, the embedded model stopped).

    Python runs signal handlers only when it gets control, which Qt's event loop never gives it on
    its own: a short timer hands control back a few times a second.
    """
    def close(signum, _frame) -> None:
        log.info("signal %s: closing the window", signum)
        window.close()
        QApplication.instance().quit()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, close)
    timer = QTimer(window)
    timer.timeout.connect(lambda: None)
    timer.start(250)
    return timer
