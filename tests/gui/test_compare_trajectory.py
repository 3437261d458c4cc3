"""Compare draws multi-step rollouts as steps: calls, folded results, placeholders, lined up, parting marked."""
from __future__ import annotations

import json

from PySide6.QtCore import QPoint, QUrl

from lessonlab.core.storage.workspace import open_workspace
from lessonlab.core.transfer import import_files
from lessonlab.gui.compare_page import ComparePage
from tests.helpers.agent_logs import agent_eval, agent_sample
from tests.helpers.inspect_logs import DATA_DIR

SPELLED = "s\nt\nr\na\nw\nb\ne\nr\nr\ny"
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "iVBORw0KGgo" * 300}}


def two_agents(tmp_path) -> tuple:
    """One task, two samples: both spell the word, then count with other arguments (they part at step 2)."""
    right = agent_sample("count-r", calls=[("spell", {"word": "strawberry"}, SPELLED),
                                           ("count", {"letter": "r", "letters": "strawberry"}, "3")],
                         answer="Answer: 3", text="I will spell the word first, then count the r's.")
    wrong = agent_sample("count-r", calls=[("spell", {"word": "strawberry"}, SPELLED),
                                           ("count", {"letter": "r", "letters": "strawbery"}, "2")],
                         answer="Answer: 2", text="Let me spell it. " * 12, score="I")
    wrong["epoch"] = 2
    for message in wrong["messages"]:
        message["id"] += "-2"
    path = tmp_path / "ws.db"
    ws = open_workspace(path)
    try:
        import_files(ws, [agent_eval(tmp_path / "agents.eval", [right, wrong])])
        task_id = ws.one("SELECT id FROM tasks WHERE name = 'count-r'")["id"]
    finally:
        ws.close()
    return path, task_id


def open_task(qtbot, context, task_id, n_columns) -> ComparePage:
    page = ComparePage(context)
    qtbot.addWidget(page)
    page.resize(1300, 900)
    page.show()
    page.show_task(task_id)
    qtbot.waitUntil(lambda: len(page.columns) == n_columns
                    and all(c.trajectory_view is None or c.trajectory_view.is_complete() for c in page.columns),
                    timeout=5000)
    return page


def step_tops_in_strip(page, column) -> list[float]:
    view = column.trajectory_view
    return [view.mapTo(page.strip, QPoint(0, 0)).y() + top for top in view.step_tops()]


def test_calls_show_as_name_and_highlighted_arguments(tmp_path, qtbot, page_context):
    path, task_id = two_agents(tmp_path)
    page = open_task(qtbot, page_context(path), task_id, 2)
    column = next(c for c in page.columns if c.reward == 1.0)
    view = column.trajectory_view
    assert view is not None and column.transcript.isHidden()
    assert [view.header_text(i).strip() for i in (1, 2, 3)] == [
        "Step 1", "Step 2\xa0 ◆ parts from " + next(c for c in page.columns if c is not column).rollout["id"] + " here",
        "Step 3 · final reply"]
    text = view.toPlainText()
    assert "I will spell the word first" in text
    assert '→ count\n{\n  "letter": "r",\n  "letters": "strawberry"\n}' in text   # name, then pretty JSON
    html = view.toHtml()
    assert "font-weight:700;\">&quot;letters&quot;" in html or "&quot;letters&quot;</span>" in html
    assert "#4070a0" in html.lower()       # Pygments coloured the string values


def test_the_first_step_where_two_trajectories_part_is_marked_in_both(tmp_path, qtbot, page_context):
    path, task_id = two_agents(tmp_path)
    page = open_task(qtbot, page_context(path), task_id, 2)
    first, second = page.visible_columns()
    for column, other in ((first, second), (second, first)):
        view = column.trajectory_view
        assert view.parting_at == 2
        assert f"◆ parts from {other.rollout['id']} here" in view.header_text(2)
        assert "◆" not in view.header_text(1) and "◆" not in view.header_text(3)
    # shown the other way round, the mark stays on step 2
    page.sort.setCurrentIndex(2)
    assert second.trajectory_view.parting_at == 2 and "◆" in second.trajectory_view.header_text(2)


