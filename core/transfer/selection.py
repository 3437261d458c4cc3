"""Choosing rollouts to export (a run, several runs, or every run of a suite), streamed row by row."""
from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Iterator

from lessonlab.core.ids import resolve_id
from lessonlab.core.lessons.snapshots import build_messages
from lessonlab.core.errors import WorkFailed
from lessonlab.core.storage.integrity import ensure_intact
from lessonlab.core.storage.workspace import Workspace, pragma_for_block
from lessonlab.core.transfer.errors import TransferError

# What `export rollouts` reads per rollout: everything but the snapshot's prompts (the same for many
# rollouts, and not part of a line).
ROLLOUT_COLUMNS = """
    r.id, r.run_id, r.task_id, r.sample_index, r.snapshot_id, r.status, r.reward, r.feedback, r.error,
    r.prompt_tokens, r.completion_tokens, r.latency_ms, r.model, r.finish_reason,
    r.tool_mode, x.messages_json, x.output, x.steps_json, x.tools_json,
    t.suite, t.name AS task, t.split, t.prompt_json, t.verifier_json, t.metadata_json
"""
# Everything (CSV and the general rows): the rollout's fields and its snapshot's.
_COLUMNS = ROLLOUT_COLUMNS + ", s.system_prompt, s.base_prompt, s.lesson_count"
# What training exports read: the fields that decide whether a rollout is usable, and its texts only where
# it is (a failed or unscored rollout's messages are never read off the page), plus its snapshot's prompts.
TRAINING_COLUMNS = """
    r.id, r.run_id, r.task_id, r.sample_index, r.status, r.reward, x.output, x.tools_json,
    CASE WHEN r.status = 'ok' AND r.reward IS NOT NULL THEN x.messages_json END AS messages_json,
    s.system_prompt, s.base_prompt, s.lesson_count
"""


# An export visits a task's samples wherever they were written, so with SQLite's default 2 MB page cache
# it reads the same pages again and again; a bigger cache, for the export only, reads each page once.
EXPORT_CACHE_KIB = 64 * 1024


class Selection:
    """Rollouts of some runs, or of every run of one suite."""

    def __init__(self, ws: Workspace, runs: list[str] | None = None, suite: str | None = None):
        runs = [r for r in (runs or []) if r]
        if bool(runs) == bool(suite):
            raise TransferError("give --run RUN (one or more) or --suite SUITE")
        self.ws = ws
        self.suite = suite
        self.run_ids = [resolve_id(ws, "runs", ident, "run") for ident in runs]
        if suite and ws.one("SELECT 1 FROM tasks WHERE suite = ? LIMIT 1", (suite,)) is None:
            raise TransferError(f"no tasks of suite {suite!r} in the workspace")
        # A damaged page can hide rows from a query without an error: an export must be all or nothing.
        ensure_intact(ws.conn, ws.path)

    def describe(self) -> str:
        """'run run_x' / 'runs a, b' / 'suite s'."""
        if self.suite:
            return f"suite {self.suite}"
        return ("run " if len(self.run_ids) == 1 else "runs ") + ", ".join(self.run_ids)

    def run_ids_in_order(self) -> list[str]:
        """The selected runs, oldest first (the order rollouts are exported in)."""
        if self.suite:
            sql = ("SELECT ru.id FROM runs ru WHERE EXISTS (SELECT 1 FROM rollouts r JOIN tasks t ON t.id = r.task_id"
                   " WHERE r.run_id = ru.id AND t.suite = ?) ORDER BY ru.created_at, ru.id")
            return [row[0] for row in self.ws.conn.execute(sql, (self.suite,))]
        ids = list(dict.fromkeys(self.run_ids))
        sql = f"SELECT id FROM runs WHERE id IN ({','.join('?' * len(ids))}) ORDER BY created_at, id"
        return [row[0] for row in self.ws.conn.execute(sql, ids)]

    def rows(self, *, by_task: bool = False, with_scores: bool = False, parsed: bool = True,
             columns: str = _COLUMNS) -> Iterator[dict]:
        """The selected rollouts with text, task and snapshot; in run order, or grouped by task.

        Streamed: each query walks an index in the wanted order (one run, or one task, at a time), so the
        first row comes at once, memory stays flat, and Ctrl-C is seen between rows rather than after a sort
        of the whole selection. `parsed=False` leaves the messages as the stored `messages_json` text;
        `columns` picks fewer fields (`TRAINING_COLUMNS`).
        """
        run_rank = {run_id: rank for rank, run_id in enumerate(self.run_ids_in_order())} if by_task else {}
        with pragma_for_block(self.ws.conn, "cache_size", -EXPORT_CACHE_KIB):  # negative: KiB, not pages
            yield from self._rows(by_task, with_scores, parsed, columns, run_rank)

    def _rows(self, by_task: bool, with_scores: bool, parsed: bool, columns: str, run_rank: dict) -> Iterator[dict]:
        for sql, params in self.queries(by_task=by_task, with_scores=with_scores, columns=columns):
            cursor = self.ws.conn.execute(sql, params)
            names = [column[0] for column in cursor.description]
            rows = (dict(zip(names, values)) for values in cursor)
            if by_task:  # best reward first, then the older run, then the sample's place
                rows = sorted(rows, key=lambda row: (row["reward"] is None, -(row["reward"] or 0.0),
                                                     run_rank.get(row["run_id"], 0), row["sample_index"]))
            for row in rows:
                tools_json = row["tools_json"]
                row["tools"] = json.loads(tools_json) if tools_json else None
                if parsed and row["messages_json"] is not None:
                    row["messages"] = json.loads(row.pop("messages_json"))
                yield row

    def queries(self, *, by_task: bool = False, with_scores: bool = False,
                columns: str = _COLUMNS) -> Iterator[tuple[str, list]]:
        """The SQL (with its parameters) `rows` runs one after another; tasks and snapshots joined only if needed."""
        scores = ", '[]' AS scores_json" if with_scores else ""
        # A workspace without any scorer's scores (most) skips the per-rollout lookup of them.
        if with_scores and self.ws.conn.execute("SELECT 1 FROM rollout_scores LIMIT 1").fetchone():
            scores = (", (SELECT json_group_array(json_object('scorer', scorer, 'value', json(value_json),"
                      " 'answer', answer, 'explanation', explanation, 'metadata', json(metadata_json)))"
                      " FROM (SELECT * FROM rollout_scores WHERE rollout_id = r.id ORDER BY position)) AS scores_json")
        suite = " AND t.suite = ?" if self.suite else ""
        extra = [self.suite] if self.suite else []
        joins = (" JOIN rollout_texts x ON x.rollout_id = r.id"
                 + (" JOIN snapshots s ON s.id = r.snapshot_id" if re.search(r"\bs\.", columns) else "")
                 + (" JOIN tasks t ON t.id = r.task_id" if suite or re.search(r"\bt\.", columns) else ""))
        if by_task:
            return self._by_task_queries(columns + scores, joins, suite, extra)
        return self._by_run_queries(columns + scores, joins, suite, extra)

    def _by_run_queries(self, fields: str, joins: str, suite: str, extra: list) -> Iterator[tuple[str, list]]:
        # Per run: rollouts whose task has no place in the run first (as a NULL position sorts), then the
        # run's tasks by position, each task's samples in order (both straight off indexes, no sort).
        unplaced = (f"SELECT {fields} FROM rollouts r{joins} WHERE r.run_id = ?{suite}"
                    " AND NOT EXISTS (SELECT 1 FROM run_tasks rt WHERE rt.run_id = r.run_id AND rt.task_id = r.task_id)"
                    " ORDER BY r.sample_index")
        placed = (f"SELECT {fields} FROM run_tasks rt CROSS JOIN"
                  " rollouts r ON r.run_id = rt.run_id AND r.task_id = rt.task_id"
                  f"{joins} WHERE rt.run_id = ?{suite} ORDER BY rt.position, r.sample_index")
        for run_id in self.run_ids_in_order():
            yield unplaced, [run_id, *extra]
            yield placed, [run_id, *extra]

    def _by_task_queries(self, fields: str, joins: str, suite: str, extra: list) -> Iterator[tuple[str, list]]:
        # Per task (in id order): its samples across the selected runs, best reward first.
        if self.suite:
            task_ids = [row[0] for row in self.ws.conn.execute(
                "SELECT id FROM tasks WHERE suite = ? ORDER BY id", (self.suite,))]
            runs, run_params = "", []
        else:
            run_params = list(dict.fromkeys(self.run_ids))
            runs = f" AND r.run_id IN ({','.join('?' * len(run_params))})"
            task_ids = [row[0] for row in self.ws.conn.execute(
                f"SELECT DISTINCT task_id FROM rollouts r WHERE 1{runs} ORDER BY task_id", run_params)]
        # No ORDER BY: SQLite would sort whole rows, texts and all, in a temporary b-tree; `rows` sorts
        # each task's few samples instead.
        sql = f"SELECT {fields} FROM rollouts r{joins} WHERE r.task_id = ?{runs}{suite}"
        for task_id in task_ids:
            yield sql, [task_id, *run_params, *extra]


