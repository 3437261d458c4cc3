"""SIGTERM (or Ctrl-C) during `lessonlab export`: the process ends at once, non-zero, and leaves no file."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from lessonlab.core.storage.workspace import open_workspace
from lessonlab.core.transfer import import_file

# The export is slowed (a pause per rollout) so that the signal surely lands in the middle of it.
SLOW_EXPORT = """
import sys, time
from lessonlab.core.transfer import selection
original = selection.Selection.rows
def slow_rows(self, **kwargs):
    for row in original(self, **kwargs):
        time.sleep(0.05)
        yield row
selection.Selection.rows = slow_rows
from lessonlab.cli.root import main
sys.argv = ["lessonlab", *sys.argv[1:]]
main()
"""


@pytest.mark.parametrize("kind, signal_number", [("rollouts", signal.SIGTERM), ("sft", signal.SIGTERM),
                                                  ("dpo", signal.SIGTERM), ("rollouts", signal.SIGINT)])
def test_a_signal_stops_an_export_at_once_and_removes_the_partial_file(tmp_path, kind, signal_number):
    source = tmp_path / "chat.jsonl"
    source.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i % 10}"},
                                                       {"role": "assistant", "content": f"a{i}"}],
                                          "reward": float(i % 2), "task_id": f"t{i % 10}"}) + "\n"
                              for i in range(400)), encoding="utf-8")
    ws_path = tmp_path / "ws.db"
    ws = open_workspace(ws_path)
    run_id = import_file(ws, source).run_id
    ws.close()
    folder = tmp_path / "out"
    folder.mkdir()
    proc = subprocess.Popen([sys.executable, "-c", SLOW_EXPORT, "export", kind, "--run", run_id,
                             "--out", str(folder / "export.jsonl"), "--workspace", str(ws_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not any(folder.iterdir()) and time.monotonic() < deadline:  # the temporary file: writing has begun
        time.sleep(0.02)
    time.sleep(0.3)
    sent = time.monotonic()
    proc.send_signal(signal_number)
    _, err = proc.communicate(timeout=30)
    # Seen between rows, so it takes well under a second; the bound is loose for a loaded test machine but
    # far below the 17 s an export used to take to notice.
    assert time.monotonic() - sent < 5.0
    assert proc.returncode != 0 and "Traceback" not in err, err
    assert list(folder.iterdir()) == []
