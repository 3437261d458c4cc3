"""File → Import…: files import in the background with progress; a broken file shows one error; Cancel stops cleanly."""
from __future__ import annotations

import json

from PySide6.QtWidgets import QPushButton

from lessonlab.core.transfer import ImportOptions
from lessonlab.gui import errors
from tests.helpers.inspect_logs import DATA_DIR, workspace_content

POPULARITY = DATA_DIR / "2025-02-11T15-18-04-05-00_popularity_mj7khqpMM4GBCfVQozKgzB.eval"


def test_file_import_adds_runs_and_selects_the_first(tmp_path, qtbot, window_factory):
    window = window_factory(tmp_path / "ws.db")
    action = next(a for a in window.menuBar().actions()[0].menu().actions() if a.text() == "&Import…")
    assert action.shortcut().toString() == "Ctrl+I"
    progress = []
    with qtbot.waitSignal(window.importer.finished, timeout=10000) as finished:
        job = window.importer.start(window.ws.path, [POPULARITY, DATA_DIR / "log_streaming.eval"])
        job.signals.progress.connect(progress.append)
    report = finished.args[0]
    assert [f.new for f in report.files] == [10, 4] and not report.cancelled
    assert progress and progress[-1][0] == progress[-1][1]
    assert window.page("runs").runs_model.rowCount() == 2
    assert window.page("runs").selected_run_id() == report.files[0].run_id
    assert window.statusBar().currentMessage().startswith("Imported 14 rollout(s) into 2 run(s) from 2 file(s)")
    assert window.importer.job is None and window.importer.dialog is None


def test_a_broken_file_shows_one_error_and_writes_nothing(tmp_path, qtbot, window_factory):
    window = window_factory(tmp_path / "ws.db")
    before = workspace_content(window.ws)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"messages": [{"role": "assistant", "content": "ok"}]}\n{"messages": \n')
    shown = len(errors.shown_errors)
    window.importer.start(window.ws.path, [broken])
    qtbot.waitUntil(lambda: window.importer.job is None, timeout=10000)
    assert errors.shown_errors[shown:] == [("Import failed", f"{broken}: line 2: invalid JSON: Expecting value (column 13)")]
    assert workspace_content(window.ws) == before


def test_cancel_stops_the_import_and_keeps_nothing_of_the_file(tmp_path, qtbot, window_factory):
    window = window_factory(tmp_path / "ws.db")
    before = workspace_content(window.ws)
    big = tmp_path / "big.jsonl"
    line = {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "reward": 1}
    big.write_text("".join(json.dumps({**line, "task_id": f"t{i}"}) + "\n" for i in range(20000)))
    with qtbot.waitSignal(window.importer.finished, timeout=20000) as finished:
        window.importer.start(window.ws.path, [big], ImportOptions(batch_size=100))
        window.importer.dialog.findChild(QPushButton).click()  # the dialog's Cancel button
    assert finished.args[0].cancelled and finished.args[0].files == []
    assert "cancelled" in window.statusBar().currentMessage()
    assert workspace_content(window.ws) == before
