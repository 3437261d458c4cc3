"""A server that answers 401 with the key it was sent: the key is never stored, printed or exported."""
from __future__ import annotations

import json

from click.testing import CliRunner

from lessonlab.cli.root import cli
from lessonlab.core.models.redaction import redact
from lessonlab.core.storage.workspace import open_workspace
from tests.helpers.scripted_server import Reply, ScriptedServer
from tests.helpers.tasks import numeric_tasks

KEY = "sk-live-0123456789abcdefXYZ"


def test_a_401_echoing_the_key_never_stores_prints_or_exports_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_ENDPOINT_KEY", KEY)
    suite = tmp_path / "mini.jsonl"
    suite.write_text("".join(json.dumps(t) + "\n" for t in numeric_tasks(2)))
    ws = tmp_path / "ws.db"
    body = {"error": {"message": f"Invalid API key: Bearer {KEY}", "type": "invalid_request_error"}}
    runner = CliRunner()
    with ScriptedServer(lambda request, n: Reply(status=401, body=body)) as server:
        added = runner.invoke(cli, ["endpoints", "add", "s", "--base-url", server.base_url, "--model", "m",
                                    "--key-env", "TEST_ENDPOINT_KEY"])
        assert added.exit_code == 0, added.output
        run = runner.invoke(cli, ["run", "--suite", str(suite), "--endpoint", "s", "-w", str(ws)])
    assert run.exit_code == 1, run.output  # every rollout failed
    workspace = open_workspace(ws)
    errors = [row["error"] for row in workspace.query("SELECT error FROM rollouts")]
    run_id = workspace.one("SELECT id FROM runs")["id"]
    workspace.close()
    assert errors and all("HTTP 401" in error and "Invalid API key: Bearer [redacted]" in error for error in errors)
    shown = runner.invoke(cli, ["show", run_id, "-w", str(ws)])
    exported = runner.invoke(cli, ["export", "rollouts", "--run", run_id, "-w", str(ws)])
    assert "[redacted]" in exported.stdout
    for text in (run.output, shown.output, exported.output, ws.read_bytes().decode("latin-1")):
        assert KEY not in text and KEY[3:] not in text


def test_key_shaped_tokens_are_redacted_even_when_the_key_is_unknown():
    assert redact("bad key sk-proj-AbC123xyz789 given") == "bad key [redacted] given"
    assert redact("Authorization: Bearer abc.def-123456") == "Authorization: Bearer [redacted]"
    assert redact("your key is hunter2secret", ("hunter2secret",)) == "your key is [redacted]"
    assert redact("not-needed is fine", ("not-needed",)) == "not-needed is fine"