def test_steps_line_up_across_columns(tmp_path, qtbot, page_context):
    path, task_id = two_agents(tmp_path)
    page = open_task(qtbot, page_context(path), task_id, 2)
    first, second = page.visible_columns()

    def lined_up() -> bool:
        return step_tops_in_strip(page, first) == step_tops_in_strip(page, second)

    qtbot.waitUntil(lined_up, timeout=3000)
    # the second column's step 1 says much more, so the first column's step 2 was pushed down to meet it
    assert first.trajectory_view.step_heights()[1] < second.trajectory_view.step_heights()[1]
    # opening a result in one column pushes the next step down in both
    before = step_tops_in_strip(page, second)[1]
    view = first.trajectory_view
    view.set_expanded(view.result_keys()[0], True)
    qtbot.waitUntil(lambda: lined_up() and step_tops_in_strip(page, second)[1] > before, timeout=3000)


def test_results_are_folded_with_their_size_and_rendered_only_when_opened(tmp_path, qtbot, page_context):
    path, task_id = two_agents(tmp_path)
    page = open_task(qtbot, page_context(path), task_id, 2)
    view = page.columns[0].trajectory_view
    key = view.result_keys()[0]
    assert view.result_of(key).title == "spell result · 19 bytes"
    assert "▸ spell result · 19 bytes" in view.toPlainText()
    assert "s\nt\nr\na\nw" not in view.toPlainText()            # folded: the text is not in the document
    height = view.height()
    view._clicked(QUrl(f"result:{key}"))                        # what a click on the line does
    assert view.is_expanded(key) and "▾ spell result · 19 bytes" in view.toPlainText()
    assert "s\nt\nr\na\nw\nb\ne\nr\nr\ny" in view.toPlainText() and view.height() > height
    view._clicked(QUrl(f"result:{key}"))
    assert not view.is_expanded(key) and "s\nt\nr\na\nw" not in view.toPlainText()
    qtbot.waitUntil(lambda: view.height() == height, timeout=2000)   # lined up again as before


def test_a_large_result_opens_as_plain_text(tmp_path, qtbot, page_context):
    big = "\n".join(f"line {i} <b>" + "x" * 60 for i in range(2000))   # ~140 KB: past the highlighting limit
    sample = agent_sample("reads", calls=[("read", {"doc": "big.txt"}, big)], answer="done")
    path = tmp_path / "ws.db"
    ws = open_workspace(path)
    import_files(ws, [agent_eval(tmp_path / "big.eval", [sample])])
    task_id = ws.one("SELECT id FROM tasks WHERE name = 'reads'")["id"]
    ws.close()
    page = open_task(qtbot, page_context(path), task_id, 1)
    view = page.columns[0].trajectory_view
    key = view.result_keys()[0]
    assert view.result_of(key).title == f"read result · {len(big.encode()) / 1000:.1f} KB"
    view.set_expanded(key, True)
    assert "line 1999 <b>" + "x" * 60 in view.toPlainText()


def set_messages(path, rollout_id, messages) -> None:
    """Store other messages for a rollout (as a proxy or an agent loop may write list content)."""
    ws = open_workspace(path)
    with ws.conn:
        ws.conn.execute("UPDATE rollout_texts SET messages_json = ? WHERE rollout_id = ?", (json.dumps(messages), rollout_id))
    ws.close()


