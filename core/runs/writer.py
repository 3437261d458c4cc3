"""Writing a run's finished rollouts: in batches, any text made storable, nothing dropped when a write fails.

Rollouts are kept in memory until a transaction that holds them commits. A locked workspace is waited
for in short slices (the event loop keeps serving requests in between) with backoff; any other failed
batch is written one rollout at a time, so one bad row cannot take its neighbours down with it.
"""
from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from typing import Callable

from lessonlab.core.models import llm_client
from lessonlab.core.errors import WorkFailed
from lessonlab.core.formatting import storable
from lessonlab.core.verifiers import Verdict
from lessonlab.core.storage.workspace import Workspace, new_id, now, pragma_for_block

log = logging.getLogger("lessonlab.runner")

# Finished rollouts are written together at most this long after they finish: one
# transaction per batch instead of per rollout keeps big concurrent runs cheap.
FLUSH_INTERVAL = 0.02
# One write attempt waits at most this long for another process's lock, so the event loop
# (requests in flight, Ctrl-C) never stalls behind the workspace.
BUSY_SLICE_MS = 100
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)
# How long the end of a run waits for a locked or failing workspace before giving up, saying so.
WRITE_PATIENCE_SECONDS = 600.0


__all__ = ["FLUSH_INTERVAL", "WRITE_PATIENCE_SECONDS", "Finished", "RolloutWriter", "RunWriteError", "storable"]


class RunWriteError(WorkFailed):
    """Answered rollouts could not be written before the patience ran out."""


@dataclass
class Finished:
    """One answered (or failed) rollout, scored, waiting to be written."""

    task_id: str
    sample_index: int
    seed: int
    messages: list[dict]
    result: llm_client.ChatResult | None
    error: llm_client.ModelCallError | None
    output: str | None = None          # the reply as stored and scored (made storable)
    verdict: Verdict | None = None
    replaced: int = 0                  # characters of the reply replaced to make it storable
    n_steps: int | None = None         # model calls of an agent loop (None: a single call)
    tool_mode: str | None = None       # native | hermes for an agent loop
    steps_json: str | None = None      # per-step figures (trajectory.figures_json)


@dataclass
class _Row:
    rollout_id: str
    values: list                       # the rollouts row
    text: tuple                        # the rollout_texts row
    reward: float | None
    failed: bool
    prompt_tokens: int
    completion_tokens: int
    server_model: str | None


_NOTE = 17   # index of `note` in a rollouts row (the columns of `_transaction`'s INSERT)


def _is_busy(exc: BaseException) -> bool:
    message = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and ("locked" in message or "busy" in message)


