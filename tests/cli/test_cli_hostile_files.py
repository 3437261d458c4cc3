"""Files that are not files: a FIFO and /dev/zero are refused at once with one line (never read forever)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest


def run_cli(*args: str) -> subprocess.CompletedProcess:
    # A separate process with a time limit: the failure being tested is blocking forever.
    return subprocess.run([sys.executable, "-m", "lessonlab", *args], capture_output=True, text=True, timeout=60)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_is_refused_not_waited_on(tmp_path):
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    result = run_cli("import", str(fifo), "-w", str(tmp_path / "ws.db"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == f"Error: {fifo}: is not a regular file (a pipe, a device or a socket); save it to a file first"


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_dev_zero_as_jsonl_is_refused(tmp_path):
    result = run_cli("import", "/dev/zero", "--format", "openai-jsonl", "-w", str(tmp_path / "ws.db"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == ["Error: /dev/zero: is not a regular file (a pipe, a device or a socket); save it to a file first"]
