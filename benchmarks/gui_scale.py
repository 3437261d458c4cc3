"""GUI at scale: a 1,000,000-rollout workspace opened offscreen.

Prints `name: value` lines: time to the first painted runs table, time to open the
Compare page on a task with 50 rollouts, time to scroll the runs table to the end,
and peak memory. Targets: <= 1.0 s, <= 0.5 s, <= 500 MB. First, the word diff of two
6,000-word replies (Compare's diff mode, Review, Lessons history; target <= 100 ms), and
Compare on trajectories: 200 steps with 1 MB of tool output, one column and two side by side,
from the click to the first screen of steps painted (target <= 0.3 s), the time to scroll to
the last step, and the longest the GUI thread was held over both (target <= 100 ms).

    python benchmarks/gui_scale.py [--workspace PATH] [--rollouts N] [--regenerate] [--diff-only]
                                   [--trajectory-only]

The workspace is generated once (bulk inserts in one transaction, in a child process
so its memory does not count) and reused on later runs.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASKS_PER_RUN = 500
ROLLOUTS_PER_TASK = 50


def generate(path: Path, n_rollouts: int) -> None:
    """Fill a fresh workspace with n_rollouts rollouts: each task has 50, spread over runs of 500."""
    from lessonlab.core.storage.workspace import open_workspace

    n_tasks = max(1, n_rollouts // ROLLOUTS_PER_TASK)
    n_runs = max(1, n_rollouts // TASKS_PER_RUN)
    ws = open_workspace(path)
    conn = ws.conn
    stamp = "2025-01-01T00:00:00.000Z"
    system = "You are a careful assistant."
    started = time.perf_counter()
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("BEGIN")
    conn.execute("INSERT INTO snapshots VALUES ('snap_bench', 'bench', ?, ?, 0, ?)", (system, system, stamp))
    conn.executemany(
        "INSERT INTO tasks (id, suite, name, split, content_hash, prompt_json, verifier_json, metadata_json,"
        " created_at) VALUES (?, 'bench', ?, 'train', ?, ?, ?, '{}', ?)",
        ((f"t_{i:08d}", f"bench-{i}", str(i), json.dumps(f"What is {i} + 1?"),
          json.dumps({"kind": "numeric", "answer": i + 1}), stamp) for i in range(n_tasks)),
    )
    conn.executemany(
        "INSERT INTO runs (id, kind, suite, split, samples, endpoint, model, server_model, snapshot_id, status,"
        " n_planned, n_done, n_errors, reward_sum, mean_reward, created_at, started_at, finished_at)"
        " VALUES (?, 'run', 'bench', 'train', 1, 'bench', 'bench-model', 'bench-model', 'snap_bench', 'completed',"
        " ?, ?, 0, ?, ?, ?, ?, ?)",
        ((f"run_{r:08d}", TASKS_PER_RUN, TASKS_PER_RUN, TASKS_PER_RUN * (r % 10) / 10, (r % 10) / 10,
          f"2025-01-{1 + r % 28:02d}T{r % 24:02d}:{r % 60:02d}:00.{r % 1000:03d}Z", stamp, stamp)
         for r in range(n_runs)),
    )
    conn.executemany(
        "INSERT INTO run_tasks (run_id, position, task_id) VALUES (?, ?, ?)",
        ((f"run_{i // TASKS_PER_RUN:08d}", i % TASKS_PER_RUN, f"t_{i % n_tasks:08d}") for i in range(n_rollouts)),
    )

    def rollouts():
        for i in range(n_rollouts):
            reward = float((i * 2654435761) % 3 == 0)
            yield (f"ro_{i:010d}", f"run_{i // TASKS_PER_RUN:08d}", f"t_{i % n_tasks:08d}", 0, "snap_bench", i,
                   "ok", reward, "expected x, got y" if not reward else "correct", 20, 12, 150.0, "bench-model", stamp)

    conn.executemany(
        "INSERT INTO rollouts (id, run_id, task_id, sample_index, snapshot_id, seed, status, reward, feedback,"
        " prompt_tokens, completion_tokens, latency_ms, model, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rollouts(),
    )
    conn.executemany(
        "INSERT INTO rollout_texts (rollout_id, messages_json, output) VALUES (?, ?, ?)",
        ((f"ro_{i:010d}",
          json.dumps([{"role": "system", "content": system},
                      {"role": "user", "content": f"What is {i % n_tasks} + 1?"}]),
          f"Let me add.\n```python\nprint({i % n_tasks} + 1)\n```\nAnswer: {i % n_tasks + 1 + (i % 3 != 0)}")
         for i in range(n_rollouts)),
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    ws.close()
    print(f"generated: {n_rollouts} rollouts, {n_tasks} tasks, {n_runs} runs in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)


def generated_reply(rng, words: int) -> str:
    """Text shaped like a model reply: Zipf-distributed words, punctuation and line breaks."""
    vocab = [f"w{i}" for i in range(3000)] + ["the", "a", "of", "to", "Answer:", "```", "=", "1", "2"]
    weights = [1 / (i + 1) for i in range(len(vocab))]
    picked = rng.choices(vocab, weights, k=words)
    punctuation = {10: ".", 6: ","}  # sentences and clauses, as in prose
    return "".join(w + punctuation.get(i % 11, "") + ("\n" if i % 13 == 12 else " ") for i, w in enumerate(picked))


def measure_word_diff(words: int = 6000, repeats: int = 5) -> dict:
    """Median ms of core.text_diff.word_diff on two replies of `words` words: one an edit of the other, and unrelated."""
    import random
    import statistics

    from lessonlab.core.text_diff import tokens, word_diff

    rng = random.Random(1)
    first = generated_reply(rng, words)
    # a second sample of the same task: 10% of the words deleted, replaced or followed by a new one
    second = "".join(t if (r := rng.random()) >= 0.1 else "" if r < 0.033 else f"new{rng.randrange(50)} "
                     if r < 0.066 else t + f"extra{rng.randrange(50)} " for t in tokens(first))
    unrelated = generated_reply(rng, words)
    figures = {}
    for name, other in ((f"word_diff_{words}_words_ms", second), (f"word_diff_{words}_words_unrelated_ms", unrelated)):
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            word_diff(first, other)
            times.append((time.perf_counter() - started) * 1000)
        figures[name] = round(statistics.median(times), 1)
    return figures


TRAJECTORY_STEPS = 200
TRAJECTORY_RESULT_BYTES = 1_000_000 // TRAJECTORY_STEPS   # 1 MB of tool output over the trajectory


def trajectory_messages(steps: int, variant: int) -> list[dict]:
    """A prompt and `steps` steps, each calling `read` on one page and getting ~5 KB back."""
    messages = [{"role": "system", "content": "You are a research agent."},
                {"role": "user", "content": "Find the page that names the capital of Peru."}]
    page_text = ("Peru is a country in western South America. " * 200)[:TRAJECTORY_RESULT_BYTES]
    for i in range(steps - 1):
        call_id = f"call_{i}"
        page = i if i < steps // 2 or variant == 0 else i + 1   # the two rollouts part half way
        messages.append({"role": "assistant", "content": f"Reading page {page} next.", "tool_calls": [
            {"id": call_id, "type": "function",
             "function": {"name": "read", "arguments": json.dumps({"doc": "peru.txt", "page": page})}}]})
        messages.append({"role": "tool", "tool_call_id": call_id, "content": page_text})
    return messages


def generate_trajectories(path: Path) -> str:
    """A workspace with one task and two 200-step rollouts of it; returns the task id."""
    from lessonlab.core.storage.workspace import open_workspace

    ws = open_workspace(path)
    conn, stamp = ws.conn, "2025-01-01T00:00:00.000Z"
    figures = json.dumps([{"latency_ms": 120.0 + i, "prompt_tokens": 400 + 10 * i, "completion_tokens": 20}
                          for i in range(TRAJECTORY_STEPS)])
    with conn:
        conn.execute("INSERT INTO snapshots VALUES ('snap_traj', 'traj', 'agent', 'agent', 0, ?)", (stamp,))
        conn.execute("INSERT INTO tasks (id, suite, name, split, content_hash, prompt_json, verifier_json,"
                     " metadata_json, created_at) VALUES ('t_traj', 'agents', 'peru', 'train', 'h', '\"?\"',"
                     " '{\"kind\": \"contains\", \"text\": \"Lima\"}', '{}', ?)", (stamp,))
        conn.execute("INSERT INTO runs (id, kind, suite, split, samples, endpoint, model, server_model, snapshot_id,"
                     " status, n_planned, n_done, n_errors, reward_sum, mean_reward, created_at, started_at,"
                     " finished_at) VALUES ('run_traj', 'run', 'agents', 'train', 2, 'bench', 'agent', 'agent',"
                     " 'snap_traj', 'completed', 2, 2, 0, 1, 0.5, ?, ?, ?)", (stamp, stamp, stamp))
        conn.execute("INSERT INTO run_tasks (run_id, position, task_id) VALUES ('run_traj', 0, 't_traj')")
        for variant in (0, 1):
            rollout_id = f"ro_traj{variant}"
            conn.execute("INSERT INTO rollouts (id, run_id, task_id, sample_index, snapshot_id, seed, status, reward,"
                         " feedback, prompt_tokens, completion_tokens, latency_ms, model, created_at, n_steps, tool_mode)"
                         " VALUES (?, 'run_traj', 't_traj', ?, 'snap_traj', 1, 'ok', ?, 'fb', 1, 1, 1.0, 'agent', ?, ?,"
                         " 'native')", (rollout_id, variant, 1.0 - variant, stamp, TRAJECTORY_STEPS))
            conn.execute("INSERT INTO rollout_texts (rollout_id, messages_json, output, steps_json) VALUES (?, ?, ?, ?)",
                         (rollout_id, json.dumps(trajectory_messages(TRAJECTORY_STEPS, variant)),
                          "The capital of Peru is Lima.", figures))
    ws.close()
    return "t_traj"


def measure_trajectories() -> dict:
    """Compare on 200-step trajectories: seconds to the first screen of steps, then scrolling to the last step.

    Steps are built as they come into view, so opening builds one screen; the longest the GUI thread was
    held is measured (a 1 ms heartbeat timer's longest gap) while opening and while scrolling to the end.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QTimer

    from lessonlab.gui.app import application
    from lessonlab.core.storage.workspace import open_workspace
    from lessonlab.gui.compare_page import ComparePage
    from lessonlab.gui.pages import PageContext

    app = application()
    figures = {}

    def run_until(condition, timeout_ms: int = 30_000) -> None:
        loop = QEventLoop()

        def check():
            if condition():
                loop.quit()
            else:
                QTimer.singleShot(1, check)

        QTimer.singleShot(1, check)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "trajectories.db"
        task_id = generate_trajectories(path)
        ws = open_workspace(path)
        for label, columns in (("1_column", 1), ("2_columns", 2)):
            page = ComparePage(PageContext(ws))
            page.resize(1400, 900)
            page.show()
            if columns == 1:
                page.filter.setCurrentIndex(1)   # reward = 1: the first rollout only
            run_until(lambda: False, 300)        # the empty page painted first: what is measured is the task
            worst = {"gap": 0.0, "last": None}

            def beat():
                now = time.perf_counter()
                if worst["last"] is not None:
                    worst["gap"] = max(worst["gap"], now - worst["last"])
                worst["last"] = now

            heartbeat = QTimer(interval=1)
            heartbeat.timeout.connect(beat)
            heartbeat.start()
            views = lambda: [c.trajectory_view for c in page.visible_columns()]  # noqa: E731
            started = time.perf_counter()
            page.show_task(task_id)
            run_until(lambda: len(views()) == columns and all(v is not None and v.built for v in views()))
            page.repaint()
            figures[f"open_trajectory_{TRAJECTORY_STEPS}_steps_1mb_{label}_s"] = round(time.perf_counter() - started, 3)
            figures[f"trajectory_{label}_steps_built_on_open"] = sum(v.built for v in views())
            figures[f"trajectory_{label}_longest_gui_stall_opening_ms"] = round(worst["gap"] * 1000, 1)
            worst["gap"] = 0.0
            bar = page.scroll.verticalScrollBar()
            scrolled = time.perf_counter()

            def at_end() -> bool:
                bar.setValue(bar.maximum())
                return all(v.is_complete() for v in views())

            run_until(at_end)
            figures[f"trajectory_{label}_scroll_to_last_step_s"] = round(time.perf_counter() - scrolled, 3)
            figures[f"trajectory_{label}_steps_built"] = sum(v.built for v in views())
            heartbeat.stop()
            figures[f"trajectory_{label}_longest_gui_stall_scrolling_ms"] = round(worst["gap"] * 1000, 1)
            page.close()
            closing = time.perf_counter()
            page.deleteLater()   # measured apart: leaving a page of long trajectories frees their documents
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
            figures[f"trajectory_{label}_close_ms"] = round((time.perf_counter() - closing) * 1000, 1)
        ws.close()
    del app
    return figures


def measure(path: Path) -> dict:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop, QObject

    from lessonlab.gui.app import application
    from lessonlab.gui.main_window import MainWindow

    app = application()

    class PaintWatch(QObject):
        def __init__(self):
            super().__init__()
            self.painted_at = None

        def eventFilter(self, obj, event):  # noqa: N802
            if event.type() == QEvent.Type.Paint and self.painted_at is None:
                self.painted_at = time.perf_counter()
            return False

    def pump_until(condition, timeout=30.0):
        deadline = time.perf_counter() + timeout
        while not condition() and time.perf_counter() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        return condition()

    figures = {}
    t0 = time.perf_counter()
    window = MainWindow(path)
    watch = PaintWatch()
    window.page("runs").runs_view.viewport().installEventFilter(watch)
    window.show()
    pump_until(lambda: watch.painted_at is not None)
    figures["first_painted_runs_table_s"] = round(watch.painted_at - t0, 3)
    figures["runs"] = window.page("runs").runs_model.total()

    # Scroll the runs table to the end, page by page, measuring the longest stall.
    view = window.page("runs").runs_view
    bar = view.verticalScrollBar()
    worst = 0.0
    t1 = time.perf_counter()
    while True:
        step = time.perf_counter()
        bar.setValue(bar.maximum())
        QCoreApplication.processEvents()
        worst = max(worst, time.perf_counter() - step)
        model = window.page("runs").runs_model
        if not model.canFetchMore():
            break
    figures["scroll_runs_table_to_end_s"] = round(time.perf_counter() - t1, 3)
    figures["worst_scroll_step_s"] = round(worst, 3)

    # Compare page: a task with 50 rollouts, from the click to its columns painted.
    task_id = "t_00000042"
    window.page("compare").resize(1400, 800)
    t2 = time.perf_counter()
    window.compare_task(task_id, [])
    page = window.page("compare")
    pump_until(lambda: len(page.columns) == ROLLOUTS_PER_TASK and page.columns[0].rendered_with is not None)
    page.repaint()
    figures["open_compare_50_rollouts_s"] = round(time.perf_counter() - t2, 3)
    figures["compare_columns"] = len(page.columns)
    figures["compare_columns_highlighted"] = sum(c.rendered_with is not None for c in page.columns)
    figures["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    window.shutdown()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspace", type=Path, default=Path(tempfile.gettempdir()) / "lessonlab-gui-scale.db")
    parser.add_argument("--rollouts", type=int, default=1_000_000)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--diff-only", action="store_true", help="Only the word diff figures (no workspace).")
    parser.add_argument("--trajectory-only", action="store_true",
                        help="Only the word diff and trajectory figures (no large workspace).")
    parser.add_argument("--generate-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate_only:
        generate(args.workspace, args.rollouts)
        return
    for name, value in measure_word_diff().items():
        print(f"{name}: {value}")
    if args.diff_only:
        return
    for name, value in measure_trajectories().items():
        print(f"{name}: {value}")
    if args.trajectory_only:
        return
    marker = args.workspace.with_suffix(".rollouts")
    fresh = (args.regenerate or not args.workspace.exists() or not marker.exists()
             or marker.read_text().strip() != str(args.rollouts))
    if fresh:
        for suffix in ("", "-wal", "-shm"):
            Path(str(args.workspace) + suffix).unlink(missing_ok=True)
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--generate-only", "--workspace", str(args.workspace),
                        "--rollouts", str(args.rollouts)], check=True)
        marker.write_text(str(args.rollouts))
        print(f"generate_workspace_s: {time.perf_counter() - started:.1f}")
    print(f"workspace: {args.workspace}")
    print(f"rollouts: {args.rollouts}")
    for name, value in measure(args.workspace).items():
        print(f"{name}: {value}")


if __name__ == "__main__":
    main()
