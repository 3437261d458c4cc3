"""Runs: tasks × samples sent concurrently to one endpoint under one snapshot, each rollout stored as it finishes.

`create_run` records what a run will do; `execute_run` does it through `execution.RunExecution`
(plan → claim → send one rollout → verify → write → finish), where sending is the `senders` seam.
"""
from __future__ import annotations

import json
import random
import threading
from typing import Callable

from lessonlab.core import ids
from lessonlab.core.models import llm_client
from lessonlab.core.runs.agent_loop import ToolboxFactory
from lessonlab.core.runs.execution import RunError, RunExecution, RunProgress, RunResult
from lessonlab.core.runs.jobs import rollout_seed, task_tool_fields
from lessonlab.core.settings import Endpoint, SettingsError, check_params
from lessonlab.core.lessons.snapshots import Snapshot
from lessonlab.core.tasks.suites import Suite, Task
from lessonlab.core.tools import check_tasks_trusted
from lessonlab.core.verifiers import DEFAULT_VERIFY_TIMEOUT
from lessonlab.core.runs.writer import WRITE_PATIENCE_SECONDS
from lessonlab.core.storage.workspace import Workspace, new_id, now

__all__ = ["RunError", "RunProgress", "RunResult", "create_run", "execute_run", "rollout_seed", "store_tasks",
           "task_row_id", "task_tool_fields"]

ProgressCallback = Callable[[RunProgress], None]


def task_row_id(suite: str, task: Task) -> str:
    """Stable id of a task's content within a suite (a changed prompt or verifier is a new task row)."""
    return ids.task_id(suite, task.id, task.content_hash)


def store_tasks(ws: Workspace, suite: Suite, tasks: list[Task]) -> list[str]:
    """Insert the tasks (once) and return their row ids in order."""
    ids = []
    stamp = now()
    with ws.transaction():
        for task in tasks:
            tid = task_row_id(suite.name, task)
            ids.append(tid)
            ws.conn.execute(
                "INSERT OR IGNORE INTO tasks (id, suite, name, split, content_hash, prompt_json, verifier_json,"
                " metadata_json, created_at, tools_json, max_turns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    tid, suite.name, task.id, task.split, task.content_hash,
                    json.dumps(task.to_dict()["prompt"]), json.dumps(task.verifier),
                    json.dumps(task.metadata), stamp,
                    json.dumps(list(task.tools)) if task.tools else None, task.max_turns,
                ),
            )
    return ids


def create_run(
    ws: Workspace,
    suite: Suite,
    tasks: list[Task],
    *,
    endpoint: Endpoint,
    snapshot: Snapshot,
    samples: int,
    split: str,
    limit: int | None = None,
    concurrency: int = 4,
    params: dict | None = None,
    seed: int | None = None,
    trust_verifiers: bool = False,
    kind: str = "run",
    note: str | None = None,
) -> str:
    """Record a planned run (tasks, snapshot, params) in one transaction and return its id."""
    if samples < 1:
        raise RunError("--samples must be at least 1")
    if concurrency < 1:
        raise RunError("--concurrency must be at least 1")
    if not tasks:
        raise RunError(f"suite {suite.name!r} has no tasks in split {split!r}")
    check_tasks_trusted(tasks, trust_verifiers, suite.source)  # a python tool set is refused before anything is written
    merged = {**endpoint.params, **{k: v for k, v in (params or {}).items() if v is not None}}
    try:
        check_params(merged)
    except SettingsError as exc:
        raise RunError(str(exc)) from None
    if seed is None:
        seed = random.randrange(2**31)
    run_id = new_id("run")
    with ws.transaction():
        task_ids = store_tasks(ws, suite, tasks)
        ws.db["runs"].insert(
            {
                "id": run_id,
                "kind": kind,
                "source": suite.source,
                "suite": suite.name,
                "split": split,
                "task_limit": limit,
                "samples": samples,
                "endpoint": endpoint.name,
                "base_url": endpoint.base_url,
                "model": endpoint.model,
                "snapshot_id": snapshot.id,
                "params_json": json.dumps(merged, sort_keys=True),
                "concurrency": concurrency,
                "seed": seed,
                "status": "pending",
                "n_planned": len(task_ids) * samples,
                "trust_verifiers": int(trust_verifiers),
                "note": note,
                "created_at": now(),
            }
        )
        ws.db["run_tasks"].insert_all(
            {"run_id": run_id, "position": i, "task_id": tid} for i, tid in enumerate(task_ids)
        )
    return run_id


async def execute_run(
    ws: Workspace,
    run_id: str,
    endpoint: Endpoint,
    *,
    base_url: str | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    retry: llm_client.RetryPolicy = llm_client.RetryPolicy(),
    write_patience: float = WRITE_PATIENCE_SECONDS,
    verify_timeout: float = DEFAULT_VERIFY_TIMEOUT,
    toolboxes: ToolboxFactory | None = None,
) -> RunResult:
    """Send the run's missing rollouts; on cancel (event or task cancellation) mark it interrupted."""
    execution = RunExecution(ws, run_id, endpoint, base_url=base_url, progress=progress, cancel=cancel, retry=retry,
                             write_patience=write_patience, verify_timeout=verify_timeout, toolboxes=toolboxes)
    return await execution.execute()