class RolloutWriter:
    """Batches finished rollouts into transactions and keeps each one until it is written."""

    def __init__(self, ws: Workspace, run: dict, snapshot_id: str, on_written: Callable[[list[_Row]], None], *,
                 patience: float = WRITE_PATIENCE_SECONDS):
        self.ws, self.run, self.snapshot_id = ws, run, snapshot_id
        self.on_written = on_written
        self.patience = patience
        self.pending: list[_Row] = []
        self._timer: asyncio.TimerHandle | None = None
        self._failures = 0

    # --- queueing -------------------------------------------------------------------------------

    def add(self, item: Finished) -> None:
        """Queue a finished rollout; it is written within FLUSH_INTERVAL unless the workspace refuses."""
        self.pending.append(self._prepare(item))
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_INTERVAL, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self.flush() or self._timer is not None:
            return
        delay = RETRY_DELAYS[min(self._failures - 1, len(RETRY_DELAYS) - 1)]
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def close(self) -> None:
        """Stop the timer (what is pending stays pending)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # --- writing --------------------------------------------------------------------------------

    def flush(self) -> bool:
        """Try once to write everything pending; True when nothing is left."""
        if not self.pending:
            return True
        try:
            written = self._write_some(list(self.pending))
        except Exception:  # noqa: BLE001 - a bug here must not lose answers: keep them and log it
            log.exception("writing rollouts failed; they are kept and retried")
            written = []
        if written:
            if len(written) == len(self.pending):
                self.pending = []
            else:
                done = {id(row) for row in written}
                self.pending = [row for row in self.pending if id(row) not in done]
            self.on_written(written)
        self._failures = 0 if not self.pending else self._failures + 1
        return not self.pending

    async def drain(self) -> None:
        """Write everything pending, waiting with backoff for a locked or failing workspace (up to the patience)."""
        self.close()
        started = time.monotonic()
        warned = False
        while not self.flush():
            waited = time.monotonic() - started
            if waited > self.patience:
                raise self._gave_up(waited)
            if not warned and waited > 2:
                log.warning("the workspace refuses writes (locked by another process?); %d answered rollout(s) "
                            "wait to be written", len(self.pending))
                warned = True
            await asyncio.sleep(RETRY_DELAYS[min(self._failures - 1, len(RETRY_DELAYS) - 1)])

    def drain_now(self, seconds: float) -> None:
        """Like drain, without an event loop (a run being cancelled): blocks up to `seconds`."""
        self.close()
        started = time.monotonic()
        while not self.flush():
            waited = time.monotonic() - started
            if waited > seconds:
                raise self._gave_up(waited)
            time.sleep(RETRY_DELAYS[min(self._failures - 1, len(RETRY_DELAYS) - 1)])

    def _gave_up(self, waited: float) -> RunWriteError:
        return RunWriteError(
            f"{len(self.pending)} answered rollout(s) of run {self.run['id']} could not be written: the workspace "
            f"refused writes for {waited:.0f} s (locked by another process, read-only or full); "
            f"`lessonlab run --resume {self.run['id']}` redoes them")

    def _write_some(self, batch: list[_Row]) -> list[_Row]:
        """The rows written: the whole batch in one transaction, else as many as will go one by one."""
        try:
            self._transaction(batch)
            return batch
        except Exception as exc:  # noqa: BLE001 - classified: busy waits, anything else goes row by row
            if _is_busy(exc):
                return []
            log.warning("writing %d rollouts together failed (%s); writing them one by one", len(batch), exc)
        written, refused = [], []
        for row in batch:
            try:
                self._transaction([row])
                written.append(row)
            except Exception as exc:  # noqa: BLE001
                if _is_busy(exc):
                    break
                if self._already_stored(row):
                    log.warning("rollout for task %s sample %s is already stored; not writing it twice",
                                row.values[2], row.values[3])
                    written.append(row)
                else:
                    refused.append((row, exc))
        if written:
            # The workspace takes other rows, so these ones are the problem: store them escaped.
            written += [row for row, exc in refused if self._write_escaped(row, exc)]
        return written

    def _write_escaped(self, row: _Row, exc: BaseException) -> bool:
        """Last resort for a row the database refuses: every text as ASCII escapes, with a note saying why."""
        def escape(value):
            return value.encode("ascii", "backslashreplace").decode("ascii") if isinstance(value, str) else value

        values = [escape(v) for v in row.values]
        values[_NOTE] = f"text stored with escapes after a write error ({type(exc).__name__}: {exc})"[:300]
        copy = _Row(**{**row.__dict__, "values": values, "text": tuple(escape(v) for v in row.text)})
        try:
            self._transaction([copy])
            return True
        except Exception as again:  # noqa: BLE001 - the original is kept and retried until the patience runs out
            log.warning("rollout for task %s sample %s could not be written (%s); kept and retried",
                        row.values[2], row.values[3], again)
            return False

    def _already_stored(self, row: _Row) -> bool:
        try:
            return self.ws.one("SELECT 1 FROM rollouts WHERE run_id = ? AND task_id = ? AND sample_index = ?",
                               (self.run["id"], row.values[2], row.values[3])) is not None
        except sqlite3.Error:
            return False

    def _transaction(self, rows: list[_Row]) -> None:
        conn = self.ws.conn
        errors = sum(r.failed for r in rows)
        reward_sum = sum(r.reward or 0.0 for r in rows)
        models = [r.server_model for r in rows if r.server_model]
        with pragma_for_block(conn, "busy_timeout", BUSY_SLICE_MS), self.ws.transaction():
            conn.executemany(
                "INSERT INTO rollouts (id, run_id, task_id, sample_index, snapshot_id, seed, status, reward,"
                " feedback, error, prompt_tokens, completion_tokens, latency_ms, attempts, model, finish_reason,"
                " created_at, note, n_steps, tool_mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [r.values for r in rows],
            )
            conn.executemany("INSERT INTO rollout_texts (rollout_id, messages_json, output, steps_json)"
                             " VALUES (?, ?, ?, ?)",
                             [r.text for r in rows])
            conn.execute(
                "UPDATE runs SET n_done = n_done + :n, n_errors = n_errors + :e, reward_sum = reward_sum + :r,"
                " mean_reward = CASE WHEN n_done + :n - (n_errors + :e) > 0"
                "   THEN (reward_sum + :r) / (n_done + :n - (n_errors + :e)) ELSE NULL END,"
                " prompt_tokens = prompt_tokens + :pt, completion_tokens = completion_tokens + :ct,"
                " server_model = COALESCE(:m, server_model) WHERE id = :id",
                {"n": len(rows), "e": errors, "r": reward_sum, "pt": sum(r.prompt_tokens for r in rows),
                 "ct": sum(r.completion_tokens for r in rows), "m": models[-1] if models else None,
                 "id": self.run["id"]},
            )

    def _prepare(self, item: Finished) -> _Row:
        """The rows for one rollout, every text storable (what was replaced is counted in a note)."""
        result, error, verdict = item.result, item.error, item.verdict
        replaced = item.replaced
        failed = error is not None
        # The reply, its model name and finish reason were made storable by llm_client; the feedback
        # quotes only them and the suite. An error message may quote anything: checked here.
        feedback = None if failed else verdict.feedback
        message = str(error) if failed else None
        if message is not None and not message.isascii():
            message, n = storable(message)
            replaced += n
        values = [
            new_id("ro", 6), self.run["id"], item.task_id, item.sample_index, self.snapshot_id, item.seed,
            "error" if failed else "ok",
            None if failed else verdict.reward,
            feedback,
            message,
            result.prompt_tokens if result else None,
            result.completion_tokens if result else None,
            result.latency_ms if result else error.latency_ms,
            result.attempts if result else error.attempts,
            result.model if result else None,
            result.finish_reason if result else None,
            now(),
            None,
            item.n_steps,
            item.tool_mode,
        ]
        if replaced:
            values[_NOTE] = (f"{replaced} character{'s' if replaced > 1 else ''} that cannot be stored as UTF-8 "
                          "(lone surrogates) replaced with U+FFFD")
        text = (values[0], json.dumps(item.messages), None if failed else item.output, item.steps_json)
        return _Row(values[0], values, text, None if failed else verdict.reward, failed,
                    (result.prompt_tokens or 0) if result else 0, (result.completion_tokens or 0) if result else 0,
                    values[14])
