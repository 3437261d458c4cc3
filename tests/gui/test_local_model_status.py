"""The embedded model outlives the pool thread that started it, and the status bar tells the truth about it."""
from __future__ import annotations

import os
import signal
import threading
import urllib.request

import pytest
from PySide6.QtCore import QThreadPool
from tests.core.test_local_model_lifetime import StandInServer

from lessonlab.gui.local_server import LocalModelController
from lessonlab.gui.main_window import MainWindow
from lessonlab.gui.workers import start_job


@pytest.fixture
def short_pool_expiry():
    """Pool threads expire after 0.3 s idle instead of 30 s, so 'long after the job' takes seconds."""
    pool = QThreadPool.globalInstance()
    before = pool.expiryTimeout()
    pool.setExpiryTimeout(300)
    yield
    pool.setExpiryTimeout(before)


def start_model(controller, qtbot) -> int:
    """Start the server from a pool thread, as a run does; return that thread's native id."""
    done: list[tuple[int, str]] = []

    def job_fn(job):
        return threading.get_native_id(), controller.ensure_running()

    start_job("start the model", job_fn, on_done=done.append)
    qtbot.waitUntil(lambda: bool(done), timeout=20000)
    return done[0][0]


def test_the_model_outlives_its_pool_thread_and_a_dead_server_shows_as_failed(tmp_path, qtbot, short_pool_expiry):
    server = StandInServer(log_path=tmp_path / "server.log")
    controller = LocalModelController(server=server, check_interval_ms=100)
    window = MainWindow(tmp_path / "ws.db", local_controller=controller)
    qtbot.addWidget(window)
    try:
        thread_id = start_model(controller, qtbot)
        qtbot.waitUntil(lambda: window.local_label.text() == "embedded model: running", timeout=5000)
        # The pool thread that forked the server expires (with Qt's default expiry: 30 s after the
        # job), which used to deliver PR_SET_PDEATHSIG to the server.
        qtbot.waitUntil(lambda: not os.path.exists(f"/proc/self/task/{thread_id}"), timeout=10000)
        qtbot.wait(1500)
        assert server.running, "the model server died with the pool thread that started it"
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as reply:
            assert reply.status == 200
        assert controller.state == "running" and window.local_label.text() == "embedded model: running"

        # The server dies behind the app's back: the status bar says so within a few checks.
        first_pid = server.process.pid
        os.kill(first_pid, signal.SIGKILL)
        qtbot.waitUntil(lambda: controller.state == "failed", timeout=5000)
        assert window.local_label.text() == "embedded model: failed"
        assert "killed by signal 9" in window.local_label.toolTip()

        # The next job that needs the model starts it again.
        start_model(controller, qtbot)
        qtbot.waitUntil(lambda: window.local_label.text() == "embedded model: running", timeout=5000)
        assert server.running and server.process.pid != first_pid
    finally:
        window.shutdown()
    assert not server.running and controller.state == "off"  # shutdown left nothing behind