def without_lessons(messages: list[dict], row: dict) -> list[dict]:
    """The request rebuilt on the snapshot's base prompt (no lessons block), the task's own messages kept."""
    if not row["lesson_count"] or not messages or messages[0].get("role") != "system":
        return messages
    system_prompt, content = row["system_prompt"], messages[0].get("content") or ""
    if content == system_prompt:
        own = None
    elif content.startswith(system_prompt + "\n\n"):
        own = content[len(system_prompt) + 2:]
    elif not row["base_prompt"] and content.endswith("\n\n" + system_prompt):
        own = content[:-len(system_prompt) - 2]  # `lessonlab serve` appends the lessons to the client's prompt
    else:
        return messages  # this system message was not built from the snapshot; leave it as it is
    task_messages = ([{"role": "system", "content": own}] if own is not None else []) + list(messages[1:])
    return build_messages(row["base_prompt"], task_messages)


class ExportFailed(WorkFailed):
    """The export file could not be written (a read-only folder, a full disk); nothing was left behind."""


def _umask() -> int:
    """The process's umask, read without changing it where the system tells (Linux), else set and restored."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _write_failed(path: Path, exc: OSError) -> ExportFailed:
    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        reason = "the disk is full"
    return ExportFailed(f"cannot write {path}: {reason}; nothing was written")


@contextlib.contextmanager
def atomic_output(path: str | Path | None, newline: str | None = None):
    """A text file written in full or not at all (a temporary file renamed at the end); None: stdout.

    The file gets the mode a newly created file gets (0666 less the umask), not mkstemp's 0600."""
    if path is None or str(path) == "-":
        import sys

        yield sys.stdout
        return
    path = Path(path).expanduser()
    if path.is_dir():
        raise TransferError(f"{path} is a directory; give a file name")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.exists():
        raise TransferError(f"{path}: the folder {folder} does not exist")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
        os.fchmod(handle, 0o666 & ~_umask())
    except OSError as exc:
        raise _write_failed(path, exc) from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline=newline) as out:
            yield out
        os.replace(temporary, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise _write_failed(path, exc) from None
        raise
