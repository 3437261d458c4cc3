"""`lessonlab run` on a built-in agent suite: every rollout is an agent loop, stored step by step."""
from __future__ import annotations

import json
import re

from click.testing import CliRunner

from tests.helpers.scripted_server import Reply, ScriptedServer, completion, rejects_tools
from lessonlab.cli.root import cli
from lessonlab.core.storage.workspace import open_workspace


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def hermes_counter(request: dict, n: int) -> Reply:
    """Spells the word with the Hermes protocol, then counts the letter in what the tool returned."""
    question = next(m["content"] for m in request["messages"] if m["role"] == "user")
    letter = re.search(r'letter "(.)"', question).group(1)
    last = request["messages"][-1]["content"]
    if "<tool_response>" not in last:
        word = re.search(r'word "([^"]+)"', question).group(1)
        call = json.dumps({"name": "spell", "arguments": {"word": word}})
        return Reply(body=completion(f"<tool_call>{call}</tool_call>"))
    letters = json.loads(re.search(r"<tool_response>\n(.*)\n</tool_response>", last).group(1))["content"]
    return Reply(body=completion(f"Answer: {letters.split(chr(10)).count(letter)}"))


def test_run_on_strawberry_tools_through_hermes_stores_every_step(tmp_path):
    ws_path = tmp_path / "ws.db"
    with ScriptedServer(rejects_tools(hermes_counter)) as server:
        assert invoke("endpoints", "add", "scripted", "--base-url", server.base_url,
                      "--model", "scripted-model").exit_code == 0
        result = invoke("run", "--suite", "strawberry-tools", "--limit", 3, "--endpoint", "scripted",
                        "--workspace", ws_path, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["done"], summary["errors"], summary["mean_reward"]) == (3, 0, 1.0)
    ws = open_workspace(ws_path)
    try:
        rows = ws.query("SELECT n_steps, tool_mode FROM rollouts")
        assert rows == [{"n_steps": 2, "tool_mode": "hermes"}] * 3
        assert ws.one("SELECT mode FROM tool_modes")["mode"] == "hermes"
    finally:
        ws.close()
