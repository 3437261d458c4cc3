"""Recording exchanges as rollouts of `serve` runs, off the request path.

Handlers queue an `Exchange` and go on; one writer thread with its own connection writes whatever is
queued in one transaction (under load batches grow by themselves), retries while the workspace is locked
and writes everything left before `stop` returns. A continued conversation rewrites its rollout: the
messages of the latest request, the latest reply as output, and one `StepFigures` per model call.
"""
from __future__ import annotations

import json
import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from lessonlab.core.formatting import storable
from lessonlab.core.runs import owner as run_owner
from lessonlab.core.runs.trajectory import StepFigures
from lessonlab.core.serve.replies import ReplyParts
from lessonlab.core.storage.workspace import Workspace, new_id, now, open_workspace
from lessonlab.core.transfer.importer import derived_task, prompt_form

log = logging.getLogger("lessonlab.serve")

SERVE_SUITE = "serve"                 # the suite of tasks seen through a proxy without --suite
SERVE_VERIFIER = {"kind": "manual"}   # scored by hand (`lessonlab score`, the rewards route, the app)
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)
# An exchange is written at most about this long after it is answered (plus the write itself).
FLUSH_INTERVAL = 0.02
STOP_PATIENCE_SECONDS = 60.0


@dataclass
class Exchange:
    """One request answered (or failed) through the proxy, as it goes into the record."""

    rollout_id: str
    scope: str | None
    snapshot_id: str
    messages: list[dict]              # as sent upstream (lessons in)
    request: dict                     # the other request fields (tools, sampling), model as sent upstream
    started_at: str
    latency_ms: float
    reply: ReplyParts | None = None
    error: str | None = None
    note: str | None = None


@dataclass
class _Rollout:
    run_id: str
    task_id: str
    sample_index: int
    created_at: str
    figures: list[StepFigures] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    failed: bool = False


@dataclass
class ServeRunInfo:
    """What a serve run records about where it came from."""

    endpoint: str
    base_url: str | None
    model: str
    source: str                       # the URL clients use
    params: dict = field(default_factory=dict)


def _first_user_prompt(messages: list[dict]):
    for message in messages:
        if message.get("role") == "user":
            return prompt_form([{"role": "user", "content": message.get("content")}])
    return prompt_form([m for m in messages if m.get("role") != "system"][:1] or [{"role": "user", "content": ""}])


