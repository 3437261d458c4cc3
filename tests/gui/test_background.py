"""Background work: failures reach the one error dialog, a run's reflection covers the whole run,
and a workspace switch drops what an old page's jobs report later."""
from __future__ import annotations

import json
import logging

import shiboken6
from PySide6.QtCore import QObject
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from tests.helpers.tasks import answer_for, numeric_tasks, scripted_endpoint, seed_run

from lessonlab.core import reflection
from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui import errors, workers
from lessonlab.gui.compare_page import ComparePage

REFLECTION_REPLY = json.dumps({
    "analysis": "Most answers are right.",
    "operations": [{"op": "add", "text": "End with a line 'Answer: <number>'.", "rationale": "format",
                    "evidence": []}],
})


def reflecting_script(delay: float = 0.0):
    """Right answers for tasks; a streamed JSON reflection (after `delay` seconds) for reflections."""
    def script(request, n):
        if request.get("stream"):
            return Reply(delay=delay, stream_chunks=[REFLECTION_REPLY[i:i + 30]
                                                     for i in range(0, len(REFLECTION_REPLY), 30)])
        return Reply(body=completion(f"Answer: {answer_for(request)}"))
    return script


def record_dialogs(monkeypatch) -> list[tuple]:
    calls = []
    monkeypatch.setattr(errors, "show_error", lambda parent, title, message, details="": calls.append(
        (parent, title, message, details)))
    return calls


def test_a_failed_job_goes_to_the_error_dialog_by_default(monkeypatch, seeded, qtbot, page_context):
    calls = record_dialogs(monkeypatch)
    page = ComparePage(page_context(seeded[0]))
    qtbot.addWidget(page)
    page.show_task("no-such-task")
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=5000)
    parent, title, message, details = calls[0]
    assert parent is page and title == "Cannot load the task's rollouts"
    assert "no-such-task" in message and "Traceback" in details

    def broken(job):
        raise ValueError("the disk is on fire")

    workers.start_job("export lessons", broken)
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=5000)
    assert calls[1][1:3] == ("Export lessons failed", "the disk is on fire")


def test_a_caller_with_its_own_failure_handler_gets_the_failure_instead(monkeypatch, qtbot):
    calls = record_dialogs(monkeypatch)
    handled = []

    def broken(job):
        raise ValueError("nope")

    workers.start_job("x", broken, on_error=lambda exc, details: handled.append(str(exc)))
    qtbot.waitUntil(lambda: handled == ["nope"], timeout=5000)
    assert calls == []


def test_an_abandoned_job_reports_nothing_but_its_failure_is_logged(monkeypatch, qtbot, caplog):
    calls = record_dialogs(monkeypatch)
    owner = QObject()  # stands for a page that is going away
    done = []

    def waits_then_fails(job):
        job.cancel.wait(5)
        raise RuntimeError("stopped late")

    job = workers.start_job("slow", waits_then_fails, owner=owner, on_done=done.append)
    assert workers.abandon_jobs(owner) == 1 and job.cancel.is_set()
    with caplog.at_level(logging.WARNING, logger="lessonlab.gui.workers"):
        qtbot.waitUntil(lambda: job not in workers.active_jobs(), timeout=5000)
    assert calls == [] and done == []
    assert "slow (abandoned) failed: stopped late" in caplog.text


def test_reflect_on_this_run_covers_rollouts_beyond_the_loaded_page(tmp_path, make_suite, window_factory, qtbot):
    path = tmp_path / "big.db"
    with ScriptedServer(reflecting_script()) as server:
        run_id = seed_run(path, make_suite(numeric_tasks(105)), server, samples=2)  # 210 rollouts
        scripted_endpoint(server)
        window = window_factory(path)
        runs = window.page("runs")
        assert runs.selected_run_id() == run_id
        assert runs.rollouts_model.rowCount() == 200 and runs.rollouts_model.canFetchMore()
        runs.reflect_button.click()
        assert window.current_page_name() == "Compare"
        panel = window.page("compare").reflection
        assert f"run {run_id}" in panel.title.text()
        qtbot.waitUntil(lambda: panel.job is None, timeout=30000)
    assert panel.last_result.status == "ok", panel.title.text()
    ws = open_workspace(path)
    try:
        detail = reflection.reflection_detail(ws, panel.last_result.reflection_id)
    finally:
        ws.close()
    assert len(detail["rollouts"]) == 210  # every rollout of the run was considered, not the 200 loaded


def test_switching_workspace_while_a_reflection_streams(tmp_path, make_suite, window_factory, qtbot, monkeypatch):
    calls = record_dialogs(monkeypatch)
    path = tmp_path / "ws.db"
    with ScriptedServer(reflecting_script(delay=1.5)) as server:
        run_id = seed_run(path, make_suite(numeric_tasks(2)), server, samples=2)
        scripted_endpoint(server)
        window = window_factory(path)
        window.reflect_on_run(run_id)
        old_page, old_panel = window.page("compare"), window.page("compare").reflection
        job = old_panel.job
        assert job is not None
        qtbot.waitUntil(lambda: any(r.get("stream") for r in server.requests), timeout=10000)
        assert window.open_workspace(tmp_path / "other.db")
        assert job.cancel.is_set()  # the old page's reflection is stopped, not left to stream
        qtbot.waitUntil(lambda: job not in workers.active_jobs(), timeout=10000)
        qtbot.wait(200)  # let any late report be delivered (it must be dropped)
    assert not shiboken6.isValid(old_panel) and not shiboken6.isValid(old_page)
    assert window.page("compare") is not old_page and window.page("compare").reflection.job is None
    assert calls == []
