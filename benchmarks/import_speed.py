"""Import speed: 100,000 generated chat-JSONL rollouts imported with `lessonlab import` (core.transfer).

Prints `name: value` lines: rollouts per second and peak memory of the import (the process's maximum
resident set, read right after the import), the rate of a reference that inserts the very same rows (read
back from the import's workspace) with plain `sqlite3.executemany` into a fresh workspace of the same schema
(rows in memory beforehand, only the inserts and the commit timed), and the ratio of the two. Targets: ratio ≥ 0.5, peak ≤ 300 MB.

Then the imported run goes back out: `export rollouts` (chat JSONL), `export sft` and `export dpo` over the
whole run, each as rollouts read per second (best of three runs). Target: ≥ 50,000/s.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

from lessonlab.core.transfer import (ImportOptions, TransferError, export_dpo, export_rollouts, export_sft,
                                     import_file)
from lessonlab.core.storage.workspace import open_workspace

SYSTEM = "You are a careful assistant. Think briefly, then give the final answer on the last line."


def generate(path: Path, rollouts: int, tasks: int, seed: int = 1) -> None:
    """Write `rollouts` chat-JSONL lines over `tasks` tasks (streamed, never held in memory)."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as out:
        for i in range(rollouts):
            task = i % tasks
            a, b = task * 7 % 1000, task * 13 % 1000
            right = rng.random() < 0.6
            answer = a + b if right else a + b + rng.randint(1, 9)
            record = {
                "messages": [
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"Task {task}: what is {a} + {b}? Show the carry steps."},
                    {"role": "assistant", "content": f"Units first, then tens and hundreds with carries "
                                                     f"({rng.randint(0, 10**6)}).\nAnswer: {answer}"},
                ],
                "reward": 1.0 if right else 0.0,
                "task_id": f"task-{task}",
                "metadata": {"a": a, "b": b},
                "model": "bench-model",
            }
            out.write(json.dumps(record) + "\n")


def peak_mb() -> float:
    """The process's peak resident memory in MB (ru_maxrss is KB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# The tables an import writes, in the order their rows must go in (foreign keys).
TABLES = ("snapshots", "runs", "tasks", "run_tasks", "rollouts", "rollout_texts")


def reference(imported: Path, db_path: Path) -> float:
    """Rollouts per second of plain executemany of the import's own rows into the same schema, one transaction."""
    source = open_workspace(imported)
    rows = {table: source.conn.execute(f"SELECT * FROM {table} ORDER BY rowid").fetchall() for table in TABLES}
    source.close()
    ws = open_workspace(db_path)
    conn = ws.conn
    started = time.perf_counter()
    conn.execute("BEGIN IMMEDIATE")
    for table in TABLES:
        marks = ", ".join("?" * len(rows[table][0]))
        conn.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - started
    ws.close()
    return len(rows["rollouts"]) / elapsed


def export_figures(db_path: Path, folder: Path, repeats: int = 3) -> dict[str, tuple[float, float]]:
    """Per export: (rollouts per second, seconds) over the whole imported run, the best of `repeats` runs
    (a shared machine's noise only ever slows a run down, so the fastest is the closest to the code's own cost)."""
    ws = open_workspace(db_path)
    run_id = ws.one("SELECT id FROM runs")["id"]
    total = ws.one("SELECT COUNT(*) AS n FROM rollouts")["n"]
    figures = {}
    for name, export in (("rollouts", export_rollouts), ("sft", export_sft), ("dpo", export_dpo)):
        target = folder / f"{name}.jsonl"
        best = float("inf")
        for _ in range(repeats):
            started = time.perf_counter()
            try:
                export(ws, target, runs=[run_id])
            except TransferError:  # dpo with one sample per task (--tasks = --rollouts): no pairs to time
                break
            best = min(best, time.perf_counter() - started)
            target.unlink()
        figures[name] = (total / best, best)
    ws.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=100_000)
    parser.add_argument("--tasks", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        source = folder / "rollouts.jsonl"
        generate(source, args.rollouts, args.tasks)
        ws = open_workspace(folder / "import.db")
        started = time.perf_counter()
        result = import_file(ws, source, ImportOptions())
        elapsed = time.perf_counter() - started
        ws.close()
        peak = peak_mb()
        assert result.new == args.rollouts, result
        ours = args.rollouts / elapsed
        ref = reference(folder / "import.db", folder / "reference.db")
        print(f"file_mb: {source.stat().st_size / 1e6:.1f}")
        print(f"import_seconds: {elapsed:.2f}")
        print(f"rollouts_per_s: {ours:,.0f}")
        print(f"peak_memory_mb: {peak:.0f}")
        print(f"reference_rollouts_per_s: {ref:,.0f}")
        print(f"ratio: {ours / ref:.2f}")
        for name, (rate, seconds) in export_figures(folder / "import.db", folder).items():
            if rate == 0:
                print(f"export_{name}_rollouts_per_s: n/a (nothing to export)")
                continue
            print(f"export_{name}_seconds: {seconds:.2f}")
            print(f"export_{name}_rollouts_per_s: {rate:,.0f}")


if __name__ == "__main__":
    main()
