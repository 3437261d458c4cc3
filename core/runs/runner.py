"""Runs: tasks × samples sent concurrently to one endpoint under one snapshot, each rollout stored as it finishes."""
from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import random
import threading
from dataclasses import dataclass, field
from typing import Callable

from lessonlab.core.errors import BadInput
from lessonlab.core.models import llm_client
from lessonlab.core.runs import owner as run_owner
from lessonlab.core.settings import Endpoint, SettingsError, check_params
from lessonlab.core.lessons.snapshots import Snapshot, build_messages, load_snapshot
from lessonlab.core.tasks.suites import Suite, Task
from lessonlab.core.tools import check_tasks_trusted
from lessonlab.core.verifiers import DEFAULT_VERIFY_TIMEOUT, VerifierPool
from lessonlab.core.runs.writer import WRITE_PATIENCE_SECONDS, Finished, RolloutWriter, RunWriteError
from lessonlab.core.storage import workspace as _workspace
from lessonlab.core.storage.workspace import Workspace, new_id, now

log = logging.getLogger("lessonlab.runner")

ProgressCallback = Callable[["RunProgress"], None]


class RunError(BadInput, RuntimeError):
    """A run cannot be started or resumed."""


@dataclass
class RunProgress:
    """Where a run stands; passed to the progress callback after every rollout."""

    run_id: str
    done: int
    total: int
    errors: int
    mean_reward: float | None
    last_rollout_id: str | None = None


@dataclass
class RunResult:
    """What a finished (or interrupted) run produced."""

    run_id: str
    status: str
    n_planned: int
    n_done: int
    n_errors: int
    mean_reward: float | None
    new_rollout_ids: list[str] = field(default_factory=list)


def task_row_id(suite: str, task: Task) -> str:
    """Stable id of a task's content within a suite (a changed prompt or verifier is a new task row)."""
    digest = hashlib.sha256(f"{suite}\0{task.id}\0{task.content_hash}".encode()).hexdigest()
    return f"t_{digest[:12]}"


def task_tool_fields(row: dict) -> dict:
    """`tools` and `max_turns` of a stored task row, as `toolbox_for` reads them (nothing for a one-call task)."""
    fields: dict = {}
    if row.get("tools_json"):
        fields["tools"] = json.loads(row["tools_json"])
    if row.get("max_turns") is not None:
        fields["max_turns"] = row["max_turns"]
    return fields


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


