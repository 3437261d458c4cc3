"""Three things seen under Xvfb: the reflection title while a reply streams, New run's suite, the lift axis."""
from __future__ import annotations

import json

from tests.helpers.lesson_runs import lesson_aware_server, seed_lesson_history
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from tests.helpers.tasks import answer_for, numeric_tasks, seed_run

from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui.impact_page import ImpactPage
from lessonlab.gui.reflection_panel import ReflectionPanel
from lessonlab.gui.runs_page import RunsPage

REPLY = json.dumps({"analysis": "The model drops the Answer line.", "operations": [
    {"op": "add", "text": "End with 'Answer: <n>'.", "rationale": "format", "evidence": []}]})


class StartedModel:
    """Stands in for the embedded model's controller: 'starts' by handing out the scripted server's URL."""

    def __init__(self, url: str):
        self.url = url

    def ensure_running(self) -> str:
        return self.url


def test_the_reflection_title_stops_saying_starting_once_the_reply_streams(tmp_path, make_suite, qtbot):
    def script(request, n):
        if request.get("stream"):
            return Reply(stream_chunks=[REPLY[i:i + 20] for i in range(0, len(REPLY), 20)])
        return Reply(body=completion(f"Answer: {answer_for(request)}"))

    path = tmp_path / "ws.db"
    with ScriptedServer(script) as server:
        run_id = seed_run(path, make_suite(numeric_tasks(2)), server)
        panel = ReflectionPanel(path, StartedModel(server.base_url))
        qtbot.addWidget(panel)
        titles_while_streaming = []
        panel.output.textChanged.connect(
            lambda: panel.output.toPlainText() and titles_while_streaming.append(panel.title.text()))
        panel.start("local", run_id=run_id)
        qtbot.waitUntil(lambda: panel.job is None, timeout=15000)
    assert titles_while_streaming, "the reply never streamed"
    assert all("Starting the embedded model" not in t for t in titles_while_streaming), titles_while_streaming
    assert titles_while_streaming[0] == f"Reflecting on run {run_id} with local…"
    assert "new proposal(s) waiting in Review" in panel.title.text()


def test_new_run_offers_the_suite_last_run(tmp_path, make_suite, scripted, qtbot, page_context):
    path = tmp_path / "ws.db"
    suite = make_suite(numeric_tasks(2), name="sums")
    seed_run(path, suite, scripted)
    page = RunsPage(page_context(path))
    qtbot.addWidget(page)
    page.open_new_run_dialog()
    dialog = page.findChild(object, "newRunDialog")
    assert dialog.suite.currentText() == str(suite.resolve())      # not the first built-in (arithmetic)
    dialog.reject()
    # a suite chosen in the dialog is remembered for the next one, even before its run is stored
    page.remember_suite("strawberry")
    page.open_new_run_dialog()
    assert page.findChildren(object, "newRunDialog")[-1].suite.currentText() == "strawberry"


def test_new_run_on_a_fresh_workspace_offers_the_welcome_suite(tmp_path, qtbot, page_context):
    page = RunsPage(page_context(tmp_path / "ws.db"))
    qtbot.addWidget(page)
    page.open_new_run_dialog()
    assert page.findChild(object, "newRunDialog").suite.currentText() == "strawberry"


def test_the_lift_chart_axis_has_no_si_prefix(tmp_path, make_suite, qtbot, page_context):
    path = tmp_path / "ws.db"
    with lesson_aware_server() as server:
        seed_lesson_history(path, make_suite(numeric_tasks(3)), server)
    page = ImpactPage(page_context(path))
    qtbot.addWidget(page)
    page.resize(1200, 800)
    page.show()
    with qtbot.waitSignal(page.loaded, timeout=10000):
        page.page_shown()
    page.lift.set_lessons(page.lift.lessons[:1])    # one lesson: its row spans -0.5..0.5, where pyqtgraph says x0.001
    page.lift.resize(600, 300)
    qtbot.wait(50)
    for side in ("left", "bottom"):
        axis = page.lift.plot_item.getAxis(side)
        assert "x0.001" not in axis.labelString() and "×" not in axis.labelString(), axis.labelString()
        assert axis.autoSIPrefixScale == 1.0
    assert page.lift.plot_item.getAxis("left").labelText == "lesson"
