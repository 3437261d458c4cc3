"""Compare draws multi-step rollouts as steps: calls, folded results, placeholders, lined up, parting marked."""
from __future__ import annotations

import json

from PySide6.QtCore import QPoint

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


def open_task(qtbot, path, task_id, n_columns) -> ComparePage:
    page = ComparePage(path)
    qtbot.addWidget(page)
    page.resize(1300, 900)
    page.show()
    page.show_task(task_id)
    qtbot.waitUntil(lambda: len(page.columns) == n_columns
                    and all(c.trajectory_view is None or c.trajectory_view.is_complete() for c in page.columns),
                    timeout=5000)
    return page


def y_in_strip(page, widget) -> int:
    return widget.mapTo(page.strip, QPoint(0, 0)).y()


def test_calls_show_as_name_and_highlighted_arguments(tmp_path, qtbot):
    path, task_id = two_agents(tmp_path)
    page = open_task(qtbot, path, task_id, 2)
    column = next(c for c in page.columns if c.reward == 1.0)
    view = column.trajectory_view
    assert view is not None and column.transcript.isHidden()
    assert [b.step.title for b in view.steps] == ["Step 1", "Step 2", "Step 3 · final reply"]
    call = view.steps[1].findChild(object, "toolCall")
    assert "→ count" in call.text() and call.toolTip() == 'count(letter="r", letters="strawberry")'
    assert '">"letters"</span>' in call.text() and '">"strawberry"</span>' in call.text()   # Pygments coloured the JSON
    assert "I will spell the word first" in view.steps[0].findChild(object, "stepText").text()


def test_the_first_step_where_two_trajectories_part_is_marked_in_both(tmp_path, qtbot):
    path, task_id = two_agents(tmp_path)
    page = open_task(qtbot, path, task_id, 2)
    first, second = page.visible_columns()
    for column, other in ((first, second), (second, first)):
        marked = column.trajectory_view.parting_block()
        assert marked is not None and marked.step.index == 2
        assert f"parts from {other.rollout['id']} here" in marked.header.text()
        assert [b.parting for b in column.trajectory_view.steps] == [False, True, False]
    # the same filter shown the other way round keeps the mark on step 2
    page.sort.setCurrentIndex(2)
    assert second.trajectory_view.parting_block().step.index == 2


def test_steps_line_up_across_columns(tmp_path, qtbot):
    path, task_id = two_agents(tmp_path)
    page = open_task(qtbot, path, task_id, 2)
    first, second = page.visible_columns()

    def lined_up() -> bool:
        return all(y_in_strip(page, a) == y_in_strip(page, b)
                   for a, b in zip(first.trajectory_view.steps, second.trajectory_view.steps))

    qtbot.waitUntil(lined_up, timeout=3000)
    # the second column's step 1 says much more, so the first column's step 1 was made as tall
    assert first.trajectory_view.steps[0].height() == second.trajectory_view.steps[0].height()
    # opening a result in one column pushes the next step down in both
    before = y_in_strip(page, second.trajectory_view.steps[1])
    first.trajectory_view.steps[0].results[0].set_expanded(True)
    qtbot.waitUntil(lambda: lined_up() and y_in_strip(page, second.trajectory_view.steps[1]) > before, timeout=3000)


def test_results_are_folded_with_their_size_and_rendered_only_when_opened(tmp_path, qtbot):
    path, task_id = two_agents(tmp_path)
    page = open_task(qtbot, path, task_id, 2)
    block = page.columns[0].trajectory_view.steps[0].results[0]
    assert block.button.text() == "spell result · 19 bytes"
    assert not block.is_expanded() and block.body is None        # nothing laid out while folded
    block.button.click()
    assert block.is_expanded() and block.body is not None and block.body.isVisible()
    assert block.body.toPlainText() == SPELLED
    block.button.click()
    assert not block.is_expanded() and block.body.isHidden()


