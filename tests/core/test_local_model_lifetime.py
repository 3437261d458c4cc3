"""The embedded model's server process lives exactly as long as lessonlab (no model needed: a stand-in)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from lessonlab.core.models.local_model import LocalModelServer


STAND_IN_SERVER = """
import http.server, sys
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(b'{"data": []}')
    def log_message(self, *args):
        pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"""


class StandInServer(LocalModelServer):
    """The same lifecycle as the embedded model, with a tiny HTTP server instead of llama.cpp."""

    def command(self, port: int) -> list[str]:
        return [sys.executable, "-c", STAND_IN_SERVER, str(port)]


def test_a_server_started_from_a_worker_thread_outlives_that_thread(tmp_path):
    # PR_SET_PDEATHSIG fires when the forking *thread* ends: a server started from a pool thread
    # used to be SIGTERMed when that thread expired, while the app still showed it running.
    server = StandInServer(log_path=tmp_path / "server.log")
    started: list[str] = []
    worker = threading.Thread(target=lambda: started.append(server.start(timeout=20)))
    worker.start()
    worker.join()
    try:
        assert started and started[0].startswith("http://127.0.0.1:")
        time.sleep(1.5)  # the kernel would have delivered the parent-death signal by now
        assert server.running, "the server died with the thread that started it"
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as resp:
            assert resp.status == 200
    finally:
        server.stop()
    assert not server.running


def test_a_server_dies_with_lessonlab_itself(tmp_path):
    # The parent-death safety is kept: kill -9 the process that started the server, and it goes too.
    script = (
        "import sys, threading, time\n"
        "sys.path[:0] = " + repr(sys.path) + "\n"
        "from tests.core.test_local_model_lifetime import StandInServer\n"
        "from pathlib import Path\n"
        f"server = StandInServer(log_path=Path({str(tmp_path / 'child.log')!r}))\n"
        "t = threading.Thread(target=server.start); t.start(); t.join()\n"
        "print(server.process.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                              cwd=str(Path(__file__).resolve().parents[2]))
    child_pid = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.communicate()  # reads and closes its pipe
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child_pid):
        time.sleep(0.1)
    assert not _alive(child_pid)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
