"""Executing a run as small steps: plan → claim → (send one rollout → verify → write) × jobs → finish.

`RunExecution` holds what the steps share (the run row, its client, writer, verifier pool, counters).
Sending is the seam (`senders`): `choose_sender` takes the registered sender that applies to the job (the
agent loop for a task with tools) or the single call. Verifying runs in the killable verifier pool; writing goes through
`RolloutWriter` in batches. Cancelling (an event, or cancelling the asyncio task on Ctrl-C) keeps every
finished rollout and marks the run interrupted; `--resume` sends only the rollouts not stored, whole.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from dataclasses import dataclass, field
from typing import Callable

from lessonlab.core.models import llm_client
from lessonlab.core.runs import owner as run_owner
from lessonlab.core.runs import agent_loop  # noqa: F401 - registers the agent-loop sender
from lessonlab.core.runs.agent_loop import ToolboxFactory
from lessonlab.core.runs.jobs import RolloutJob, pending_jobs, rollout_seed
from lessonlab.core.runs.senders import RolloutSender, SendContext, Sent, sender_kind
from lessonlab.core.runs.trajectory import figures_json
from lessonlab.core.runs.writer import Finished, RolloutWriter, RunWriteError
from lessonlab.core.lessons.snapshots import load_snapshot
from lessonlab.core.settings import Endpoint
from lessonlab.core.storage import workspace as _workspace
from lessonlab.core.storage.workspace import Workspace, now
from lessonlab.core.errors import BadInput
from lessonlab.core.verifiers import Verdict, VerifierPool

log = logging.getLogger("lessonlab.runner")


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


def default_toolboxes(job: RolloutJob, trust: bool):
    """The task's toolbox from the tool-set registry."""
    from lessonlab.core import tools  # the tool sets; imported only by runs that have tasks with tools

    return tools.toolbox_for(job.task, trust=trust)


