"""A workspace file with forty bytes overwritten: damage is found, reported in one line, never exported in
part, never written to; `lessonlab check` says what to do. Exports that cannot be written say so in one line."""
from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from lessonlab.cli.root import cli
from lessonlab.core.transfer import selection

ROLLOUTS = 10


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result, code: int, fragment: str) -> None:
    assert result.exit_code == code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


@pytest.fixture
def clean(tmp_path):
    """A workspace with one imported run of ten rollouts, checkpointed so that the file holds everything."""
    chats = tmp_path / "chats.jsonl"
    chats.write_text("".join(json.dumps({
        "messages": [{"role": "user", "content": f"question {i} " + "x" * 300},
                     {"role": "assistant", "content": f"answer {i} " + "y" * 300}],
        "task_id": f"t{i}", "reward": 1}) + "\n" for i in range(ROLLOUTS)))
    path = tmp_path / "clean.db"
    assert invoke("import", chats, "-w", path).exit_code == 0
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    run_id = conn.execute("SELECT id FROM runs").fetchone()[0]
    rollouts = [row[0] for row in conn.execute("SELECT id FROM rollouts")]
    leaf = conn.execute("SELECT pageno FROM dbstat WHERE name = 'rollout_texts' AND pagetype = 'leaf'"
                        " ORDER BY pageno DESC").fetchone()[0]
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.close()
    return {"path": path, "run": run_id, "rollouts": rollouts, "leaf_offset": (leaf - 1) * page_size + 8}


def damaged_copy(clean, tmp_path, offset: int):
    path = tmp_path / "ws.db"
    shutil.copy(clean["path"], path)
    with open(path, "r+b") as handle:
        handle.seek(offset)
        handle.write(b"\xff" * 40)
    return path


def test_text_that_no_longer_decodes_is_damage_in_one_line_and_stops_writes(clean, tmp_path):
    offset = clean["path"].read_bytes().index(b"answer 5 ")
    ws = damaged_copy(clean, tmp_path, offset)
    failed = 0
    for ident in [clean["run"], *clean["rollouts"]]:
        result = invoke("show", ident, "-w", ws)
        if result.exit_code:
            one_line_error(result, 2, "is damaged (Could not decode to UTF-8 column 'output')")
            failed += 1
    assert failed == 1  # the one rollout whose reply was overwritten
    out = tmp_path / "out.jsonl"
    one_line_error(invoke("export", "rollouts", "--run", clean["run"], "--out", out, "-w", ws), 2, "is damaged")
    assert not out.exists()
    one_line_error(invoke("lessons", "add", "Be careful.", "-w", ws), 2, f"run `lessonlab check -w {ws}`")
    check = invoke("check", "-w", ws)
    assert check.exit_code == 1 and "rollout_texts.output of row 6 is not valid UTF-8" in check.stdout, check.output
    assert "sqlite3" in check.stdout and ".recover" in check.stdout


def test_a_damaged_page_is_found_before_any_write_or_export_and_check_clears_after_restore(clean, tmp_path):
    ws = damaged_copy(clean, tmp_path, clean["leaf_offset"])
    one_line_error(invoke("lessons", "add", "Be careful.", "-w", ws), 2, "is damaged")
    one_line_error(invoke("import", tmp_path / "chats.jsonl", "-w", ws), 2, "is damaged")
    for kind in ("rollouts", "sft"):
        out = tmp_path / f"{kind}.jsonl"
        one_line_error(invoke("export", kind, "--run", clean["run"], "--out", out, "-w", ws), 2, "is damaged")
        assert not out.exists()
    result = invoke("show", clean["run"], "-w", ws)
    assert "Traceback" not in result.output and result.exit_code in (0, 2)
    check = invoke("check", "-w", ws)
    assert check.exit_code == 1 and ("On tree page" in check.stdout or "malformed" in check.stdout), check.output
    shutil.copy(clean["path"], ws)  # restored from a backup
    assert invoke("check", "-w", ws).exit_code == 0
    assert invoke("lessons", "add", "Be careful.", "-w", ws).exit_code == 0


def test_check_on_a_sound_workspace_says_ok(clean):
    result = invoke("check", "-w", clean["path"], "--json")
    assert result.exit_code == 0 and json.loads(result.stdout) == {
        "path": str(clean["path"]), "ok": True, "problems": [], "advice": None}


def test_an_export_into_a_folder_that_cannot_be_written_is_one_line(clean, tmp_path, monkeypatch):
    def refused(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(selection.tempfile, "mkstemp", refused)  # as a read-only folder does (even for root)
    out = tmp_path / "out.jsonl"
    result = invoke("export", "rollouts", "--run", clean["run"], "--out", out, "-w", clean["path"])
    one_line_error(result, 1, f"cannot write {out}: Permission denied; nothing was written")


def test_an_export_onto_a_full_disk_is_one_line_and_leaves_nothing(clean, tmp_path, monkeypatch):
    real_fdopen = os.fdopen

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle

        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(selection.os, "fdopen", lambda fd, *a, **k: FullDisk(real_fdopen(fd, *a, **k)))
    out = tmp_path / "out.jsonl"
    result = invoke("export", "rollouts", "--run", clean["run"], "--out", out, "-w", clean["path"])
    one_line_error(result, 1, f"cannot write {out}: the disk is full; nothing was written")
    assert list(tmp_path.glob(".out.jsonl.*")) == [] and not out.exists()


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_a_replaced_export_file_keeps_the_umask(clean, tmp_path, umask, mode):
    out = tmp_path / "out.jsonl"
    out.write_text("old\n")
    previous = os.umask(umask)
    try:
        result = invoke("export", "rollouts", "--run", clean["run"], "--out", out, "-w", clean["path"])
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == mode
    assert len(out.read_text().splitlines()) == ROLLOUTS
