"""Commands that read runs: `runs` (one line per run) and `show RUN|ROLLOUT`.

Apart from `run` and `suites` so that listing runs imports only the workspace and its queries, not the
settings, verifiers or suites that running needs (see tests/cli/test_cli_startup.py).
"""
from __future__ import annotations

import json

import click

from lessonlab.core.runs import queries, trajectory_text
from lessonlab.core.runs.trajectory import message_text, prompt_length
from lessonlab.core.storage.workspace import open_workspace

from .common import emit_json, fmt, handle_errors, json_option, out, workspace_option


def print_run_tasks(tasks: list[dict]) -> None:
    """Per-task rewards of a run as a table."""
    width = max([len(t["task"]) for t in tasks] + [4])
    out(f"{'task':<{width}}  {'split':<7}  {'mean':>6}  rewards")
    for t in tasks:
        unscored = f"{' ' if t['rewards'] else ''}{t['unscored']} unscored" if t.get("unscored") else ""
        out(f"{t['task']:<{width}}  {t['split']:<7}  {fmt.reward(t['mean_reward']):>6}  "
            f"{fmt.rewards(t['rewards']) if t['rewards'] or not unscored else ''}{unscored}")


@click.command("runs")
@click.option("--suite", default=None, help="Only runs of this suite.")
@click.option("--limit", type=click.IntRange(min=1), default=None)
@workspace_option
@json_option
@handle_errors
def runs_cmd(suite, limit, workspace_path, as_json) -> None:
    """One line per run: suite, endpoint, model, samples, mean reward, errors, status."""
    ws = open_workspace(workspace_path)
    rows = queries.list_runs(ws, suite=suite, limit=limit)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out("no runs yet; start one with: lessonlab run --suite strawberry --limit 5 --samples 2 --endpoint local")
        return
    out(f"{'run':<16}{'suite':<14}{'endpoint':<10}{'model':<26}{'k':>3}{'done':>7}{'reward':>8}{'err':>5}  status")
    for r in rows:
        model = (r["server_model"] or r["model"] or "")[:25]
        kind = "" if r["kind"] == "run" else f" ({r['kind']})"
        out(
            f"{r['id']:<16}{r['suite'][:13]:<14}{r['endpoint'][:9]:<10}{model:<26}{r['samples']:>3}"
            f"{r['n_done']:>4}/{r['n_planned']:<3}{fmt.reward(r['mean_reward']):>7}{r['n_errors']:>5}  {r['status']}{kind}"
        )


@click.command("show")
@click.argument("ident")
@click.option("--full", is_flag=True, help="Print tool results whole (by default long ones are cut for the terminal).")
@workspace_option
@json_option
@handle_errors
def show_cmd(ident, full, workspace_path, as_json) -> None:
    """Show a run (per-task rewards and rollouts) or a rollout (prompt, steps with tool calls, output, verdict)."""
    ws = open_workspace(workspace_path)
    table, found = queries.identify(ws, ident)
    if table == "runs":
        _show_run(ws, found, as_json)
    else:
        _show_rollout(ws, found, as_json, full=full)


def _show_run(ws, run_id: str, as_json: bool) -> None:
    detail = queries.run_detail(ws, run_id)
    detail["rollouts"] = queries.run_rollouts(ws, run_id)
    # Imported here: snapshots bring the lessons package, which `runs` and `show ROLLOUT` never need.
    from lessonlab.core.lessons.snapshots import load_snapshot

    detail["system_prompt"] = load_snapshot(ws, detail["snapshot_id"]).system_prompt
    if as_json:
        emit_json(detail)
        return
    out(f"run {run_id}  [{detail['status']}]  kind {detail['kind']}")
    out(f"suite {detail['suite']} ({detail['split']}), endpoint {detail['endpoint']}, "
        f"model {detail['server_model'] or detail['model']}, snapshot {detail['snapshot_id']}")
    if detail["kind"] == "import":
        out(f"imported from {detail['source']} ({detail.get('source_format') or '?'}), "
            f"up to {detail['samples']} sample(s) per task")
    elif detail["kind"] == "serve":
        out(f"recorded by the proxy at {detail['source']} (lessonlab serve); unscored rollouts have no reward yet")
    else:
        out(f"samples {detail['samples']}, params {json.dumps(detail['params'])}, seed {detail['seed']}")
    out(f"{detail['n_done']}/{detail['n_planned']} rollouts, {detail['n_errors']} errors, "
        f"mean reward {fmt.reward(detail['mean_reward'])}, tokens "
        f"{fmt.tokens(detail['prompt_tokens'], detail['completion_tokens'])}\n")
    print_run_tasks(detail["tasks"])
    out("\nrollouts:")
    for r in detail["rollouts"]:
        what = r["feedback"] if r["status"] == "ok" else f"ERROR {r['error']}"
        out(f"  {r['id']}  {r['task']} #{r['sample_index']}  {fmt.reward_label(r['reward'], r['status'])}  "
            f"{what or ''}")


