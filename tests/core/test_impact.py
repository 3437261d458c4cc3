"""Impact statistics on constructed data with known answers, ablation against a scripted endpoint, timeline."""
from __future__ import annotations

import asyncio
import json
import random
import time

import pytest
from click.testing import CliRunner

from tests.helpers.impact_data import add_lesson, put_rollouts, snapshot
from tests.helpers.tasks import numeric_tasks
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.core import impact
from lessonlab.cli.root import cli
from lessonlab.core.models.llm_client import RetryPolicy
from lessonlab.core.settings import Endpoint
from lessonlab.core.tasks.suites import load_suite


def test_constant_plus_half_comes_out_as_half_with_tight_interval(workspace):
    lesson = add_lesson(workspace, "Spell the word letter by letter before counting.")
    without, with_ = snapshot(workspace), snapshot(workspace, lesson)
    rng = random.Random(1)
    base = {f"task{i}": [rng.choice([0.0, 0.25, 0.5]) for _ in range(4)] for i in range(12)}
    put_rollouts(workspace, without, base)
    put_rollouts(workspace, with_, {k: [r + 0.5 for r in v] for k, v in base.items()})
    result = impact.lesson_impact(workspace, lesson.id)
    lift = result.observational
    assert lift.enough_data and lift.n_units == 12
    assert lift.lift == pytest.approx(0.5)
    assert lift.ci_low == pytest.approx(0.5) and lift.ci_high == pytest.approx(0.5)
    assert result.rollouts_with == 48 and result.rollouts_comparable_without == 48
    assert result.confounded_with == []


def test_no_effect_interval_covers_zero(workspace):
    lesson = add_lesson(workspace, "Be concise.")
    without, with_ = snapshot(workspace), snapshot(workspace, lesson)
    rng = random.Random(7)
    draw = lambda: {f"task{i}": [float(rng.random() < 0.5) for _ in range(4)] for i in range(30)}  # noqa: E731
    put_rollouts(workspace, without, draw())
    put_rollouts(workspace, with_, draw())
    lift = impact.lesson_impact(workspace, lesson.id).observational
    assert lift.enough_data
    assert lift.ci_low < 0 < lift.ci_high
    assert abs(lift.lift) < 0.2


def test_lessons_added_together_are_reported_as_a_set(workspace):
    a = add_lesson(workspace, "Count letters one at a time.")
    b = add_lesson(workspace, "Write the final answer on its own line.")
    without, both = snapshot(workspace), snapshot(workspace, a, b)
    put_rollouts(workspace, without, {f"t{i}": [0.0, 0.0] for i in range(5)})
    put_rollouts(workspace, both, {f"t{i}": [1.0, 1.0] for i in range(5)})
    ia, ib = impact.lesson_impact(workspace, a.id), impact.lesson_impact(workspace, b.id)
    assert ia.confounded_with == [b.id] and ib.confounded_with == [a.id]
    assert "confounded" in ia.observational.note
    # once b also appears on its own, a's comparison is no longer fully confounded with it
    put_rollouts(workspace, snapshot(workspace, b), {f"t{i}": [0.5, 0.5] for i in range(5)})
    assert impact.lesson_impact(workspace, a.id).confounded_with == []


def test_thin_data_says_not_enough_and_models_are_never_mixed(workspace):
    lesson = add_lesson(workspace, "Double-check arithmetic.")
    without, with_ = snapshot(workspace), snapshot(workspace, lesson)
    put_rollouts(workspace, without, {"a": [0.0], "b": [0.0]})
    put_rollouts(workspace, with_, {"a": [1.0], "b": [1.0]})
    thin = impact.lesson_impact(workspace, lesson.id).observational
    assert not thin.enough_data and thin.lift is None and "2 matched tasks" in thin.note
    # plenty of data, but "without" comes from another model: nothing is comparable
    put_rollouts(workspace, without, {f"x{i}": [0.0] for i in range(10)}, model="other-model")
    put_rollouts(workspace, with_, {f"x{i}": [1.0] for i in range(10)}, model="m")
    still = impact.lesson_impact(workspace, lesson.id).observational
    assert still.n_units == 2 and not still.enough_data


