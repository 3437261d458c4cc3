"""Real Inspect logs, imported, open in the Compare page side by side with their rewards and explanations."""
from __future__ import annotations

from lessonlab.core.transfer import import_files
from lessonlab.core.storage.workspace import open_workspace
from lessonlab.gui.compare_page import ComparePage
from tests.helpers.inspect_logs import DATA_DIR

LOGS = ["2025-02-11T15-18-04-05-00_popularity_mj7khqpMM4GBCfVQozKgzB.eval", "log_streaming.eval", "log_formats.json"]


def test_three_models_answering_the_same_inspect_sample_appear_side_by_side(tmp_path, qtbot, page_context):
    path = tmp_path / "ws.db"
    ws = open_workspace(path)
    import_files(ws, [DATA_DIR / name for name in LOGS])
    task_ids = {row["id"] for row in ws.query("SELECT id FROM tasks WHERE suite = 'popularity' AND name = '1'")}
    ws.close()
    assert len(task_ids) == 1  # the same sample of the same Inspect task is one task, whichever log it came from
    page = ComparePage(page_context(path))
    qtbot.addWidget(page)
    page.resize(1600, 700)
    page.show()
    page.show_task(task_ids.pop())
    qtbot.waitUntil(lambda: len(page.columns) == 4, timeout=5000)
    by_model = sorted((c.rollout["model"], c.reward, c.feedback.text()) for c in page.columns)
    assert by_model == [
        ("Meta-Llama-3-405B-Instruct", 0.0, 'Verifier: match: "I" (answer: No)'),
        ("Meta-Llama-3-405B-Instruct", 1.0, "Verifier: Yes."),
        ("gpt-4o-mini-2024-07-18", 1.0, "Verifier: Yes"),
        ("llama3.1", 0.0, 'Verifier: match: "I" (answer: No)'),
    ]
    assert all(c.badge.text() == f"{c.reward:.3f}" for c in page.columns)