def _show_rollout(ws, rollout_id: str, as_json: bool, *, full: bool = False) -> None:
    detail = queries.rollout_detail(ws, rollout_id)
    detail["lessons"] = queries.snapshot_lesson_versions(ws, detail["snapshot_id"])
    detail["scores"] = queries.rollout_scores(ws, rollout_id)
    if as_json:
        emit_json({**detail, "steps": [step.to_dict() for step in detail["steps"]]})
        return
    out(f"rollout {rollout_id}  run {detail['run_id']}  task {detail['suite']}/{detail['task']} "
        f"sample {detail['sample_index']}  snapshot {detail['snapshot_id']}")
    out(f"model {detail['model']}  latency {detail['latency_ms'] or 0:.0f} ms  tokens "
        f"{fmt.tokens(detail['prompt_tokens'], detail['completion_tokens'])}  attempts {detail['attempts']}  "
        f"seed {detail['seed']}")
    out("lessons in its prompt: " + (", ".join(f"{x['lesson_id']} v{x['version']}" for x in detail["lessons"])
                                           or "none"))
    if detail["status"] == "ok" and detail["reward"] is None:
        out(f"unscored: give it a reward with `lessonlab score {rollout_id} --reward R [--feedback TEXT]`")
    elif detail["status"] == "ok":
        out(f"reward {fmt.reward(detail['reward'])}: {detail['feedback']}")
    else:
        out(f"ERROR: {detail['error']}")
    if detail.get("note"):
        out(f"note: {detail['note']}")
    for score in detail["scores"]:  # an imported rollout keeps every scorer's result
        answer = f", answer {score['answer']!r}" if score["answer"] is not None else ""
        out(f"  score {score['scorer']}: {json.dumps(score['value'])} → {fmt.reward(score['reward'])}{answer}"
            + (f": {score['explanation']}" if score["explanation"] else ""))
    print_transcript(detail, full=full)


def print_transcript(detail: dict, *, full: bool = False) -> None:
    """The prompt messages, then each step: its text, its calls as `→ name(args)` with their results."""
    steps = detail["steps"]
    if not trajectory_text.is_trajectory(steps):   # one call: the messages and the reply, as always
        for message in detail["messages"]:
            out(f"\n--- {message['role']} ---\n{message_text(message.get('content'))}")
        out(f"\n--- assistant (output) ---\n{detail['output'] if detail['output'] is not None else '(none)'}")
        return
    for message in detail["messages"][:prompt_length(detail["messages"])]:
        out(f"\n--- {message['role']} ---\n{message_text(message.get('content'))}")
    for step in steps:
        _print_step(step, full=full)
    if detail["output"] is None or detail["status"] != "ok":
        out("\n(no final reply)")


def _print_step(step, *, full: bool) -> None:
    figures = trajectory_text.figures_text(step.figures)
    title = f"step {step.index}" + (" (final reply)" if step.final else "") + (f"  [{figures}]" if figures else "")
    out(f"\n--- {title} ---")
    if step.content:
        out(step.content)
    results = {r.tool_call_id: r for r in step.results if r.tool_call_id}
    unmatched = [r for r in step.results if not r.tool_call_id or r.tool_call_id not in {c.id for c in step.tool_calls}]
    for call in step.tool_calls:
        out(f"→ {trajectory_text.call_signature(call)}")
        result = results.get(call.id)
        if result is not None:
            _print_result(result, full=full)
        elif step.final:
            out("  (not run: the rollout stopped at its turn limit)")
    for result in unmatched:
        _print_result(result, full=full)


def _print_result(result, *, full: bool) -> None:
    # A result answering a call sits under it; one that answers none (a Hermes user message) says what it is.
    label = "  ← " if result.tool_call_id else f"← {result.name or 'result'} message, "
    label += trajectory_text.size_text(trajectory_text.text_size(result.content))
    if result.cut_bytes:
        label += f" (stored cut from {trajectory_text.size_text(result.cut_bytes)})"
    text = result.content if full else trajectory_text.cut_for_terminal(result.content)
    out(label)
    out("    " + (text or "(empty)").replace("\n", "\n    "))