def test_impact_table(workspace):
    a = add_lesson(workspace, "Lesson A.")
    b = add_lesson(workspace, "Lesson B.")
    s0, sa, sb = snapshot(workspace), snapshot(workspace, a), snapshot(workspace, b)
    put_rollouts(workspace, s0, {f"t{i}": [0.0] for i in range(4)})
    put_rollouts(workspace, sa, {f"t{i}": [1.0] for i in range(4)})
    put_rollouts(workspace, sb, {f"t{i}": [0.0] for i in range(4)})
    table = {row.lesson_id: row for row in impact.impact_table(workspace)}
    assert table[a.id].observational.lift == pytest.approx(1.0)
    assert table[b.id].observational.lift == pytest.approx(-0.5)  # vs s0 (0.0) and sa (1.0) pooled
    assert table[a.id].rollouts_with == 4


def test_timeline_marks_lesson_events_between_runs(workspace):
    s0 = snapshot(workspace)
    first = put_rollouts(workspace, s0, {"t": [0.0]})
    time.sleep(0.01)  # timestamps have millisecond resolution
    lesson = add_lesson(workspace, "Think twice.")
    time.sleep(0.01)
    second = put_rollouts(workspace, snapshot(workspace, lesson), {"t": [1.0]})
    rows = impact.timeline(workspace, "s")
    assert [r["id"] for r in rows] == [first, second]
    assert rows[0]["events_before"] == []
    assert [(e["lesson_id"], e["kind"]) for e in rows[1]["events_before"]][0][0] == lesson.id
    assert rows[1]["mean_reward"] is None or rows[1]["lessons"] == 1


MAGIC = "Always answer with the number forty-two."


def magic_script(req, n):
    """Correct (42) only when the magic lesson is in the system prompt."""
    system = req["messages"][0]["content"] if req["messages"][0]["role"] == "system" else ""
    return Reply(body=completion("Answer: 42" if MAGIC in system else "Answer: 7"))


def test_ablation_measures_the_constructed_effect(workspace, make_suite):
    suite = load_suite(str(make_suite([
        {"id": f"q{i}", "prompt": f"Question {i}?", "verifier": {"kind": "numeric", "answer": 42}, "split": "heldout"}
        for i in range(5)
    ])))
    lesson = add_lesson(workspace, MAGIC)
    add_lesson(workspace, "An unrelated lesson that stays in both arms.")
    with ScriptedServer(magic_script) as server:
        endpoint = Endpoint(name="scripted", base_url=server.base_url, model="scripted-model")
        result = asyncio.run(impact.run_ablation(
            workspace, lesson.id, suite, suite.select("heldout"), endpoint=endpoint, base_url=server.base_url,
            samples=2, split="heldout", seed=5, retry=RetryPolicy(max_attempts=1)))
        # same seeds in both arms
        seeds = sorted(r["seed"] for r in server.requests)
    assert result.status == "completed"
    assert result.lift.lift == pytest.approx(1.0) and result.lift.ci_low == pytest.approx(1.0)
    assert result.lift.n_units == 5 and result.lift.n_with == 10 and result.lift.n_without == 10
    assert seeds[0::2] == seeds[1::2]
    runs = workspace.query("SELECT id, kind, note, snapshot_id FROM runs ORDER BY id")
    assert {r["kind"] for r in runs} == {"ablation"}
    arms = {json.loads(r["note"])["arm"]: r for r in runs}
    assert arms["with"]["id"] == result.run_with and arms["without"]["id"] == result.run_without
    row = workspace.one("SELECT * FROM ablations")
    assert row["lift"] == pytest.approx(1.0) and row["status"] == "completed"
    # the impact table shows the latest ablation, and the "without" arm has the other lesson only
    latest = impact.lesson_impact(workspace, lesson.id).latest_ablation
    assert latest["id"] == result.ablation_id
    without_prompt = workspace.one("SELECT system_prompt FROM snapshots WHERE id = ?", (arms["without"]["snapshot_id"],))
    assert MAGIC not in without_prompt["system_prompt"] and "unrelated lesson" in without_prompt["system_prompt"]


