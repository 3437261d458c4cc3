"""The app quits cleanly on SIGTERM and Ctrl-C (Qt's event loop alone would never let Python's handlers run)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_window_closes_on_a_signal(tmp_path, signum):
    ws_path = tmp_path / "ws.db"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.Popen([sys.executable, "-m", "lessonlab", "gui", "--workspace", str(ws_path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not ws_path.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        assert ws_path.exists(), "the window never opened its workspace"
        time.sleep(1.0)   # the event loop is running
        proc.send_signal(signum)
        code = proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        output = proc.stdout.read()
        proc.stdout.close()
    assert code == 0, output
