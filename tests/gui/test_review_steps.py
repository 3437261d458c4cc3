"""The Review page shows the step a proposal cites (`ro_x#N`): its call and its result."""
from __future__ import annotations

from lessonlab.core.transfer.importer import import_file
from lessonlab.gui.pages import PageContext
from lessonlab.gui.review_page import ReviewPage
from tests.helpers.agent_jsonl import right_and_wrong, write_jsonl
from tests.helpers.review import ReviewServer, reflect_with


def test_review_shows_the_cited_step(workspace, tmp_path, qtbot):
    run_id = import_file(workspace, write_jsonl(tmp_path / "agent.jsonl", right_and_wrong())).run_id
    right, wrong = [r["id"] for r in workspace.query(
        "SELECT id FROM rollouts WHERE run_id = ? ORDER BY sample_index", (run_id,))]
    with ReviewServer() as server:
        reflect_with(workspace, server, {"analysis": "The wrong attempt passed y=3 to add.", "operations": [
            {"op": "add", "text": "Pass the numbers from the question to the tool exactly as written.",
             "rationale": "step 1 added the wrong number", "evidence": [f"{wrong}#1", right]},
            {"op": "add", "text": "Check the tool result against the question before answering.",
             "rationale": "no step named", "evidence": [wrong]},
        ]}, run_id=run_id)
    page = ReviewPage(PageContext(workspace))
    qtbot.addWidget(page)
    page.resize(1200, 760)
    page.show()
    cited, plain = page.pending_ids()
    assert page.current_item()["id"] == cited
    assert page.cited_steps.isVisible()
    assert page.cited_steps.toPlainText() == f"{wrong}#1 — step 1 of {wrong}\n→ add(x=1, y=3)\n← add: 4"
    assert "1 step(s) shown below" in page.evidence_caption.text()
    assert not page.grab().isNull()
    page.select_next()
    assert page.current_item()["id"] == plain
    assert not page.cited_steps.isVisible() and "step(s)" not in page.evidence_caption.text()
