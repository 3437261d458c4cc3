"""Reflection parse rate: N reflections over rollouts of a built-in suite, on the embedded model by default.

One run of the suite's first train tasks (× samples) on the endpoint, then N reflections, each over
the rollouts of a few tasks drawn at random (seeded), so the contexts differ. Prints `name: value`
lines: parse_rate (reflections whose reply parsed into analysis + operations), proposals_per_reflection
(valid, i.e. pending, proposals), seconds_per_reflection, and the mode the endpoint answered in.
Target on the embedded model: parse_rate ≥ 0.9.

    .venv/bin/python benchmarks/reflection_parse.py                      # 20 reflections on `local`
    .venv/bin/python benchmarks/reflection_parse.py --n 10 --endpoint my-vllm --suite arithmetic
    .venv/bin/python benchmarks/reflection_parse.py --n 10 --mode text     # without a schema, for comparison
"""
from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from lessonlab.core import reflection as R
from lessonlab.core.models.local_model import endpoint_base_url
from lessonlab.core.runs.runner import create_run, execute_run
from lessonlab.core.settings import load_settings
from lessonlab.core.lessons.snapshots import current_snapshot
from lessonlab.core.tasks.suites import load_suite
from lessonlab.core.storage.workspace import open_workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20, help="reflections (default 20)")
    parser.add_argument("--suite", default="strawberry")
    parser.add_argument("--endpoint", default="local")
    parser.add_argument("--tasks", type=int, default=8, help="train tasks in the run (default 8)")
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--tasks-per-reflection", type=int, default=3)
    parser.add_argument("--rollout-max-tokens", type=int, default=128)
    parser.add_argument("--context-tokens", type=int, default=None, help="reflection context budget override")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mode", choices=R.MODES, default=None,
                        help="start from this response mode instead of the endpoint's (e.g. text, for comparison)")
    parser.add_argument("--workspace", type=Path, default=None, help="keep the workspace here (default: a temp file)")
    args = parser.parse_args()

    settings = load_settings()
    endpoint = settings.endpoint(args.endpoint)
    suite = load_suite(args.suite)
    tasks = suite.select("train", args.tasks)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp, endpoint_base_url(endpoint, on_status=_status) as url:
        ws = open_workspace(args.workspace or Path(tmp) / "bench.db")
        if args.mode:
            R.remember_mode(ws, endpoint, args.mode, "set by benchmarks/reflection_parse.py --mode")
        started = time.perf_counter()
        run_id = create_run(ws, suite, tasks, endpoint=endpoint, snapshot=current_snapshot(ws, settings, suite.name),
                            samples=args.samples, split="train", params={"max_tokens": args.rollout_max_tokens},
                            seed=args.seed, kind="benchmark", note="reflection_parse benchmark")
        run = asyncio.run(execute_run(ws, run_id, endpoint, base_url=url))
        run_seconds = time.perf_counter() - started
        by_task: dict[str, list[str]] = {}
        for row in ws.query("SELECT id, task_id FROM rollouts WHERE run_id = ? AND status = 'ok' ORDER BY id",
                            (run_id,)):
            by_task.setdefault(row["task_id"], []).append(row["id"])
        if not by_task:
            sys.exit(f"the run {run_id} produced no scored rollouts; nothing to reflect on")
        results, seconds = [], []
        for i in range(args.n):
            chosen = rng.sample(sorted(by_task), min(args.tasks_per_reflection, len(by_task)))
            ids = [rid for task in chosen for rid in by_task[task]]
            t0 = time.perf_counter()
            result = R.reflect(ws, endpoint, base_url=url, rollout_ids=ids, settings=settings,
                               context_tokens=args.context_tokens)
            seconds.append(time.perf_counter() - t0)
            results.append(result)
            _status(f"reflection {i + 1}/{args.n}: {result.status}, {result.n_pending} pending, "
                    f"{result.n_invalid} invalid, {seconds[-1]:.1f} s" + (f" ({result.error})" if result.error else ""))
        ws.close()

    n = len(results)
    parsed = [r for r in results if r.status == "ok"]
    modes = Counter(r.response_mode for r in results)
    print(f"endpoint: {endpoint.name} ({endpoint.model})")
    print(f"suite: {suite.name}")
    print(f"rollouts: {run.n_done} ({len(tasks)} tasks × {args.samples}), mean reward "
          f"{run.mean_reward if run.mean_reward is None else round(run.mean_reward, 3)}, {run_seconds:.1f} s")
    print(f"reflections: {n}")
    print(f"response_mode: {', '.join(f'{m} × {c}' for m, c in modes.most_common())}")
    print(f"reflections_with_a_valid_proposal: {sum(r.n_pending > 0 for r in results) / n:.2f}")
    print(f"invalid_proposals_per_reflection: {sum(r.n_invalid for r in results) / n:.2f}")
    print(f"seconds_per_reflection_median: {statistics.median(seconds):.1f}")
    print(f"proposals_per_reflection: {sum(r.n_pending for r in results) / n:.2f}")
    print(f"seconds_per_reflection: {sum(seconds) / n:.1f}")
    print(f"parse_rate: {len(parsed) / n:.2f}")


def _status(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