def test_an_image_part_shows_as_a_placeholder_naming_type_and_size(tmp_path, qtbot, page_context):
    path, task_id = two_agents(tmp_path)
    ws = open_workspace(path)
    rows = ws.query("SELECT r.id, x.messages_json FROM rollouts r JOIN rollout_texts x ON x.rollout_id = r.id")
    ws.close()
    for row in rows:
        messages = json.loads(row["messages_json"])
        messages[1]["content"] = [{"type": "text", "text": "How many r's are in this word?"}, IMAGE]
        messages[5]["content"] = [IMAGE]     # a tool that returns an image
        set_messages(path, row["id"], messages)
    page = open_task(qtbot, page_context(path), task_id, 2)
    size = f"{len(json.dumps(IMAGE).encode()):,} bytes"
    view = page.columns[0].trajectory_view
    prompt = view.toHtml()
    assert "How many r&#x27;s are in this word?" in prompt or "How many r's are in this word?" in prompt
    assert f"[image_url, {size}]" in prompt
    assert "{&#x27;type&#x27;" not in prompt and "{'type'" not in prompt and "base64" not in prompt
    key = view.result_keys()[1]
    assert view.result_of(key).content == f"[image_url, {size}]"
    view.set_expanded(key, True)
    assert f"[image_url, {size}]" in view.toPlainText() and "base64" not in view.toHtml()


def test_a_one_call_rollout_with_an_image_shows_a_placeholder_not_a_repr(tmp_path, qtbot, page_context):
    path = tmp_path / "ws.db"
    ws = open_workspace(path)
    import_files(ws, [DATA_DIR / "log_formats.json"])
    row = ws.one("SELECT r.id, r.task_id, x.messages_json FROM rollouts r JOIN rollout_texts x ON x.rollout_id = r.id")
    ws.close()
    messages = json.loads(row["messages_json"])
    messages[-1]["content"] = [{"type": "text", "text": "Look:"}, IMAGE]
    set_messages(path, row["id"], messages)
    page = open_task(qtbot, page_context(path), row["task_id"], 1)
    column = page.columns[0]
    assert column.trajectory is None and column.trajectory_view is None   # one call: a transcript, as before
    html = column.transcript.toHtml()
    assert f"[image_url, {len(json.dumps(IMAGE).encode()):,} bytes]" in html and "base64" not in html and "image_url&#x27;" not in html


def test_the_real_agent_log_shows_its_calls(tmp_path, qtbot, page_context):
    path = tmp_path / "ws.db"
    ws = open_workspace(path)
    import_files(ws, [DATA_DIR / "agent_tools.eval"])
    task_id = ws.one("SELECT id FROM tasks WHERE name = 'capital-peru'")["id"]
    ws.close()
    page = open_task(qtbot, page_context(path), task_id, 1)
    view = page.columns[0].trajectory_view
    text = view.toPlainText()
    assert '→ search\n{\n  "query": "capital of Peru"\n}' in text
    assert '→ read\n{\n  "doc": "peru.txt",\n  "lines": [1, 3]\n}' in text   # short lists stay on one line
    assert view.parting_at is None    # one column: nothing to part from


def test_a_long_trajectory_is_built_as_it_comes_into_view(tmp_path, qtbot, page_context):
    calls = [("read", {"page": i}, f"page {i}: " + "text " * 200) for i in range(60)]
    sample = agent_sample("long", calls=calls, answer="done")
    path = tmp_path / "ws.db"
    ws = open_workspace(path)
    import_files(ws, [agent_eval(tmp_path / "long.eval", [sample])])
    task_id = ws.one("SELECT id FROM tasks WHERE name = 'long'")["id"]
    ws.close()
    page = ComparePage(page_context(path))
    qtbot.addWidget(page)
    page.resize(1300, 700)
    page.show()
    page.show_task(task_id)
    qtbot.waitUntil(lambda: bool(page.columns) and page.columns[0].trajectory_view is not None, timeout=5000)
    view = page.columns[0].trajectory_view
    qtbot.wait(100)
    assert 0 < view.built < 61                   # a few screens, not all 61 steps
    bar = page.scroll.verticalScrollBar()

    def scrolled_to_end() -> bool:
        bar.setValue(bar.maximum())
        return view.is_complete()

    qtbot.waitUntil(scrolled_to_end, timeout=10000)
    assert view.header_text(61).strip() == "Step 61 · final reply" and len(view.result_keys()) == 60


