"""Runs started from the GUI against a scripted endpoint: live progress, rows as they finish, Cancel."""
from __future__ import annotations

import threading

from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from tests.helpers.tasks import answer_for, numeric_tasks, scripted_endpoint

from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui.operations import RunRequest
from lessonlab.gui.runs_page import NewRunDialog


def test_run_fills_table_and_progress_bar(tmp_path, make_suite, scripted, window_factory, qtbot):
    endpoint = scripted_endpoint(scripted)
    window = window_factory(tmp_path / "ws.db")
    page = window.page("runs")
    seen = []
    page.progress_bar.valueChanged.connect(seen.append)
    page.start_run(RunRequest(suite=str(make_suite(numeric_tasks(4))), endpoint=endpoint, samples=2, concurrency=2))
    assert not page.new_button.isEnabled()
    qtbot.waitUntil(lambda: page.job is None, timeout=15000)
    assert page.runs_model.total() == 1
    assert page.runs_model.data(page.runs_model.index(0, 4)) == "8/8"
    assert page.runs_model.data(page.runs_model.index(0, 5)) == "1.000"
    assert page.runs_model.data(page.runs_model.index(0, 7)) == "completed"
    assert page.progress_bar.value() == page.progress_bar.maximum() == 8
    assert seen and seen[-1] == 8
    assert "completed" in page.progress_label.text()
    # the new run is selected and its rollouts are listed
    assert page.rollouts_model.rowCount() == 8
    assert page.new_button.isEnabled()


def test_new_run_dialog_describes_the_request(make_suite, scripted, qtbot):
    scripted_endpoint(scripted)
    dialog = NewRunDialog(suite=str(make_suite(numeric_tasks(3))), endpoint="scripted")
    qtbot.addWidget(dialog)
    dialog.samples.setValue(3)
    dialog.temperature.setValue(0.5)
    request = dialog.request()
    assert request.endpoint.name == "scripted" and request.samples == 3 and request.temperature == 0.5
    assert request.limit == 5 and request.split == "train"
    assert "3 train" in dialog.suite_info.text()


def test_cancel_stops_the_run_and_marks_it_interrupted(tmp_path, make_suite, window_factory, qtbot):
    release = threading.Event()

    def slow(request, n):
        if n > 2:
            release.wait(10)  # later calls hang until the test ends: only Cancel can end the run
        return Reply(body=completion(f"Answer: {answer_for(request)}"))

    with ScriptedServer(slow) as server:
        endpoint = scripted_endpoint(server)
        window = window_factory(tmp_path / "ws.db")
        page = window.page("runs")
        page.start_run(RunRequest(suite=str(make_suite(numeric_tasks(10))), endpoint=endpoint, samples=1,
                                  concurrency=1))
        qtbot.waitUntil(lambda: page.progress_bar.value() >= 2, timeout=10000)
        # the window stays responsive while the run works
        window.go_to("Compare")
        window.go_to("Runs")
        page.cancel_button.click()
        qtbot.waitUntil(lambda: page.job is None, timeout=10000)
        release.set()
    run_id = page.active_run_id
    ws = open_workspace(tmp_path / "ws.db")
    try:
        row = ws.one("SELECT status, n_done FROM runs WHERE id = ?", (run_id,))
    finally:
        ws.close()
    assert row["status"] == "interrupted"
    assert row["n_done"] == 2
    assert "interrupted" in page.progress_label.text()
    assert page.rollouts_model.rowCount() == 2


def test_a_broken_suite_goes_through_the_error_path(tmp_path, scripted, window_factory, qtbot):
    from lessonlab.gui import errors

    endpoint = scripted_endpoint(scripted)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "prompt": "x", "verifier": {"kind": "numeric", "answer": 1}}\nnot json\n')
    window = window_factory(tmp_path / "ws.db")
    before = len(errors.shown_errors)
    window.page("runs").start_run(RunRequest(suite=str(bad), endpoint=endpoint))
    qtbot.waitUntil(lambda: window.page("runs").job is None, timeout=10000)
    assert len(errors.shown_errors) == before + 1
    title, message = errors.shown_errors[-1]
    assert title == "The run failed" and "bad.jsonl:2" in message