class RunExecution:
    """One execution of a run: the shared parts of its steps, created by `plan`, released by `close`."""

    def __init__(self, ws: Workspace, run_id: str, endpoint: Endpoint, *, base_url: str | None,
                 progress: Callable[[RunProgress], None] | None, cancel: threading.Event | None,
                 retry: llm_client.RetryPolicy, write_patience: float, verify_timeout: float,
                 toolboxes: ToolboxFactory | None = None):
        self.ws, self.run_id, self.endpoint, self.base_url = ws, run_id, endpoint, base_url
        self.progress, self.retry = progress, retry
        self.cancel = cancel or threading.Event()
        self.write_patience, self.verify_timeout = write_patience, verify_timeout
        self.toolboxes = toolboxes or default_toolboxes
        self.new_ids: list[str] = []

    # --- plan and claim ---------------------------------------------------------------------------

    def plan(self) -> None:
        """Read the run and the rollouts it still owes; RunError when it cannot go on here."""
        self.run = self.ws.one("SELECT * FROM runs WHERE id = ?", (self.run_id,))
        if self.run is None:
            raise RunError(f"no run {self.run_id}")
        self.snapshot = load_snapshot(self.ws, self.run["snapshot_id"])
        self.jobs = pending_jobs(self.ws, self.run, self.snapshot)
        self.params = json.loads(self.run["params_json"])
        check_same_server(self.run, self.endpoint, self.base_url)

    async def claim(self) -> None:
        """Open the client and take the run (RunBusy when another live process executes it)."""
        self.client = llm_client.make_client(self.endpoint, self.base_url, lean=True)
        try:
            run_owner.claim(self.ws, self.run_id, self.base_url)
        except BaseException:
            await self.client.close()
            raise
        state = self.ws.one("SELECT n_done, n_errors, reward_sum FROM runs WHERE id = ?", (self.run_id,))
        self.counters = {"done": state["n_done"], "errors": state["n_errors"], "sum": state["reward_sum"]}
        self.writer = RolloutWriter(self.ws, self.run, self.snapshot.id, self._written, patience=self.write_patience)
        self.trust = bool(self.run["trust_verifiers"])
        self.verifiers = VerifierPool(timeout=self.verify_timeout)
        self.send_context = SendContext(self.client, self.run["model"], self.params, self.retry, self.ws,
                                        self.endpoint, self.verifiers, self.trust, self.toolboxes)
        self._senders: dict[str, RolloutSender] = {}

    # --- one rollout: send, verify, write ---------------------------------------------------------

    def choose_sender(self, job: RolloutJob) -> RolloutSender:
        """The sender for this job's task (one instance of each kind per run)."""
        name, make = sender_kind(job)
        sender = self._senders.get(name)
        if sender is None:
            sender = self._senders[name] = make(self.send_context)
        return sender

    async def verify(self, job: RolloutJob, seed: int, sent: Sent) -> Finished:
        """The finished rollout, scored when there is a reply (off the event loop, with a time limit)."""
        item = Finished(job.task_id, job.sample_index, seed, sent.messages, sent.result, sent.error,
                        n_steps=(len(sent.figures) or None) if sent.tool_mode else None,
                        tool_mode=sent.tool_mode, steps_json=figures_json(sent.figures))
        if sent.result is None:
            return item
        # llm_client made the reply storable (and counted what it replaced): score exactly that.
        item.output, item.replaced = sent.result.output, sent.result.replaced
        task = job.task if sent.tool_mode is None else {**job.task, "tool_state": sent.tool_state}
        verdict = await self.verifiers.verify(job.verifier, item.output, task=task, trust=self.trust)
        if sent.stopped_at_limit:
            verdict = Verdict(verdict.reward, f"{verdict.feedback} (stopped at the limit of "
                                              f"{sent.stopped_at_limit} model calls before a final answer)")
        item.verdict = verdict
        return item

    async def worker(self, queue: asyncio.Queue) -> None:
        """Take jobs until none are left or the run is cancelled."""
        while not self.cancel.is_set():
            try:
                job = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            seed = rollout_seed(self.run["seed"] or 0, job.task_id, job.sample_index)
            sent = await self.choose_sender(job).send(job, seed)
            if self.cancel.is_set() and sent.error is not None:
                return  # a call broken by the cancel itself is not a real failure; resume redoes it
            self.writer.add(await self.verify(job, seed, sent))

    # --- progress ---------------------------------------------------------------------------------

    def report(self, last_id: str | None) -> None:
        """Tell the progress callback where the run stands."""
        if self.progress is None:
            return
        done, errors = self.counters["done"], self.counters["errors"]
        scored = done - errors
        self.progress(RunProgress(run_id=self.run_id, done=done, total=self.run["n_planned"], errors=errors,
                                  mean_reward=self.counters["sum"] / scored if scored else None,
                                  last_rollout_id=last_id))

    def _written(self, rows) -> None:
        for row in rows:
            self.new_ids.append(row.rollout_id)
            self.counters["done"] += 1
            self.counters["errors"] += int(row.failed)
            self.counters["sum"] += row.reward or 0.0
        self.report(rows[-1].rollout_id)

    # --- run all, finish --------------------------------------------------------------------------

    async def run_workers(self) -> str:
        """Run the jobs on `concurrency` workers; "interrupted" when the cancel event stopped them."""
        queue: asyncio.Queue[RolloutJob] = asyncio.Queue()
        for job in self.jobs:
            queue.put_nowait(job)
        count = min(self.run["concurrency"], max(1, len(self.jobs)))
        workers = [asyncio.create_task(self.worker(queue)) for _ in range(count)]
        watcher = asyncio.create_task(self._watch_cancel())
        all_workers = asyncio.gather(*workers)
        # On Ctrl-C the gather ends with CancelledError nobody awaits; mark it seen.
        all_workers.add_done_callback(lambda f: None if f.cancelled() else f.exception())
        done, _ = await asyncio.wait({all_workers, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if watcher in done:
            # Cancel requested from outside (GUI button): stop the in-flight calls now.
            all_workers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await all_workers
            return "interrupted"
        watcher.cancel()
        await all_workers  # re-raises a bug in a worker
        return "completed"

    async def _watch_cancel(self) -> None:
        while not self.cancel.is_set():
            await asyncio.sleep(0.05)

    async def execute(self) -> RunResult:
        """All the steps; on cancel (event or task cancellation) the run is marked interrupted."""
        self.plan()
        await self.claim()
        self.report(None)
        try:
            status = await self.run_workers()
            await self.writer.drain()
        except asyncio.CancelledError:
            # Ctrl-C under asyncio.run cancels us: keep what finished, record the interruption, re-raise.
            self.cancel.set()
            try:
                self.writer.drain_now(_workspace.BUSY_TIMEOUT_SECONDS)
            finally:
                mark_finished(self.ws, self.run_id, "interrupted")
            raise
        except RunWriteError:
            mark_finished(self.ws, self.run_id, "interrupted")  # the unwritten rollouts are redone by --resume
            raise
        except BaseException:
            with contextlib.suppress(RunWriteError):
                self.writer.drain_now(_workspace.BUSY_TIMEOUT_SECONDS)
            mark_finished(self.ws, self.run_id, "interrupted" if self.writer.pending else "failed")
            raise
        finally:
            await self.close()
        return self.finish(status)

    async def close(self) -> None:
        """Release the writer's timer, the verifier workers and the client."""
        self.writer.close()
        await self.verifiers.close()
        try:
            await self.client.close()
        except Exception:  # noqa: BLE001 - closing a client must not hide the real outcome
            log.debug("closing client failed", exc_info=True)

    def finish(self, status: str) -> RunResult:
        """Record the run's final status (a short or all-failed run says so) and return what it produced."""
        if status == "completed":
            row = self.ws.one("SELECT n_done, n_errors FROM runs WHERE id = ?", (self.run_id,))
            if row["n_done"] < self.run["n_planned"]:
                status = "interrupted"
            elif row["n_errors"] == row["n_done"] and row["n_done"] > 0:
                status = "failed"  # nothing came back at all: the work failed
        mark_finished(self.ws, self.run_id, status)
        final = self.ws.one("SELECT * FROM runs WHERE id = ?", (self.run_id,))
        return RunResult(run_id=self.run_id, status=status, n_planned=final["n_planned"], n_done=final["n_done"],
                         n_errors=final["n_errors"], mean_reward=final["mean_reward"], new_rollout_ids=self.new_ids)


def check_same_server(run: dict, endpoint: Endpoint, base_url: str | None) -> None:
    """RunError when finishing a run would send its remaining rollouts to another server than its first ones."""
    url = (base_url or endpoint.base_url or "").rstrip("/")
    recorded = (run["base_url"] or "").rstrip("/")
    if endpoint.is_local or not run["n_done"] or not recorded or url == recorded:
        return
    raise RunError(f"run {run['id']} started on {recorded}; finishing it on {url} would mix servers in one run "
                   "(resume it with its own endpoint, or start a new run)")


def mark_finished(ws: Workspace, run_id: str, status: str) -> None:
    """Set the run's status and finish time."""
    with ws.transaction():
        ws.conn.execute("UPDATE runs SET status = ?, finished_at = ? WHERE id = ?", (status, now(), run_id))
