"""A reflection reply is a stranger's text too: at most the schema's operations are stored, texts that break
the lesson rules are stored as invalid, and a long `proposals` listing comes a page at a time."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from lessonlab.cli.root import cli
from lessonlab.core.reflection.schema import MAX_OPERATIONS
from lessonlab.core.storage.workspace import open_workspace
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from tests.helpers.tasks import numeric_tasks


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def reflecting(tmp_path):
    """A workspace with one run, and a scripted model whose reflection reply the test sets."""
    state = {"reply": ""}

    def reply(request: dict, n: int) -> Reply:
        if "operations" in request["messages"][-1]["content"]:
            return (Reply(stream_chunks=[state["reply"]]) if request.get("stream")
                    else Reply(body=completion(state["reply"])))
        return Reply(body=completion("Answer: 1"))

    suite = tmp_path / "mini.jsonl"
    suite.write_text("".join(json.dumps(t) + "\n" for t in numeric_tasks(2)))
    ws = tmp_path / "ws.db"
    with ScriptedServer(reply) as server:
        assert invoke("endpoints", "add", "s", "--base-url", server.base_url, "--model", "m").exit_code == 0
        assert invoke("run", "--suite", suite, "--endpoint", "s", "-w", ws).exit_code == 0
        workspace = open_workspace(ws)
        run_id = workspace.one("SELECT id FROM runs")["id"]
        workspace.close()

        def reflect(text: str):
            state["reply"] = text
            return invoke("reflect", "--run", run_id, "--endpoint", "s", "-w", ws)

        yield ws, reflect


def add(text: str) -> dict:
    return {"op": "add", "text": text, "rationale": "seen in the rollouts"}


def statuses(ws) -> list[tuple[str, str | None]]:
    workspace = open_workspace(ws)
    try:
        return [(row["status"], row["invalid_reason"]) for row in
                workspace.query("SELECT status, invalid_reason FROM proposals ORDER BY created_at, rowid")]
    finally:
        workspace.close()


def test_a_reply_with_a_thousand_operations_stores_at_most_the_schemas_limit(reflecting):
    ws, reflect = reflecting
    reply = {"analysis": "a lot", "operations": [add(f"Check the sum number {i} twice before answering.")
                                                 for i in range(1000)]}
    result = reflect(json.dumps(reply))
    assert result.exit_code == 0, result.output
    assert [status for status, _ in statuses(ws)] == ["pending"] * MAX_OPERATIONS
    workspace = open_workspace(ws)
    notes = json.loads(workspace.one("SELECT context_json FROM reflections")["context_json"])["notes"]
    workspace.close()
    assert "the reply held 1,000 operations; the first 4 were kept" in " ".join(notes)


def test_texts_breaking_the_lesson_rules_are_stored_invalid_not_pending(reflecting):
    ws, reflect = reflecting
    reply = {"analysis": "", "operations": [add("Ring the bell \x07 when done."), add("Long. " * 20_000)]}
    assert reflect(json.dumps(reply)).exit_code == 0
    (first, first_reason), (second, second_reason) = statuses(ws)
    assert (first, second) == ("invalid", "invalid")
    assert "control character" in first_reason and "a lesson is at most 2,000" in second_reason
    workspace = open_workspace(ws)
    assert max(len(row["text"]) for row in workspace.query("SELECT text FROM proposals")) <= 2001
    workspace.close()


def test_a_long_proposals_listing_comes_a_page_at_a_time(reflecting):
    ws, reflect = reflecting
    for round_ in range(6):
        reply = {"analysis": "", "operations": [add(f"Round {round_}: check step {i} of the sum twice.")
                                                for i in range(MAX_OPERATIONS)]}
        assert reflect(json.dumps(reply)).exit_code == 0
    listing = invoke("proposals", "-w", ws)
    assert listing.exit_code == 0
    assert listing.stdout.count("[pending]") == 20
    assert "… 4 more (see them with --offset 20, or all with --limit 0)" in listing.stdout
    rest = invoke("proposals", "--offset", "20", "-w", ws)
    assert rest.stdout.count("[pending]") == 4 and "more" not in rest.stdout
    assert invoke("proposals", "--limit", "0", "-w", ws).stdout.count("[pending]") == 24
    assert len(json.loads(invoke("proposals", "--json", "-w", ws).stdout)) == 24