def test_a_large_result_opens_as_plain_text(tmp_path, qtbot):
    big = "\n".join(f"line {i} " + "x" * 60 for i in range(2000))   # ~140 KB: past the highlighting limit
    sample = agent_sample("reads", calls=[("read", {"doc": "big.txt"}, big)], answer="done")
    path = tmp_path / "ws.db"
    ws = open_workspace(path)
    import_files(ws, [agent_eval(tmp_path / "big.eval", [sample])])
    task_id = ws.one("SELECT id FROM tasks WHERE name = 'reads'")["id"]
    ws.close()
    page = open_task(qtbot, path, task_id, 1)
    block = page.columns[0].trajectory_view.steps[0].results[0]
    assert block.button.text() == f"read result · {len(big.encode()) / 1000:.1f} KB"
    block.set_expanded(True)
    assert type(block.body).__name__ == "QPlainTextEdit" and block.body.toPlainText() == big


def set_messages(path, rollout_id, messages) -> None:
    """Store other messages for a rollout (as a proxy or an agent loop may write list content)."""
    ws = open_workspace(path)
    with ws.conn:
        ws.conn.execute("UPDATE rollout_texts SET messages_json = ? WHERE rollout_id = ?", (json.dumps(messages), rollout_id))
    ws.close()


def test_an_image_part_shows_as_a_placeholder_naming_type_and_size(tmp_path, qtbot):
    path, task_id = two_agents(tmp_path)
    ws = open_workspace(path)
    rows = ws.query("SELECT r.id, x.messages_json FROM rollouts r JOIN rollout_texts x ON x.rollout_id = r.id")
    ws.close()
    for row in rows:
        messages = json.loads(row["messages_json"])
        messages[1]["content"] = [{"type": "text", "text": "How many r's are in this word?"}, IMAGE]
        messages[5]["content"] = [IMAGE]     # a tool that returns an image
        set_messages(path, row["id"], messages)
    page = open_task(qtbot, path, task_id, 2)
    size = f"{len(json.dumps(IMAGE).encode()):,} bytes"
    view = page.columns[0].trajectory_view
    prompt = view.prompt.text()
    assert "How many r&#x27;s are in this word?" in prompt or "How many r's are in this word?" in prompt
    assert f"[image_url, {size}]" in prompt
    assert "{&#x27;type&#x27;" not in prompt and "{'type'" not in prompt and "base64" not in prompt
    result = view.steps[1].results[0]
    assert result.result.content == f"[image_url, {size}]"


def test_a_one_call_rollout_with_an_image_shows_a_placeholder_not_a_repr(tmp_path, qtbot):
    path = tmp_path / "ws.db"
    ws = open_workspace(path)
    import_files(ws, [DATA_DIR / "log_formats.json"])
    row = ws.one("SELECT r.id, r.task_id, x.messages_json FROM rollouts r JOIN rollout_texts x ON x.rollout_id = r.id")
    ws.close()
    messages = json.loads(row["messages_json"])
    messages[-1]["content"] = [{"type": "text", "text": "Look:"}, IMAGE]
    set_messages(path, row["id"], messages)
    page = open_task(qtbot, path, row["task_id"], 1)
    column = page.columns[0]
    assert column.trajectory is None and column.trajectory_view is None   # one call: a transcript, as before
    html = column.transcript.toHtml()
    assert f"[image_url, {len(json.dumps(IMAGE).encode()):,} bytes]" in html and "base64" not in html and "image_url&#x27;" not in html


def test_the_real_agent_log_shows_its_calls(tmp_path, qtbot):
    path = tmp_path / "ws.db"
    ws = open_workspace(path)
    import_files(ws, [DATA_DIR / "agent_tools.eval"])
    task_id = ws.one("SELECT id FROM tasks WHERE name = 'capital-peru'")["id"]
    ws.close()
    page = open_task(qtbot, path, task_id, 1)
    view = page.columns[0].trajectory_view
    calls = [label.toolTip() for label in view.findChildren(object, "toolCall")]
    assert calls == ['search(query="capital of Peru")', 'read(doc="peru.txt", lines=[1, 3])']
    assert view.parting_block() is None    # one column: nothing to part from
