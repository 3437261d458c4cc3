"""Commands that measure lessons: `impact`, `timeline`, `ablate`."""
from __future__ import annotations

import asyncio
import sys

import click

from lessonlab.core import impact as impact_core
from lessonlab.core.lessons import active_lessons, resolve_lesson_id
from lessonlab.core.settings import load_settings
from lessonlab.core.storage.workspace import open_workspace

from .common import (EXIT_FAILED, CliError, Throttle, checked, emit_json, endpoint_url, fmt, handle_errors,
                     json_option, out, workspace_option)


@click.command("impact")
@click.argument("lesson", required=False)
@click.option("--suite", default=None, help="Only rollouts of this suite.")
@workspace_option
@json_option
@handle_errors
def impact_cmd(lesson, suite, workspace_path, as_json) -> None:
    """Which lessons helped: exposure, matched lift ± 95% CI (or how much more data), latest ablation."""
    ws = open_workspace(workspace_path)
    if lesson:
        lesson_id = resolve_lesson_id(ws, lesson)
        rows = [impact_core.lesson_impact(ws, lesson_id, suite=suite)]
    else:
        rows = impact_core.impact_table(ws, suite=suite)
    if as_json:
        emit_json([r.to_dict() for r in rows])
        return
    if not rows:
        out("no lessons yet; add one with `lessonlab lessons add` or accept a proposal")
        return
    out(f"{'lesson':<14}{'status':<9}{'tok':>5}{'runs':>6}{'with':>7}{'w/o':>7}  "
        f"{'observed lift [95% CI]':<34}{'ablation':<22}text")
    for r in rows:
        text = fmt.one_line(r.text, 50)
        out(f"{r.lesson_id:<14}{r.status:<9}{r.tokens:>5}{r.runs_with:>6}{r.rollouts_with:>7}"
            f"{r.rollouts_comparable_without:>7}  {fmt.lift(r.observational, units=True):<34}"
            f"{fmt.ablation(r.latest_ablation):<22}{text}")
        if r.confounded_with:
            out(f"{'':<14}confounded: came and went together with {', '.join(r.confounded_with)} — "
                f"the lift belongs to the set")
        advice = r.observational.settle_advice()
        if advice:
            out(f"{'':<14}{advice}")
    out("\nlift = mean over (task, model) of reward with − without the lesson, 95% paired t interval over them; "
        "`lessonlab ablate LESSON` measures it causally")


@click.command("timeline")
@click.option("--suite", required=True, help="Suite whose runs to show.")
@click.option("--model", default=None, help="Only runs of this model.")
@workspace_option
@json_option
@handle_errors
def timeline_cmd(suite, model, workspace_path, as_json) -> None:
    """Mean reward per run in time order, with the lesson changes between runs."""
    ws = open_workspace(workspace_path)
    rows = impact_core.timeline(ws, suite, model)
    if as_json:
        emit_json(rows)
        return
    if not rows:
        out(f"no runs of suite {suite!r}")
        return
    for run in rows:
        for event in run["events_before"]:
            version = f" v{event['version']}" if event.get("version") else ""
            reason = f" — {event['reason']}" if event.get("reason") else ""
            out(f"    ↳ {event['created_at'][:19]}  {event['kind']:<9} {event['lesson_id']}{version}"
                f" ({event['author']}){reason}")
        bar = "#" * int(round((run["mean_reward"] or 0) * 20))
        out(f"{run['created_at'][:19]}  {run['id']:<16}{run['kind']:<9}{(run['model'] or '')[:24]:<25}"
            f"lessons {run['lessons'] or 0:>2}  reward {fmt.reward(run['mean_reward'])} {bar}")


@click.command("ablate")
@click.argument("lesson", required=False)
@click.option("--all", "ablate_all", is_flag=True, help="Ablate every active lesson in turn.")
@click.option("--suite", "suite_name", required=True, help="Built-in suite name or JSONL path.")
@click.option("--split", type=click.Choice(["train", "heldout", "all"]), default="heldout", show_default=True)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Only the first N tasks.")
@click.option("--samples", "-k", type=click.IntRange(min=1), default=2, show_default=True)
@click.option("--endpoint", "endpoint_name", default=None)
@click.option("--concurrency", "-c", type=click.IntRange(min=1, max=1024), default=4, show_default=True)
@click.option("--temperature", type=float, default=None, callback=checked("temperature"))
@click.option("--max-tokens", type=click.IntRange(min=1), default=None)
@click.option("--seed", type=int, default=None, help="Seed shared by both arms (random when omitted).")
@workspace_option
@json_option
@handle_errors
def ablate_cmd(lesson, ablate_all, suite_name, split, limit, samples, endpoint_name, concurrency, temperature,
               max_tokens, seed, workspace_path, as_json) -> None:
    """Rerun tasks with and without a lesson (same seeds, side by side) and report the causal lift ± CI."""
    if bool(lesson) == bool(ablate_all):
        raise CliError("name one LESSON or pass --all")
    settings = load_settings()
    ws = open_workspace(workspace_path)
    ws.require_writable()
    suite, tasks = impact_core.ablation_tasks(suite_name, split, limit)
    endpoint = settings.endpoint(endpoint_name or settings.default_endpoint)
    if ablate_all:
        lesson_ids = [lesson.id for lesson in active_lessons(ws, suite.name)]
        if not lesson_ids:
            raise CliError(f"no active lessons apply to suite {suite.name!r}")
    else:
        lesson_ids = [resolve_lesson_id(ws, lesson)]
    params = {"temperature": temperature, "max_tokens": max_tokens}
    results = []

    throttle = Throttle()

    def progress(arms):
        if throttle.ready():
            throttle.draw("  " + "  ".join(f"{arm} {p.done}/{p.total}" for arm, p in sorted(arms.items())))

    try:
        with endpoint_url(endpoint, quiet=as_json) as url:
            for lesson_id in lesson_ids:
                out(f"ablating {lesson_id} on {suite.name} ({split}, {len(tasks)} tasks × {samples})", err=True)
                result = asyncio.run(impact_core.run_ablation(
                    ws, lesson_id, suite, tasks, endpoint=endpoint, base_url=url, samples=samples, split=split,
                    settings=settings, concurrency=concurrency, params=params, seed=seed, progress=progress,
                ))
                throttle.close()
                results.append(result)
    except KeyboardInterrupt:
        out("\ninterrupted", err=True)
        sys.exit(EXIT_FAILED)
    if as_json:
        data = [r.to_dict() for r in results]
        emit_json(data[0] if len(data) == 1 and not ablate_all else data)
    else:
        for r in results:
            out(f"{r.lesson_id}: lift {r.lift.describe()}  with {r.lift.n_with} / without {r.lift.n_without} "
                f"rollouts  (runs {r.run_with} vs {r.run_without}, {r.status})")
            if r.lift.settle_advice():
                out(f"  {r.lift.settle_advice()}")
    if any(r.status != "completed" for r in results):
        sys.exit(EXIT_FAILED)
