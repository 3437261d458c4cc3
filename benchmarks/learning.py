"""Learning: held-out reward before and after the gated loop, with 95% intervals.

The suite's held-out tasks are split in two: the first --gate-tasks are what the loop's gate reruns
to decide on proposals, the next --eval-tasks are touched only here, before the loop and after it
(same tasks, same seed), so the "after" figure is not the gate's own selection. Then:

    eval run (no lessons) → `lessonlab loop --auto-accept gated` for --rounds → eval run (lessons accepted)

Prints `name: value` lines: held-out mean reward before and after (mean over tasks, 95% t
interval over tasks), the paired per-task lift, lessons accepted (and held/rejected), the tokens the
lessons add to the system prompt (estimate: characters / 4) and the wall time.

    .venv/bin/python benchmarks/learning.py --suite strawberry --endpoint local --rounds 2 --samples 2
    .venv/bin/python benchmarks/learning.py --suite arithmetic --endpoint my-vllm --reflect-endpoint openai \\
        --rounds 3 --samples 4 --train-tasks 20 --gate-tasks 10 --eval-tasks 18
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from pathlib import Path

from lessonlab.core import formatting
from lessonlab.core.impact import matched_lift, paired_lift
from lessonlab.core.lessons import estimate_tokens, list_proposals
from lessonlab.core.models.local_model import endpoint_base_url
from lessonlab.core.loop import LoopOptions, run_loop
from lessonlab.core.runs.runner import create_run, execute_run
from lessonlab.core.settings import load_settings
from lessonlab.core.lessons.snapshots import base_prompt, current_snapshot
from lessonlab.core.tasks.suites import Suite, load_suite
from lessonlab.core.storage.workspace import open_workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", required=True)
    parser.add_argument("--endpoint", required=True, help="endpoint that attempts the tasks (e.g. local)")
    parser.add_argument("--reflect-endpoint", default=None, help="endpoint that reflects (default: --endpoint)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--train-tasks", type=int, default=6)
    parser.add_argument("--gate-tasks", type=int, default=6, help="held-out tasks the gate reruns")
    parser.add_argument("--eval-tasks", type=int, default=10, help="held-out tasks used only for before/after")
    parser.add_argument("--gate-min-tasks", type=int, default=5, help="as `loop --gate-min-tasks`")
    parser.add_argument("--max-gated", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=128, help="max tokens per rollout")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workspace", type=Path, default=None, help="keep the workspace here (default: a temp file)")
    args = parser.parse_args()

    settings = load_settings()
    endpoint = settings.endpoint(args.endpoint)
    reflector = settings.endpoint(args.reflect_endpoint) if args.reflect_endpoint else endpoint
    suite = load_suite(args.suite)
    train = suite.select("train", args.train_tasks)
    heldout = suite.select("heldout")
    gate_tasks, eval_tasks = heldout[:args.gate_tasks], heldout[args.gate_tasks:args.gate_tasks + args.eval_tasks]
    if len(eval_tasks) < 3:
        sys.exit(f"suite {suite.name} has {len(heldout)} held-out tasks: not enough for {args.gate_tasks} gate "
                 f"tasks and at least 3 evaluation tasks")
    loop_suite = Suite(suite.name, suite.source, tuple(train + gate_tasks))
    options = LoopOptions(rounds=args.rounds, samples=args.samples, gated=True, max_gated=args.max_gated,
                          gate_min_tasks=args.gate_min_tasks,
                          max_tokens=args.max_tokens, seed=args.seed)

    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        url = stack.enter_context(endpoint_base_url(endpoint, on_status=_status))
        reflect_url = (url if reflector.name == endpoint.name
                       else stack.enter_context(endpoint_base_url(reflector, on_status=_status)))
        ws = open_workspace(args.workspace or Path(tmp) / "learning.db")

        def evaluate(label: str) -> str:
            snapshot = current_snapshot(ws, settings, suite.name)
            run_id = create_run(ws, suite, eval_tasks, endpoint=endpoint, snapshot=snapshot, samples=args.samples,
                                split="heldout", params={"max_tokens": args.max_tokens}, seed=args.seed,
                                note=f"learning benchmark: evaluation {label}")
            result = asyncio.run(execute_run(ws, run_id, endpoint, base_url=url))
            _status(f"evaluation {label}: mean reward {formatting.reward(result.mean_reward)} ({run_id}, "
                    f"{snapshot.lesson_count} lesson(s))")
            return run_id

        before = evaluate("before")
        loop = run_loop(ws, settings, loop_suite, endpoint, url, reflector, reflect_url, options, log=_status)
        after = evaluate("after")
        wall = time.perf_counter() - started

        before_mean, after_mean = _task_means(ws, before), _task_means(ws, after)
        lift = paired_lift(ws, after, before)
        final = current_snapshot(ws, settings, suite.name)
        lesson_tokens = estimate_tokens(final.system_prompt) - estimate_tokens(base_prompt(settings))
        reflection_ids = [r.reflection_id for r in loop.rounds if r.reflection_id]
        proposals = [p for rid in reflection_ids for p in list_proposals(ws, status=None, reflection_id=rid)]
        ws.close()

    print(f"endpoint: {endpoint.name} ({endpoint.model})")
    print(f"reflect_endpoint: {reflector.name} ({reflector.model})")
    print(f"suite: {suite.name} (train {len(train)}, gate {len(gate_tasks)}, evaluation {len(eval_tasks)} tasks; "
          f"{args.samples} samples each)")
    print(f"rounds: {len(loop.rounds)} of {args.rounds} ({loop.message})")
    print(f"train_reward_by_round: {', '.join(formatting.reward(r.train_reward) for r in loop.rounds)}")
    print(f"reflections_parsed: {sum(r.reflection_status == 'ok' for r in loop.rounds)}/{len(reflection_ids)}")
    print(f"proposals: {len(proposals)} ({sum(p['status'] != 'invalid' for p in proposals)} valid)")
    print(f"proposals_held: {sum(len(r.held) for r in loop.rounds)}")
    print(f"proposals_rejected_by_gate: {sum(len(r.rejected) for r in loop.rounds)}")
    print(f"heldout_before: {_mean_ci(before_mean)}")
    print(f"heldout_after: {_mean_ci(after_mean)}")
    print(f"heldout_lift: {formatting.lift(lift, units=True)} (paired per task, after − before)")
    print(f"lessons_accepted: {sum(len(r.accepted) for r in loop.rounds)}")
    print(f"lesson_tokens: {lesson_tokens}")
    print(f"wall_seconds: {wall:.1f}")


def _task_means(ws, run_id: str) -> list[float]:
    """Mean reward per task of a run (tasks whose every rollout failed are left out)."""
    rows = ws.query("SELECT task_id, AVG(reward) AS mean FROM rollouts WHERE run_id = ? AND reward IS NOT NULL"
                    " GROUP BY task_id ORDER BY task_id", (run_id,))
    return [r["mean"] for r in rows]


def _mean_ci(values: list[float]) -> str:
    """'0.250 [0.100, 0.400] (10 tasks)': mean over tasks with a 95% t interval over tasks."""
    stats = matched_lift(values)
    if not stats.enough_data:
        return f"{formatting.reward(sum(values) / len(values) if values else None)} (too few tasks for an interval)"
    return f"{stats.lift:.3f} [{stats.ci_low:.3f}, {stats.ci_high:.3f}] ({stats.n_units} tasks)"


def _status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