class Recorder:
    """The writer thread: `add` from any thread, `stop` writes everything left and marks the runs finished."""

    def __init__(self, workspace_path: Path, info: ServeRunInfo):
        self.path, self.info = workspace_path, info
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._runs: dict[str | None, str] = {}            # scope -> run id
        self._rollouts: dict[str, _Rollout] = {}
        self._positions: dict[tuple[str, str], int] = {}  # (run, task) -> position
        self._samples: dict[tuple[str, str], int] = {}    # (run, task) -> next sample index
        self._thread = threading.Thread(target=self._loop, name="lessonlab-serve-writer", daemon=True)
        self._undo: list = []
        self.written = 0
        self.failed: str | None = None

    def start(self) -> None:
        """Start the writer thread."""
        self._thread.start()

    def add(self, exchange: Exchange) -> None:
        """Queue an exchange (never blocks)."""
        self._queue.put(exchange)

    def stop(self) -> None:
        """Write everything queued, mark this process's runs completed, stop the thread."""
        self._queue.put(None)
        self._thread.join()

    def run_ids(self) -> dict[str | None, str]:
        """The run of each scope seen so far."""
        return dict(self._runs)

    # --- the thread ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        ws = open_workspace(self.path)
        try:
            stopping = False
            pending: list[Exchange] = []
            failures = 0
            while not (stopping and not pending):
                if not pending or failures:
                    timeout = RETRY_DELAYS[min(failures, len(RETRY_DELAYS)) - 1] if failures else None
                    try:
                        item = self._queue.get(timeout=timeout)
                        stopping |= item is None
                        if item is not None:
                            pending.append(item)
                    except queue.Empty:
                        pass
                if not stopping and not failures:
                    time.sleep(FLUSH_INTERVAL)  # let a batch gather: fewer, larger transactions under load
                while True:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    stopping |= item is None
                    if item is not None:
                        pending.append(item)
                if pending and self._write(ws, pending):
                    self.written += len(pending)
                    pending, failures = [], 0
                elif pending:
                    failures += 1
                    if stopping and failures * 0.5 > STOP_PATIENCE_SECONDS:
                        self.failed = f"{len(pending)} exchange(s) could not be written: the workspace refused writes"
                        log.error("%s", self.failed)
                        break
            self._finish_runs(ws)
        finally:
            ws.close()

    def _write(self, ws: Workspace, batch: list[Exchange]) -> bool:
        """Write the batch in one transaction; False (memory as before) when the workspace refused it."""
        self._undo: list = []
        try:
            with ws.transaction():
                totals: dict[str, list[int]] = {}
                for exchange in batch:
                    run_id, delta = self._write_one(ws, exchange)
                    totals[run_id] = [a + b for a, b in zip(totals.get(run_id, [0, 0, 0, 0]), delta)]
                for run_id, (n, errors, pt, ct) in totals.items():
                    # Counters move by what this batch added; rewards are never written here (scoring
                    # recomputes the mean), so a score given meanwhile by another process is kept.
                    ws.conn.execute(
                        "UPDATE runs SET n_done = n_done + ?, n_planned = n_done + ?, n_errors = n_errors + ?,"
                        " prompt_tokens = prompt_tokens + ?, completion_tokens = completion_tokens + ? WHERE id = ?",
                        (n, n, errors, pt, ct, run_id))
            return True
        except Exception:  # noqa: BLE001 - kept and retried; never dropped
            log.exception("writing %d exchange(s) failed; they are kept and retried", len(batch))
            for undo in reversed(self._undo):   # what the batch changed in memory, undone in reverse
                undo()
            return False

    def _remember(self, table: dict, key) -> None:
        """Note how to put table[key] back as it is now, should the transaction fail."""
        if key in table:
            value = table[key]
            value = _copy(value) if isinstance(value, _Rollout) else value
            self._undo.append(lambda: table.__setitem__(key, value))
        else:
            self._undo.append(lambda: table.pop(key, None))

    def _run_for(self, ws: Workspace, exchange: Exchange) -> str:
        run_id = self._runs.get(exchange.scope)
        if run_id is not None:
            return run_id
        self._remember(self._runs, exchange.scope)
        run_id = new_id("run")
        me = run_owner.this_process()
        stamp = now()
        ws.conn.execute(
            "INSERT INTO runs (id, kind, source, suite, split, samples, endpoint, base_url, model, snapshot_id,"
            " params_json, concurrency, status, created_at, started_at, owner_pid, owner_host, owner_started)"
            " VALUES (?, 'serve', ?, ?, 'train', 1, ?, ?, ?, ?, ?, 1, 'running', ?, ?, ?, ?, ?)",
            (run_id, self.info.source, exchange.scope or SERVE_SUITE, self.info.endpoint, self.info.base_url,
             self.info.model, exchange.snapshot_id, json.dumps(self.info.params, sort_keys=True), stamp, stamp,
             me.pid, me.host, me.started))
        self._runs[exchange.scope] = run_id
        return run_id

    def _task_for(self, ws: Workspace, run_id: str, suite: str, messages: list[dict]) -> str:
        prompt = _first_user_prompt(messages)
        task_id, content_hash, name = derived_task(suite, None, prompt, SERVE_VERIFIER)
        if (run_id, task_id) not in self._positions:
            ws.conn.execute(
                "INSERT OR IGNORE INTO tasks (id, suite, name, split, content_hash, prompt_json, verifier_json,"
                " metadata_json, created_at) VALUES (?, ?, ?, 'train', ?, ?, ?, '{}', ?)",
                (task_id, suite, name, content_hash, json.dumps(prompt), json.dumps(SERVE_VERIFIER), now()))
            self._remember(self._positions, (run_id, task_id))
            position = len(self._positions)
            ws.conn.execute("INSERT INTO run_tasks (run_id, position, task_id) VALUES (?, ?, ?)",
                            (run_id, position, task_id))
            self._positions[(run_id, task_id)] = position
        return task_id

    def _write_one(self, ws: Workspace, exchange: Exchange) -> tuple[str, tuple[int, int, int, int]]:
        """Upsert the exchange's rollout; the run id and what the run's counters gain (n, errors, tokens)."""
        self._remember(self._rollouts, exchange.rollout_id)
        state = self._rollouts.get(exchange.rollout_id)
        new = state is None
        if state is None:
            run_id = self._run_for(ws, exchange)
            task_id = self._task_for(ws, run_id, exchange.scope or SERVE_SUITE, exchange.messages)
            self._remember(self._samples, (run_id, task_id))
            index = self._samples.get((run_id, task_id), 0)
            self._samples[(run_id, task_id)] = index + 1
            state = self._rollouts[exchange.rollout_id] = _Rollout(run_id, task_id, index, exchange.started_at)
        reply = exchange.reply
        figure = StepFigures(latency_ms=round(exchange.latency_ms, 3),
                             prompt_tokens=reply.prompt_tokens if reply else None,
                             completion_tokens=reply.completion_tokens if reply else None,
                             finish_reason=reply.finish_reason if reply else None,
                             unanswered_calls=list(reply.tool_calls) if reply else [])
        earlier = sum(1 for m in exchange.messages if m.get("role") == "assistant")
        for old in state.figures:
            old.unanswered_calls = []       # answered now: the calls are in the messages with their results
        # Assistant messages the proxy never saw (history the client brought) get empty figures.
        state.figures = (state.figures + [StepFigures() for _ in range(earlier - len(state.figures))])[:earlier]
        state.figures.append(figure)
        state.prompt_tokens += figure.prompt_tokens or 0
        state.completion_tokens += figure.completion_tokens or 0
        state.latency_ms += exchange.latency_ms
        failed = exchange.error is not None
        delta = (int(new), int(failed) - int(state.failed), figure.prompt_tokens or 0, figure.completion_tokens or 0)
        state.failed = failed
        output = reply.text if reply is not None else None
        texts = [storable(t)[0] if isinstance(t, str) else t for t in (
            json.dumps(exchange.messages), output, json.dumps([f.to_dict() for f in state.figures]),
            json.dumps(exchange.request), exchange.error)]
        tools = "native" if exchange.request.get("tools") else None
        ws.conn.execute(
            "INSERT INTO rollouts (id, run_id, task_id, sample_index, snapshot_id, status, error, prompt_tokens,"
            " completion_tokens, latency_ms, attempts, model, finish_reason, created_at, note, n_steps, tool_mode)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET snapshot_id = excluded.snapshot_id, status = excluded.status,"
            " error = excluded.error, prompt_tokens = excluded.prompt_tokens,"
            " completion_tokens = excluded.completion_tokens, latency_ms = excluded.latency_ms,"
            " model = COALESCE(excluded.model, model), finish_reason = excluded.finish_reason, note = excluded.note,"
            " n_steps = excluded.n_steps, tool_mode = COALESCE(excluded.tool_mode, tool_mode)",
            (exchange.rollout_id, state.run_id, state.task_id, state.sample_index, exchange.snapshot_id,
             "error" if failed else "ok", texts[4], state.prompt_tokens or None, state.completion_tokens or None,
             round(state.latency_ms, 3), reply.model if reply else None, figure.finish_reason, state.created_at,
             exchange.note, len(state.figures), tools))
        ws.conn.execute(
            "INSERT INTO rollout_texts (rollout_id, messages_json, output, steps_json, request_json)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (rollout_id) DO UPDATE SET messages_json = excluded.messages_json,"
            " output = excluded.output, steps_json = excluded.steps_json, request_json = excluded.request_json",
            (exchange.rollout_id, texts[0], texts[1], texts[2], texts[3]))
        return state.run_id, delta

    def _finish_runs(self, ws: Workspace) -> None:
        if not self._runs:
            return
        try:
            with ws.transaction():
                for run_id in self._runs.values():
                    ws.conn.execute(
                        "UPDATE runs SET status = 'completed', finished_at = ?, owner_pid = NULL WHERE id = ?",
                        (now(), run_id))
        except Exception:  # noqa: BLE001 - the runs then read as interrupted (their process is gone)
            log.exception("marking the serve runs completed failed")


def _copy(state: _Rollout) -> _Rollout:
    return _Rollout(state.run_id, state.task_id, state.sample_index, state.created_at,
                    [StepFigures.from_dict(f.to_dict()) for f in state.figures], state.prompt_tokens,
                    state.completion_tokens, state.latency_ms, state.failed)
