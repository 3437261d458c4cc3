"""The Compare page: N columns for N rollouts with the right rewards, HTML shown literally, reflection."""
from __future__ import annotations

import json

from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from tests.helpers.tasks import answer_for, numeric_tasks, scripted_endpoint, seed_run

from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui.compare_page import ComparePage
from lessonlab.core.text_diff import word_diff
from lessonlab.gui.highlight import diff_ops_to_html, text_to_html

HOSTILE = '<b>bold</b> <img src="http://127.0.0.1:9/x.png"> <script>alert(1)</script>'


def varied_server():
    """Answers task t0 right on some calls and wrong or with HTML/code on others."""
    replies = ["Answer: {a}", "Answer: {w}", "```python\nprint({a})\n```\nAnswer: {a}",
               HOSTILE + "\nAnswer: {w}", '{{"answer": {a}}}']

    def script(request, n):
        a = answer_for(request)
        return Reply(body=completion(replies[(n - 1) % len(replies)].format(a=a, w=a + 7)))

    return ScriptedServer(script)


def task_id_of(path, name="t0"):
    ws = open_workspace(path)
    try:
        return ws.one("SELECT id FROM tasks WHERE name = ?", (name,))["id"]
    finally:
        ws.close()


def test_compare_shows_one_column_per_rollout_with_rewards(tmp_path, make_suite, qtbot, page_context):
    path = tmp_path / "ws.db"
    with varied_server() as server:
        run_id = seed_run(path, make_suite(numeric_tasks(1)), server, samples=5)
    page = ComparePage(page_context(path))
    qtbot.addWidget(page)
    page.resize(1400, 700)
    page.show()
    page.show_task(task_id_of(path), [run_id])
    qtbot.waitUntil(lambda: len(page.columns) == 5, timeout=5000)
    rewards = sorted(c.reward for c in page.visible_columns())
    assert rewards == [0.0, 0.0, 1.0, 1.0, 1.0]
    for column in page.columns:
        assert column.badge.text() == f"{column.reward:.3f}"
        assert run_id in column.info.text() and "0 lessons" in column.info.text()
    # sort and filter by reward
    page.sort.setCurrentIndex(1)
    assert [c.reward for c in page.visible_columns()] == [1.0, 1.0, 1.0, 0.0, 0.0]
    page.filter.setCurrentIndex(1)
    assert len(page.visible_columns()) == 3 and page.count_label.text() == "3 of 5 rollouts"
    page.filter.setCurrentIndex(0)
    # only what is on screen is highlighted
    rendered = [c for c in page.visible_columns() if c.rendered_with is not None]
    assert rendered and page.visible_columns()[0] in rendered
    # system prompt on demand
    page.show_system.setChecked(True)
    assert not page.columns[0].system_prompt.isHidden()
    assert page.columns[0].system_prompt.toPlainText()


def test_html_in_output_appears_literally_and_code_is_highlighted(tmp_path, make_suite, qtbot, page_context):
    path = tmp_path / "ws.db"
    with varied_server() as server:
        seed_run(path, make_suite(numeric_tasks(1)), server, samples=5)
    page = ComparePage(page_context(path))
    qtbot.addWidget(page)
    page.resize(2400, 700)  # wide enough for every column to render
    page.show()
    page.show_task(task_id_of(path))
    qtbot.waitUntil(lambda: len(page.columns) == 5, timeout=5000)
    qtbot.waitUntil(lambda: all(c.rendered_with is not None for c in page.columns), timeout=5000)
    texts = [c.transcript.toPlainText() for c in page.columns]
    hostile = [t for t in texts if "<img" in t]
    assert len(hostile) == 1
    assert '<b>bold</b> <img src="http://127.0.0.1:9/x.png"> <script>alert(1)</script>' in hostile[0]
    code_html = [c.transcript.toHtml() for c in page.columns if "print(" in c.transcript.toPlainText()]
    assert code_html and "color:" in code_html[0]  # Pygments inline colours
    # the generated HTML escapes everything the model wrote
    assert "<img" not in text_to_html(HOSTILE) and "&lt;img" in text_to_html(HOSTILE)
    assert "<script" not in diff_ops_to_html(word_diff("x", HOSTILE), show_deleted=True)


def test_diff_mode_marks_differences_from_the_first_column(tmp_path, make_suite, qtbot, page_context):
    path = tmp_path / "ws.db"
    with varied_server() as server:
        seed_run(path, make_suite(numeric_tasks(1)), server, samples=2)
    page = ComparePage(page_context(path))
    qtbot.addWidget(page)
    page.resize(1400, 700)
    page.show()
    page.show_task(task_id_of(path))
    qtbot.waitUntil(lambda: len(page.columns) == 2, timeout=5000)
    page.diff.setChecked(True)
    first, second = page.visible_columns()
    assert first.reference_output is None and second.reference_output == first.rollout["output"]
    qtbot.waitUntil(lambda: second.rendered_with not in (None, "plain"), timeout=5000)
    assert "#fff176" in second.transcript.toHtml() or "fff176" in second.transcript.toHtml().lower()


def test_reflect_on_these_streams_and_creates_proposals(tmp_path, make_suite, window_factory, qtbot):
    reply = json.dumps({
        "analysis": "The <b>model</b> drops the Answer line.",
        "operations": [
            {"op": "add", "text": "Always end with a line 'Answer: <number>'.", "rationale": "format errors",
             "evidence": []},
            {"op": "add", "text": "Check the sum twice before answering.", "rationale": "wrong sums",
             "evidence": []},
        ],
    })

    def script(request, n):
        if request.get("stream"):
            return Reply(stream_chunks=[reply[i:i + 40] for i in range(0, len(reply), 40)])
        return Reply(body=completion(f"Answer: {answer_for(request) + (n % 2)}"))

    path = tmp_path / "ws.db"
    with ScriptedServer(script) as server:
        seed_run(path, make_suite(numeric_tasks(2)), server, samples=2)
        scripted_endpoint(server)
        window = window_factory(path)
        window.page("compare").reload_endpoints()
        window.go_to("Compare")
        page = window.page("compare")
        qtbot.waitUntil(lambda: len(page.columns) == 2, timeout=5000)
        page.columns[0].select.setChecked(True)
        assert page.selected_rollout_ids() == [page.columns[0].rollout["id"]]
        page.columns[1].select.setChecked(True)
        page.reflect_button.click()
        qtbot.waitUntil(lambda: page.reflection.job is None, timeout=15000)
    assert not page.reflection.review_button.isHidden(), page.reflection.title.text()
    assert "<b>model</b>" in page.reflection.output.toPlainText()  # streamed, shown as text
    assert "2 new proposal(s) waiting in Review" in page.reflection.title.text()
    ws = open_workspace(path)
    try:
        proposals = ws.query("SELECT text, status FROM proposals WHERE reflection_id = ?",
                             (page.reflection.last_result.reflection_id,))
    finally:
        ws.close()
    assert len(proposals) == 2 and all(p["status"] == "pending" for p in proposals)
    page.reflection.review_button.click()
    assert window.current_page_name() == "Review"