def two_long_agents(tmp_path, steps: int = 60, parting: int = 30) -> tuple:
    """One task, two samples of `steps` read calls each; the second reads another page from step `parting` on."""
    def sample(epoch: int) -> dict:
        calls = [("read", {"page": n if epoch == 1 or n < parting else n + 1}, f"page {n} " * 40)
                 for n in range(1, steps + 1)]
        made = agent_sample("long", calls=calls, answer="Answer: 3", score="C" if epoch == 1 else "I")
        made["epoch"] = epoch
        for message in made["messages"]:
            message["id"] += f"-{epoch}"
        return made

    path = tmp_path / "ws.db"
    ws = open_workspace(path)
    try:
        import_files(ws, [agent_eval(tmp_path / "long.eval", [sample(1), sample(2)])])
        task_id = ws.one("SELECT id FROM tasks WHERE name = 'long'")["id"]
    finally:
        ws.close()
    return path, task_id


def test_opening_long_trajectories_appends_steps_in_passes_within_a_budget(tmp_path, qtbot, page_context, monkeypatch):
    from lessonlab.gui import compare_page
    from lessonlab.gui.trajectory_view import FIRST_BATCH

    monkeypatch.setattr(compare_page, "STEP_BUDGET_S", 0.0)   # every pass stops after its first batch
    path, task_id = two_long_agents(tmp_path)
    page = ComparePage(page_context(path))
    qtbot.addWidget(page)
    page.resize(1300, 900)
    page.show()
    seen = {}

    def on_loaded(_n):
        views = [c.trajectory_view for c in page.visible_columns()]
        seen["views"] = [v is not None for v in views]
        seen["built_by_loading"] = [v.built for v in views if v is not None]
        page.render_visible()
        seen["built_by_one_pass"] = [v.built for v in views if v is not None]
        seen["more_pending"] = page._render_timer.isActive()

    page.loaded.connect(on_loaded)
    page.show_task(task_id)
    qtbot.waitUntil(lambda: "views" in seen, timeout=5000)
    assert seen["views"] == [True, True]             # the loading slot builds both columns' views…
    assert seen["built_by_loading"] == [0, 0]        # …but appends no steps: later turns do
    assert sorted(seen["built_by_one_pass"]) == [0, FIRST_BATCH]   # a pass over its budget stops after one batch
    assert seen["more_pending"]                      # and the next pass is already asked for
    # turn by turn, both columns fill the screen and, scrolled down, reach their last step
    bar = page.scroll.verticalScrollBar()

    def complete() -> bool:
        bar.setValue(bar.maximum())
        return all(c.trajectory_view.is_complete() for c in page.visible_columns())

    qtbot.waitUntil(complete, timeout=10000)
    first, second = page.visible_columns()
    assert first.trajectory_view.parting_at == second.trajectory_view.parting_at == 30
    assert "◆" in first.trajectory_view.header_text(30) and "◆" in second.trajectory_view.header_text(30)
    assert "◆" not in second.trajectory_view.header_text(29)
    qtbot.waitUntil(lambda: step_tops_in_strip(page, first) == step_tops_in_strip(page, second), timeout=5000)



def test_the_loading_job_lets_go_of_the_lock_as_it_prepares_steps(monkeypatch):
    from lessonlab.gui import trajectory_display

    sleeps = []
    monkeypatch.setattr(trajectory_display.time, "sleep", sleeps.append)
    assert list(trajectory_display._yielding(iter(range(5)), every_s=0.0)) == [0, 1, 2, 3, 4]
    assert sleeps == [0] * 5                     # due every time: once after each item
    sleeps.clear()
    assert list(trajectory_display._yielding(iter(range(5)), every_s=60.0)) == [0, 1, 2, 3, 4]
    assert sleeps == []                          # not due within a minute: items pass straight through
