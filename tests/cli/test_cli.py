"""The CLI as a user drives it: JSON on stdout, clear errors, exit codes 0/1/2, nothing half-written."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.helpers.tasks import numeric_tasks
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.cli.root import cli
from lessonlab.core.settings import settings_path
from lessonlab.core.storage.workspace import open_workspace


def invoke(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def answer_plus_one(req, n):
    import re

    match = re.search(r"What is (\d+) \+ 1", req["messages"][-1]["content"])
    if match is None:
        return Reply(body=completion("OK"))
    i = int(match.group(1))
    return Reply(body=completion(f"Answer: {i + 1 if i % 2 == 0 else i}"))


@pytest.fixture
def scripted_endpoint():
    with ScriptedServer(answer_plus_one) as server:
        result = invoke("endpoints", "add", "scripted", "--base-url", server.base_url, "--model", "scripted-model")
        assert result.exit_code == 0, result.output
        yield server


def test_suites_lists_builtins_with_counts_as_json():
    result = invoke("suites", "--json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert {"strawberry", "arithmetic", "game24", "format"} <= set(rows)
    assert rows["strawberry"]["total"] >= 60 and rows["strawberry"]["heldout"] > 0
    assert rows["strawberry"]["tools"] == [] and rows["strawberry-tools"]["tools"] == ["letters.spell"]
    assert rows["shop"]["tools"] == ["shop"]


def test_suites_table_names_the_tools():
    result = invoke("suites")
    assert result.exit_code == 0
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert lines["strawberry-tools"].endswith("  letters.spell")
    assert lines["strawberry"].endswith("  -")


def test_run_then_runs_and_show(tmp_path, make_suite, scripted_endpoint):
    ws = tmp_path / "ws.db"
    suite = make_suite(numeric_tasks(4))
    result = invoke("run", "--suite", suite, "--samples", 2, "--endpoint", "scripted", "--workspace", ws, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout holds JSON only
    assert summary["done"] == 8 and summary["errors"] == 0 and summary["mean_reward"] == 0.5
    assert [t["rewards"] for t in summary["tasks"]] == [[1.0, 1.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]
    assert "[" in result.stderr  # the progress bar went to stderr

    runs = json.loads(invoke("runs", "--workspace", ws, "--json").stdout)
    assert len(runs) == 1 and runs[0]["id"] == summary["run_id"] and runs[0]["mean_reward"] == 0.5
    assert runs[0]["server_model"] == "scripted-model" and runs[0]["status"] == "completed"

    shown = json.loads(invoke("show", summary["run_id"][:8], "--workspace", ws, "--json").stdout)
    assert shown["id"] == summary["run_id"] and len(shown["rollouts"]) == 8
    rollout_id = shown["rollouts"][0]["id"]
    text = invoke("show", rollout_id, "--workspace", ws).stdout
    assert "--- system ---" in text and "What is 0 + 1?" in text and "reward 1.000" in text


def test_plain_run_prints_per_task_rewards(tmp_path, make_suite, scripted_endpoint):
    suite = make_suite(numeric_tasks(2))
    result = invoke("run", "--suite", suite, "--endpoint", "scripted", "--workspace", tmp_path / "ws.db")
    assert result.exit_code == 0
    assert "t0" in result.stdout and "t1" in result.stdout and "mean reward 0.500" in result.stdout


def test_malformed_suite_names_line_and_writes_nothing(tmp_path, scripted_endpoint):
    suite = tmp_path / "broken.jsonl"
    good = json.dumps(numeric_tasks(1)[0])
    suite.write_text(good + "\n" + good.replace('"t0"', '"t1"') + "\n{not json\n")
    ws = tmp_path / "ws.db"
    result = invoke("run", "--suite", suite, "--endpoint", "scripted", "--workspace", ws)
    assert result.exit_code == 2
    assert f"{suite}:3:" in result.stderr
    db = open_workspace(ws)
    assert db.one("SELECT COUNT(*) AS n FROM runs")["n"] == 0
    assert db.one("SELECT COUNT(*) AS n FROM tasks")["n"] == 0


def test_invalid_json_schema_in_a_suite_names_file_and_line(tmp_path, scripted_endpoint):
    suite = tmp_path / "bad.jsonl"
    good = numeric_tasks(1)[0]
    bad = {**good, "id": "t1", "verifier": {"kind": "json_schema", "schema": {"type": "strnig"}}}
    suite.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    result = invoke("run", "--suite", suite, "--endpoint", "scripted", "--workspace", tmp_path / "ws.db")
    assert result.exit_code == 2
    assert f"{suite}:2: invalid verifier: json_schema verifier: schema is invalid: 'strnig'" in result.stderr


def test_unknown_suite_and_endpoint_are_usage_errors(tmp_path):
    result = invoke("run", "--suite", "nope", "--workspace", tmp_path / "ws.db")
    assert result.exit_code == 2 and "no built-in suite" in result.stderr
    result = invoke("run", "--suite", "strawberry", "--endpoint", "ghost", "--workspace", tmp_path / "ws.db")
    assert result.exit_code == 2 and "no endpoint named 'ghost'" in result.stderr


def test_every_rollout_failing_exits_1(tmp_path, make_suite):
    with ScriptedServer(lambda req, n: Reply(status=401, body={"error": {"message": "bad key"}})) as server:
        invoke("endpoints", "add", "locked", "--base-url", server.base_url, "--model", "m")
        result = invoke("run", "--suite", make_suite(numeric_tasks(2)), "--endpoint", "locked",
                        "--workspace", tmp_path / "ws.db", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["errors"] == 2
    assert "HTTP 401" in result.stderr


def test_endpoints_never_store_the_key(monkeypatch):
    monkeypatch.setenv("MY_SECRET_KEY", "sk-very-secret-value")
    result = invoke("endpoints", "add", "remote", "--base-url", "https://api.example.invalid/v1",
                    "--model", "gpt-x", "--key-env", "MY_SECRET_KEY")
    assert result.exit_code == 0
    stored = settings_path().read_text()
    assert "MY_SECRET_KEY" in stored and "sk-very-secret-value" not in stored
    listed = json.loads(invoke("endpoints", "--json").stdout)
    assert {e["name"] for e in listed} == {"local", "remote"}
    assert invoke("endpoints", "remove", "remote").exit_code == 0
    assert {e["name"] for e in json.loads(invoke("endpoints", "--json").stdout)} == {"local"}


def test_key_instead_of_env_name_is_refused():
    result = invoke("endpoints", "add", "oops", "--base-url", "https://x.invalid/v1", "--model", "m",
                    "--key-env", "sk-abc123-secret!")
    assert result.exit_code == 2 and "NAME of an environment variable" in result.stderr
    assert not settings_path().exists() or "sk-abc123" not in settings_path().read_text()


def test_endpoints_test_reports_latency_or_error(scripted_endpoint):
    ok = invoke("endpoints", "test", "scripted", "--json")
    assert ok.exit_code == 0 and json.loads(ok.stdout)["ok"] is True
    invoke("endpoints", "add", "dead", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--timeout", "2")
    dead = invoke("endpoints", "test", "dead", "--json")
    assert dead.exit_code == 1
    report = json.loads(dead.stdout)
    assert report["ok"] is False and "connection" in report["error"]


def test_resume_completes_an_interrupted_run(tmp_path, make_suite, scripted_endpoint):
    ws_path = tmp_path / "ws.db"
    suite = make_suite(numeric_tasks(3))
    first = json.loads(invoke("run", "--suite", suite, "--samples", 2, "--endpoint", "scripted",
                              "--workspace", ws_path, "--json").stdout)
    ws = open_workspace(ws_path)
    # simulate a crash half-way: forget the last three rollouts and mark the run interrupted
    victims = [r["id"] for r in ws.query("SELECT id FROM rollouts ORDER BY created_at DESC, id LIMIT 3")]
    with ws.transaction():
        for rid in victims:
            ws.conn.execute("DELETE FROM rollout_texts WHERE rollout_id = ?", (rid,))
            ws.conn.execute("DELETE FROM rollouts WHERE id = ?", (rid,))
        ws.conn.execute("UPDATE runs SET status='interrupted', n_done = 3, reward_sum = "
                        "(SELECT SUM(reward) FROM rollouts) WHERE id = ?", (first["run_id"],))
    result = invoke("run", "--resume", first["run_id"], "--workspace", ws_path, "--json")
    assert result.exit_code == 0, result.output
    resumed = json.loads(result.stdout)
    assert resumed["done"] == 6 and resumed["status"] == "completed"
    assert ws.one("SELECT COUNT(*) AS n FROM rollouts")["n"] == 6
    again = invoke("run", "--resume", first["run_id"], "--workspace", ws_path)
    assert again.exit_code == 2 and "already complete" in again.stderr


def test_missing_local_extra_names_the_install_command(monkeypatch):
    from lessonlab.core.models import local_model

    monkeypatch.setattr(local_model, "_SERVER_MODULES", ("llama_cpp_definitely_missing",))
    with pytest.raises(local_model.LocalModelError, match=r"pip install 'lessonlab\[local\]'"):
        local_model.check_installed()


def test_gui_without_a_display_says_so(monkeypatch):
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["gui"])
    assert result.exit_code == 1
    assert "no display" in result.stderr or "PySide6" in result.stderr


def test_a_locked_workspace_is_one_clear_line_not_a_traceback(tmp_path, monkeypatch):
    import sqlite3

    from lessonlab.core.storage import workspace as workspace_module

    ws_path = tmp_path / "ws.db"
    assert invoke("lessons", "add", "Show your work.", "-w", str(ws_path)).exit_code == 0
    monkeypatch.setattr(workspace_module, "BUSY_TIMEOUT_SECONDS", 0.2)
    holder = sqlite3.connect(str(ws_path), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
    try:
        result = invoke("lessons", "add", "Check the units.", "-w", str(ws_path))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert "is locked by another process" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_read_only_workspace_lists_but_refuses_writes_with_one_line(tmp_path, monkeypatch):
    from lessonlab.core.storage import workspace as workspace_module

    ws_path = tmp_path / "ws.db"
    assert invoke("lessons", "add", "Show your work.", "-w", str(ws_path)).exit_code == 0
    real_open = workspace_module.open_workspace

    def open_read_only(*args, **kwargs):
        # SQLite's query_only makes every write fail exactly as on a read-only file (also for root,
        # who can write files whatever their mode says).
        ws = real_open(*args, **kwargs)
        ws.conn.execute("PRAGMA query_only = ON")
        return ws

    import lessonlab.cli.lessons as lessons_cli

    monkeypatch.setattr(lessons_cli, "open_workspace", open_read_only)
    listing = invoke("lessons", "list", "-w", str(ws_path))
    assert listing.exit_code == 0 and "Show your work." in listing.stdout
    result = invoke("lessons", "add", "Check the units.", "-w", str(ws_path))
    assert result.exit_code == 1
    assert "read-only" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_tools_lists_the_builtin_sets_with_signatures():
    result = invoke("tools")
    assert result.exit_code == 0
    assert "  spell(word: string)\n      Spell a word: returns the word one letter per line" in result.stdout
    assert "shop  (stateful)\n  list_items()\n" in result.stdout
    assert "  add_to_cart(item: string, qty: integer)" in result.stdout
    sets = {entry["set"]: entry for entry in json.loads(invoke("tools", "--json").stdout)}
    assert list(sets)[:3] == ["letters", "calc", "shop"]
    assert sets["calc"]["stateful"] is False and [t["name"] for t in sets["calc"]["tools"]] == ["add", "sub", "mul", "div"]
    assert sets["letters"]["tools"][0]["parameters"]["required"] == ["word"]
