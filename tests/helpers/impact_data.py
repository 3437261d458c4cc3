"""Rollouts with chosen rewards under chosen lessons, written straight into a workspace (for impact figures)."""
from __future__ import annotations

from lessonlab.core import lessons
from lessonlab.core.lessons.snapshots import base_prompt, snapshot_for_lessons
from lessonlab.core.storage.workspace import new_id, now, open_workspace


def add_lesson(ws, text):
    change = lessons.add_lesson(ws, text)
    return lessons.get_lesson(ws, change.lesson_ids[0])


def snapshot(ws, *lesson_objs):
    return snapshot_for_lessons(ws, base_prompt(), list(lesson_objs)).id


def put_rollouts(ws, snap_id, rewards_by_task: dict[str, list[float]], model="m", suite="s"):
    """Insert a run under snap_id with the given rewards per task name; return the run id."""
    run_id = new_id("run")
    with ws.transaction():
        ws.conn.execute(
            "INSERT INTO runs (id, suite, split, samples, endpoint, model, server_model, snapshot_id, status,"
            " created_at) VALUES (?, ?, 'train', 1, 'e', ?, ?, ?, 'completed', ?)",
            (run_id, suite, model, model, snap_id, now()),
        )
        for position, (name, rewards) in enumerate(rewards_by_task.items()):
            task_id = f"t_{suite}_{name}"
            ws.conn.execute(
                "INSERT OR IGNORE INTO tasks (id, suite, name, split, content_hash, prompt_json, verifier_json,"
                " created_at) VALUES (?, ?, ?, 'train', 'h', '\"p\"', '{}', ?)", (task_id, suite, name, now()))
            ws.conn.execute("INSERT INTO run_tasks VALUES (?, ?, ?)", (run_id, position, task_id))
            for i, reward in enumerate(rewards):
                ws.conn.execute(
                    "INSERT INTO rollouts (id, run_id, task_id, sample_index, snapshot_id, status, reward, model,"
                    " created_at) VALUES (?, ?, ?, ?, ?, 'ok', ?, ?, ?)",
                    (new_id("ro", 6), run_id, task_id, i, snap_id, reward, model, now()))
    return run_id


def thin_and_unsettled(path):
    """Two lessons: one seen on 2 tasks only (4 rollouts per task compared), one on 6 tasks whose interval includes 0."""
    ws = open_workspace(path)
    thin, unsettled = add_lesson(ws, "Check twice."), add_lesson(ws, "Write the answer last.")
    put_rollouts(ws, snapshot(ws), {name: [0.0, 0.0] for name in ["u0", "u1", *(f"t{i}" for i in range(6))]})
    put_rollouts(ws, snapshot(ws, thin), {"u0": [1.0, 1.0], "u1": [1.0, 1.0]})
    put_rollouts(ws, snapshot(ws, unsettled), {f"t{i}": [r, 0.0] for i, r in enumerate([1.0, 0.0, 0.0, 1.0, 0.0, 0.0])})
    ws.close()
    return thin.id, unsettled.id