def test_ablate_cli_json_and_impact_cli(tmp_path, make_suite):
    ws_path = tmp_path / "ws.db"
    suite = make_suite([
        {"id": f"q{i}", "prompt": f"Question {i}?", "verifier": {"kind": "numeric", "answer": 42}, "split": "heldout"}
        for i in range(4)
    ])
    runner = CliRunner()
    added = runner.invoke(cli, ["lessons", "add", MAGIC, "--workspace", str(ws_path), "--json"])
    assert added.exit_code == 0, added.output
    with ScriptedServer(magic_script) as server:
        runner.invoke(cli, ["endpoints", "add", "scripted", "--base-url", server.base_url, "--model", "m"])
        result = runner.invoke(cli, ["ablate", "--all", "--suite", str(suite), "--endpoint", "scripted",
                                     "--samples", "1", "--workspace", str(ws_path), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert len(data) == 1 and data[0]["lift"] == pytest.approx(1.0) and data[0]["n_units"] == 4
    assert data[0]["run_with"] and data[0]["run_without"]
    table = json.loads(runner.invoke(cli, ["impact", "--workspace", str(ws_path), "--json"]).stdout)
    assert table[0]["latest_ablation"]["lift"] == pytest.approx(1.0)
    assert table[0]["observational"]["lift"] == pytest.approx(1.0) or not table[0]["observational"]["enough_data"]
    text = runner.invoke(cli, ["impact", "--workspace", str(ws_path)]).stdout
    assert "+1.00" in text
    timeline = runner.invoke(cli, ["timeline", "--suite", "mini", "--workspace", str(ws_path), "--json"])
    assert timeline.exit_code == 0 and len(json.loads(timeline.stdout)) == 2


def test_ablating_an_inactive_lesson_is_a_clear_error(tmp_path, make_suite):
    ws_path = tmp_path / "ws.db"
    runner = CliRunner()
    runner.invoke(cli, ["lessons", "add", "Some lesson.", "--workspace", str(ws_path)])
    lesson_id = json.loads(runner.invoke(cli, ["lessons", "list", "--workspace", str(ws_path), "--json"]).stdout)
    lesson_id = lesson_id[0]["id"] if isinstance(lesson_id, list) else lesson_id["lessons"][0]["id"]
    runner.invoke(cli, ["lessons", "retire", lesson_id, "--workspace", str(ws_path)])
    result = runner.invoke(cli, ["ablate", lesson_id, "--suite", str(make_suite(numeric_tasks(2, "heldout"))),
                                 "--workspace", str(ws_path)])
    assert result.exit_code == 2 and "not active" in result.stderr


@pytest.mark.model
def test_ablation_end_to_end_on_the_embedded_model(workspace, local_model_url, local_endpoint):
    suite = load_suite("arithmetic")
    lesson = add_lesson(workspace, "Compute carefully digit by digit, then give the final line 'Answer: <number>'.")
    result = asyncio.run(impact.run_ablation(
        workspace, lesson.id, suite, suite.select("heldout", 2), endpoint=local_endpoint, base_url=local_model_url,
        samples=2, split="heldout", seed=11, params={"max_tokens": 32}))
    assert result.status == "completed"
    assert workspace.one("SELECT COUNT(*) AS n FROM rollouts")["n"] == 8
    assert result.lift.n_with == 4 and result.lift.n_without == 4
    assert result.lift.n_units == 2 and not result.lift.enough_data  # honest: 2 tasks is too thin for an interval


def test_lessons_list_and_distill_prompt_carry_impact_figures(tmp_path):
    from lessonlab.core import reflection
    from lessonlab.core.storage.workspace import open_workspace

    ws_path = tmp_path / "ws.db"
    ws = open_workspace(ws_path)
    helpful = add_lesson(ws, "Spell the word letter by letter before counting.")
    put_rollouts(ws, snapshot(ws), {f"task{i}": [0.0, 0.5] for i in range(6)})
    put_rollouts(ws, snapshot(ws, helpful), {f"task{i}": [0.5, 1.0] for i in range(6)})
    listed = json.loads(CliRunner().invoke(cli, ["lessons", "list", "--workspace", str(ws_path), "--json"]).stdout)
    row = listed["lessons"][0]
    assert row["impact"]["uses"] == 12 and row["impact"]["observational"]["lift"] == pytest.approx(0.5)
    text = CliRunner().invoke(cli, ["lessons", "list", "--workspace", str(ws_path)]).stdout
    assert "+0.50 [+0.50,+0.50]" in text
    reply = {"analysis": "fine", "operations": []}
    with ScriptedServer(lambda req, n: Reply(body=completion(json.dumps(reply)))) as server:
        endpoint = Endpoint(name="scripted", base_url=server.base_url, model="judge")
        reflection.distill(ws, endpoint, base_url=server.base_url, budget=5)
        sent = json.dumps(server.requests[-1]["messages"])
    assert "observed lift +0.50 [+0.50, +0.50] (6 tasks)" in sent
