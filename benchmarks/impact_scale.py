"""Impact at scale: 1,000,000 rollouts over 200 tasks, 50 lessons and 100 snapshots.

Prints `name: value` lines: build time, time of the full impact table and of one lesson's impact. Targets: table ≤ 2 s, one lesson ≤ 200 ms.
"""
from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from lessonlab.core import impact
from lessonlab.core.storage.workspace import open_workspace


def build(path: Path, rollouts: int, tasks: int, lessons: int, snapshots: int, seed: int = 1) -> None:
    """Fill a workspace with synthetic lessons, snapshots, runs and rollouts (bulk inserts)."""
    rng = random.Random(seed)
    ws = open_workspace(path)
    stamp = "2026-01-01T00:00:00.000Z"
    with ws.transaction():
        ws.conn.executemany(
            "INSERT INTO lessons (id, status, origin, current_version_id, created_at, updated_at)"
            " VALUES (?, 'active', 'human', ?, ?, ?)",
            [(f"les_{i:04d}", f"lv_{i:04d}", stamp, stamp) for i in range(lessons)],
        )
        ws.conn.executemany(
            "INSERT INTO lesson_versions (id, lesson_id, version, text, tokens_est, author, created_at)"
            " VALUES (?, ?, 1, ?, 10, 'human', ?)",
            [(f"lv_{i:04d}", f"les_{i:04d}", f"Lesson number {i}.", stamp) for i in range(lessons)],
        )
        members = {}
        for s in range(snapshots):
            chosen = sorted(rng.sample(range(lessons), rng.randint(0, min(lessons, 12))))
            members[s] = chosen
            ws.conn.execute(
                "INSERT INTO snapshots (id, hash, system_prompt, base_prompt, lesson_count, created_at)"
                " VALUES (?, ?, ?, 'base', ?, ?)",
                (f"snap_{s:04d}", f"h{s}", f"prompt {s}", len(chosen), stamp),
            )
            ws.conn.executemany(
                "INSERT INTO snapshot_lessons VALUES (?, ?, ?, ?)",
                [(f"snap_{s:04d}", pos, f"les_{l:04d}", f"lv_{l:04d}") for pos, l in enumerate(chosen)],
            )
        ws.conn.executemany(
            "INSERT INTO tasks (id, suite, name, split, content_hash, prompt_json, verifier_json, created_at)"
            " VALUES (?, 'bench', ?, 'train', 'h', '\"p\"', '{}', ?)",
            [(f"t_{t:04d}", f"task{t}", stamp) for t in range(tasks)],
        )
        ws.conn.executemany(
            "INSERT INTO runs (id, suite, split, samples, endpoint, model, server_model, snapshot_id, status,"
            " created_at) VALUES (?, 'bench', 'train', 1, 'e', 'm', 'm', ?, 'completed', ?)",
            [(f"run_{s:04d}", f"snap_{s:04d}", stamp) for s in range(snapshots)],
        )
        effect = {l: rng.uniform(-0.1, 0.1) for l in range(lessons)}

        def rows():
            for i in range(rollouts):
                s = i % snapshots
                t = (i // snapshots) % tasks
                p = 0.5 + sum(effect[l] for l in members[s])
                reward = 1.0 if rng.random() < min(max(p, 0.0), 1.0) else 0.0
                yield (f"ro_{i:08d}", f"run_{s:04d}", f"t_{t:04d}", i, f"snap_{s:04d}", "ok", reward, "m", stamp)

        ws.conn.executemany(
            "INSERT INTO rollouts (id, run_id, task_id, sample_index, snapshot_id, status, reward, model, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows(),
        )
    ws.conn.execute("ANALYZE")
    ws.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rollouts", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--lessons", type=int, default=50)
    parser.add_argument("--snapshots", type=int, default=100)
    parser.add_argument("--workspace", type=Path, default=None, help="Reuse/keep this file.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.workspace or Path(tmp) / "impact.db"
        if not path.exists():
            started = time.perf_counter()
            build(path, args.rollouts, args.tasks, args.lessons, args.snapshots)
            print(f"build_s: {time.perf_counter() - started:.1f}")
        ws = open_workspace(path)
        started = time.perf_counter()
        table = impact.impact_table(ws)
        table_s = time.perf_counter() - started
        assert len(table) == args.lessons
        lesson_id = table[len(table) // 2].lesson_id
        started = time.perf_counter()
        impact.lesson_impact(ws, lesson_id)
        one_ms = (time.perf_counter() - started) * 1000
        ws.close()
    print(f"rollouts: {args.rollouts}")
    print(f"lessons_with_enough_data: {sum(r.observational.enough_data for r in table)}")
    print(f"impact_table_s: {table_s:.3f}")
    print(f"one_lesson_impact_ms: {one_ms:.1f}")


if __name__ == "__main__":
    main()
