"""`lessonlab show ROLLOUT` on a multi-step rollout: every step, each call as `→ add(x=1, y=2)` with its result."""
from __future__ import annotations

import json

from click.testing import CliRunner

from lessonlab.cli.root import cli
from lessonlab.core.storage.workspace import open_workspace
from tests.helpers.agent_logs import agent_eval, agent_sample, long_result
from tests.helpers.inspect_logs import DATA_DIR


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def imported_rollouts(tmp_path, log) -> tuple:
    ws = tmp_path / "ws.db"
    assert invoke("import", log, "--workspace", ws).exit_code == 0
    db = open_workspace(ws)
    try:
        ids = {row["name"]: row["id"] for row in db.query(
            "SELECT t.name, r.id FROM rollouts r JOIN tasks t ON t.id = r.task_id")}
    finally:
        db.close()
    return ws, ids


def test_show_prints_the_tool_call_and_its_result_not_an_empty_assistant_block(tmp_path):
    ws, ids = imported_rollouts(tmp_path, agent_eval(tmp_path / "agent.eval"))
    result = invoke("show", ids["adds"], "--workspace", ws)
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "--- assistant ---\n\n" not in text          # the old empty block
    assert "→ add(x=1, y=2)" in text
    call_at = text.index("→ add(x=1, y=2)")
    assert "← 1 byte\n    3\n" in text[call_at:]           # the result, under its call, with its size
    assert text.index("--- step 1 ---") < text.index("I will add.") < call_at
    assert "--- step 2 (final reply) ---\nThe sum is 3." in text
    assert "--- user ---\nWhat is 1 + 2? Use the tools." in text


def test_show_json_holds_the_steps(tmp_path):
    ws, ids = imported_rollouts(tmp_path, agent_eval(tmp_path / "agent.eval"))
    detail = json.loads(invoke("show", ids["adds"], "--workspace", ws, "--json").stdout)
    steps = detail["steps"]
    assert [s["index"] for s in steps] == [1, 2] and [s["final"] for s in steps] == [False, True]
    assert steps[0]["tool_calls"][0]["name"] == "add"
    assert json.loads(steps[0]["tool_calls"][0]["arguments"]) == {"x": 1, "y": 2}
    assert steps[0]["results"][0]["content"] == "3"
    assert steps[1]["content"] == "The sum is 3."


def test_a_long_result_is_cut_with_its_size_and_full_prints_all(tmp_path):
    big = long_result()
    sample = agent_sample("reads", calls=[("read", {"doc": "big.txt"}, big)], answer="done")
    ws, ids = imported_rollouts(tmp_path, agent_eval(tmp_path / "agent.eval", [sample]))
    cut = invoke("show", ids["reads"], "--workspace", ws).stdout
    assert '"line": 3,' in cut and '"line": 399,' not in cut
    assert f"[… {len(big.encode()) / 1000:.1f} KB in all; --full shows everything]" in cut
    full = invoke("show", ids["reads"], "--workspace", ws, "--full").stdout
    assert '"line": 399,' in full and "--full shows everything" not in full
    assert full.count('"line": ') == 400


def test_per_step_latency_and_tokens_are_shown_when_known(tmp_path):
    ws, ids = imported_rollouts(tmp_path, agent_eval(tmp_path / "agent.eval"))
    db = open_workspace(ws)
    figures = [{"latency_ms": 1234.0, "prompt_tokens": 40, "completion_tokens": 12},
               {"latency_ms": 80.0, "prompt_tokens": 55, "completion_tokens": 6}]
    with db.conn:
        db.conn.execute("UPDATE rollout_texts SET steps_json = ? WHERE rollout_id = ?", (json.dumps(figures), ids["adds"]))
    db.close()
    text = invoke("show", ids["adds"], "--workspace", ws).stdout
    assert "--- step 1  [1,234 ms · 40+12 tokens] ---" in text
    assert "--- step 2 (final reply)  [80 ms · 55+6 tokens] ---" in text


def test_the_real_agent_log_shows_every_call(tmp_path):
    ws, ids = imported_rollouts(tmp_path, DATA_DIR / "agent_tools.eval")
    text = invoke("show", ids["capital-peru"], "--workspace", ws).stdout
    assert '→ search(query="capital of Peru")' in text and '→ read(doc="peru.txt", lines=[1, 3])' in text
    assert "Its capital and largest city is Lima." in text


def test_a_one_call_rollout_reads_as_before(tmp_path):
    ws, ids = imported_rollouts(tmp_path, DATA_DIR / "log_formats.json")
    text = invoke("show", next(iter(ids.values())), "--workspace", ws).stdout
    assert "--- assistant (output) ---" in text and "--- step" not in text