def rollout_seed(run_seed: int, task_id: str, sample_index: int) -> int:
    """The seed for one sample: the same task and sample index get the same seed under the same run seed."""
    digest = hashlib.sha256(f"{run_seed}:{task_id}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass
class _Job:
    task_id: str
    sample_index: int
    messages: list[dict]
    verifier: dict
    task: dict


def _pending_jobs(ws: Workspace, run: dict, snapshot: Snapshot) -> list[_Job]:
    rows = ws.query(
        "SELECT rt.position, t.* FROM run_tasks rt JOIN tasks t ON t.id = rt.task_id"
        " WHERE rt.run_id = ? ORDER BY rt.position",
        (run["id"],),
    )
    done = {
        (r["task_id"], r["sample_index"])
        for r in ws.query("SELECT task_id, sample_index FROM rollouts WHERE run_id = ?", (run["id"],))
    }
    jobs = []
    # Sample-major order: every task gets its first sample before any gets a second,
    # so an interrupted run still covers as many tasks as possible.
    for sample_index in range(run["samples"]):
        for row in rows:
            if (row["id"], sample_index) in done:
                continue
            prompt = json.loads(row["prompt_json"])
            verifier = json.loads(row["verifier_json"])
            task_messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
            jobs.append(
                _Job(
                    task_id=row["id"],
                    sample_index=sample_index,
                    messages=build_messages(snapshot.system_prompt, task_messages),
                    verifier=verifier,
                    task={
                        "id": row["name"],
                        "suite": row["suite"],
                        "prompt": prompt,
                        "verifier": verifier,
                        "metadata": json.loads(row["metadata_json"]),
                        "split": row["split"],
                        **task_tool_fields(row),
                    },
                )
            )
    return jobs


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
) -> RunResult:
    """Send the run's missing rollouts; on cancel (event or task cancellation) mark it interrupted."""
    run = ws.one("SELECT * FROM runs WHERE id = ?", (run_id,))
    if run is None:
        raise RunError(f"no run {run_id}")
    snapshot = load_snapshot(ws, run["snapshot_id"])
    jobs = _pending_jobs(ws, run, snapshot)
    params = json.loads(run["params_json"])
    _check_same_server(run, endpoint, base_url)
    client = llm_client.make_client(endpoint, base_url)
    try:
        run_owner.claim(ws, run_id, base_url)  # RunBusy when another live process executes it
    except BaseException:
        await client.close()
        raise
    state = ws.one("SELECT n_done, n_errors, reward_sum FROM runs WHERE id = ?", (run_id,))
    counters = {"done": state["n_done"], "errors": state["n_errors"], "sum": state["reward_sum"]}
    total = run["n_planned"]
    new_ids: list[str] = []
    cancel = cancel or threading.Event()
    queue: asyncio.Queue[_Job] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)

    def report(last_id: str | None) -> None:
        if progress is None:
            return
        scored = counters["done"] - counters["errors"]
        progress(
            RunProgress(
                run_id=run_id,
                done=counters["done"],
                total=total,
                errors=counters["errors"],
                mean_reward=counters["sum"] / scored if scored else None,
                last_rollout_id=last_id,
            )
        )

    def written(rows) -> None:
        for row in rows:
            new_ids.append(row.rollout_id)
            counters["done"] += 1
            counters["errors"] += int(row.failed)
            counters["sum"] += row.reward or 0.0
        report(rows[-1].rollout_id)

    writer = RolloutWriter(ws, run, snapshot.id, written, patience=write_patience)
    trust = bool(run["trust_verifiers"])
    verifiers = VerifierPool(timeout=verify_timeout)

    async def worker() -> None:
        while not cancel.is_set():
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            seed = rollout_seed(run["seed"] or 0, job.task_id, job.sample_index)
            result = error = None
            try:
                result = await llm_client.chat(client, run["model"], job.messages, {**params, "seed": seed}, retry=retry)
            except llm_client.ModelCallError as exc:
                error = exc
            if cancel.is_set() and error is not None:
                return  # a call broken by the cancel itself is not a real failure; resume redoes it
            item = Finished(job.task_id, job.sample_index, seed, job.messages, result, error)
            if result is not None:
                # llm_client made the reply storable (and counted what it replaced): score exactly that.
                item.output, item.replaced = result.output, result.replaced
                # Off the event loop, with a time limit where a verifier could run for ever.
                item.verdict = await verifiers.verify(job.verifier, item.output, task=job.task, trust=trust)
            writer.add(item)

    async def watch_cancel() -> None:
        while not cancel.is_set():
            await asyncio.sleep(0.05)

    report(None)
    status = "completed"
    try:
        workers = [asyncio.create_task(worker()) for _ in range(min(run["concurrency"], max(1, len(jobs))))]
        watcher = asyncio.create_task(watch_cancel())
        all_workers = asyncio.gather(*workers)
        # On Ctrl-C the gather ends with CancelledError nobody awaits; mark it seen.
        all_workers.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        done, _ = await asyncio.wait({all_workers, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if watcher in done:
            # Cancel requested from outside (GUI button): stop the in-flight calls now.
            all_workers.cancel()
            try:
                await all_workers
            except asyncio.CancelledError:
                pass
            status = "interrupted"
        else:
            watcher.cancel()
            await all_workers  # re-raises a bug in a worker
        await writer.drain()
    except asyncio.CancelledError:
        # Ctrl-C under asyncio.run cancels us: keep what finished, record the interruption, re-raise.
        cancel.set()
        try:
            writer.drain_now(_workspace.BUSY_TIMEOUT_SECONDS)
        finally:
            _finish(ws, run_id, "interrupted")
        raise
    except RunWriteError:
        _finish(ws, run_id, "interrupted")  # the unwritten rollouts are redone by --resume
        raise
    except BaseException:
        with contextlib.suppress(RunWriteError):
            writer.drain_now(_workspace.BUSY_TIMEOUT_SECONDS)
        _finish(ws, run_id, "interrupted" if writer.pending else "failed")
        raise
    finally:
        writer.close()
        await verifiers.close()
        try:
            await client.close()
        except Exception:  # noqa: BLE001 - closing a client must not hide the real outcome
            log.debug("closing client failed", exc_info=True)
    if status == "completed":
        row = ws.one("SELECT n_done, n_errors FROM runs WHERE id = ?", (run_id,))
        if row["n_done"] < total:
            status = "interrupted"
        elif row["n_errors"] == row["n_done"] and row["n_done"] > 0:
            status = "failed"  # nothing came back at all: the work failed
    _finish(ws, run_id, status)
    final = ws.one("SELECT * FROM runs WHERE id = ?", (run_id,))
    return RunResult(
        run_id=run_id,
        status=status,
        n_planned=final["n_planned"],
        n_done=final["n_done"],
        n_errors=final["n_errors"],
        mean_reward=final["mean_reward"],
        new_rollout_ids=new_ids,
    )


def _check_same_server(run: dict, endpoint: Endpoint, base_url: str | None) -> None:
    """RunError when finishing a run would send its remaining rollouts to another server than its first ones."""
    url = (base_url or endpoint.base_url or "").rstrip("/")
    recorded = (run["base_url"] or "").rstrip("/")
    if endpoint.is_local or not run["n_done"] or not recorded or url == recorded:
        return
    raise RunError(f"run {run['id']} started on {recorded}; finishing it on {url} would mix servers in one run "
                   "(resume it with its own endpoint, or start a new run)")


def _finish(ws: Workspace, run_id: str, status: str) -> None:
    with ws.transaction():
        ws.conn.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, now(), run_id))
