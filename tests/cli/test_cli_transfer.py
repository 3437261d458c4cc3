"""`lessonlab import` and `lessonlab export sft|dpo|rollouts|lessons` as a user drives them."""
from __future__ import annotations

import json

from click.testing import CliRunner

from lessonlab.cli.root import cli
from lessonlab.core.storage.workspace import open_workspace
from tests.helpers.inspect_logs import DATA_DIR, newest_eval, workspace_content

POPULARITY = DATA_DIR / "2025-02-11T15-18-04-05-00_popularity_mj7khqpMM4GBCfVQozKgzB.eval"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def content(path):
    ws = open_workspace(path)
    try:
        return workspace_content(ws)
    finally:
        ws.close()


def test_import_a_real_log_then_show_it(tmp_path):
    ws = tmp_path / "ws.db"
    result = invoke("import", POPULARITY, "--workspace", ws)
    assert result.exit_code == 0, result.output
    assert "10 rollout(s) over 10 task(s)" in result.stdout and "mean reward 0.800 (match)" in result.stdout
    run_id = result.stdout.split()[1]
    assert f"lessonlab show {run_id}" in result.stderr
    shown = invoke("show", run_id, "--workspace", ws)
    assert shown.exit_code == 0 and "kind import" in shown.stdout and str(POPULARITY) in shown.stdout
    detail = json.loads(invoke("show", run_id, "--workspace", ws, "--json").stdout)
    assert sorted(t["rewards"][0] for t in detail["tasks"]) == [0.0] * 2 + [1.0] * 8
    rollout = detail["rollouts"][0]["id"]
    text = invoke("show", rollout, "--workspace", ws).stdout
    assert 'score match: "C" → 1.000' in text and "--- system ---" in text
    assert json.loads(invoke("show", rollout, "--workspace", ws, "--json").stdout)["scores"][0]["explanation"] == "Yes"
    again = invoke("import", POPULARITY, "--workspace", ws)
    assert again.exit_code == 0 and f"already imported as run {run_id}" in again.stdout


def test_import_json_output_score_and_split_options(tmp_path):
    ws = tmp_path / "ws.db"
    log = newest_eval(tmp_path / "newest.eval")
    result = invoke("import", log, "--score", "graded", "--split", "heldout", "--workspace", ws, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    [file] = report["files"]
    assert file["reward_scorer"] == "graded" and file["new"] == 5 and not report["cancelled"]
    assert any("outside [0, 1]" in w for w in file["warnings"])
    db = open_workspace(ws)
    assert {r["split"] for r in db.query("SELECT split FROM tasks")} == {"heldout"}
    db.close()
    bad = invoke("import", log, "--score", "nope", "--workspace", ws)
    assert bad.exit_code == 2 and "no scorer named 'nope'" in bad.stderr


def test_dry_run_writes_nothing(tmp_path):
    ws = tmp_path / "ws.db"
    invoke("runs", "--workspace", ws)
    before = content(ws)
    result = invoke("import", POPULARITY, DATA_DIR / "log_streaming.eval", "--dry-run", "--workspace", ws)
    assert result.exit_code == 0 and result.stdout.count("would add") == 2
    assert "nothing was written" in result.stderr and content(ws) == before


def test_a_broken_file_exits_2_naming_file_and_line_and_changes_nothing(tmp_path):
    ws = tmp_path / "ws.db"
    assert invoke("import", POPULARITY, "--workspace", ws).exit_code == 0
    before = content(ws)
    lines = tmp_path / "chats.jsonl"
    good = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]})
    lines.write_text(good + "\n" + good.replace("hello", "hey") + "\n" + '{"messages": [}\n')
    result = invoke("import", lines, "--workspace", ws)
    assert result.exit_code == 2
    assert f"{lines}: line 3: invalid JSON" in result.stderr and "Traceback" not in result.output
    cut = tmp_path / "cut.eval"
    cut.write_bytes(POPULARITY.read_bytes()[:5000])
    result = invoke("import", cut, "--workspace", ws)
    assert result.exit_code == 2 and f"{cut}: not a readable .eval zip" in result.stderr
    missing = invoke("import", tmp_path / "nope.eval", "--workspace", ws)
    assert missing.exit_code == 2 and "no such file" in missing.stderr
    assert content(ws) == before


def test_export_sft_dpo_rollouts_and_lessons(tmp_path):
    ws = tmp_path / "ws.db"
    run_id = json.loads(invoke("import", DATA_DIR / "log_streaming.eval", "--workspace", ws, "--json")
                        .stdout)["files"][0]["run_id"]
    out = tmp_path / "sft.jsonl"
    result = invoke("export", "sft", "--run", run_id, "--out", out, "--workspace", ws)
    assert result.exit_code == 0, result.output
    assert "wrote 3 example(s) from 2 task(s)" in result.stdout and "tokens" in result.stdout
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3 and all(line["messages"][-1]["role"] == "assistant" for line in lines)
    dpo = tmp_path / "dpo.jsonl"
    result = invoke("export", "dpo", "--suite", "popularity", "--out", dpo, "--workspace", ws, "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["examples"] == 1
    pair = json.loads(dpo.read_text())
    assert pair["preferred_output"][0]["content"] == "Yes." and pair["non_preferred_output"][0]["content"] == "No"
    result = invoke("export", "rollouts", "--run", run_id, "--workspace", ws)
    assert result.exit_code == 0 and len(result.stdout.splitlines()) == 4 and "wrote 4 rollout(s)" in result.stderr
    csv_out = invoke("export", "rollouts", "--run", run_id, "--format", "csv", "--workspace", ws).stdout
    assert csv_out.splitlines()[0].startswith("rollout_id,run_id,suite,task")
    assert invoke("lessons", "add", "Answer with Yes or No only.", "--workspace", ws).exit_code == 0
    markdown = invoke("export", "lessons", "--format", "markdown", "--workspace", ws)
    assert markdown.exit_code == 0 and "Answer with Yes or No only." in markdown.stdout
    as_json = json.loads(invoke("export", "lessons", "--workspace", ws).stdout)
    assert as_json["lessons"][0]["versions"][0]["text"] == "Answer with Yes or No only."
    none = invoke("export", "sft", "--run", run_id, "--min-reward", "2", "--out", tmp_path / "x.jsonl", "--workspace", ws)
    assert none.exit_code == 2 and "nothing to export" in none.stderr and not (tmp_path / "x.jsonl").exists()
    neither = invoke("export", "sft", "--out", tmp_path / "x.jsonl", "--workspace", ws)
    assert neither.exit_code == 2 and "give --run RUN" in neither.stderr
