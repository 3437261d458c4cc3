"""Importing rollouts from other tools: one run per file, all of a file in one transaction, streamed in batches.

Each rollout gets a stable source key (the Inspect eval, sample id and epoch; or the JSONL line's own
bytes), so importing a file again adds only what is new. The first system message of a rollout is looked
up as a snapshot — exactly, or as a snapshot followed by the task's own system message, the way lessonlab
itself builds prompts — so rollouts that lessonlab sent keep the lessons they saw.
"""
from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from lessonlab.core import ids
from lessonlab.core.resources import sha256
from lessonlab.core.lessons.snapshots import get_or_create_snapshot
from lessonlab.core.runs.scoring import refresh_run_summary
from lessonlab.core.runs.trajectory import is_multi_step, prompt_length
from lessonlab.core.storage.workspace import Workspace, new_id, now
from lessonlab.core.transfer.errors import MalformedFile, TransferError
from lessonlab.core.transfer.imported import ImportedRollout, RunInfo, step_count
from lessonlab.core.transfer.readers import AUTO, ImportSource, format_of, open_source
from lessonlab.core.transfer.scores import choose_reward, feedback_of, finite

log = logging.getLogger("lessonlab.transfer")

IMPORTED_VERIFIER = {"kind": "imported"}
ProgressCallback = Callable[[int, int], None]


@dataclass
class ImportOptions:
    """How to import: the format (auto by default), the scorer that gives the reward, the split, a dry run."""

    format: str = AUTO
    score: str | None = None          # None: the first scorer (JSONL: the "reward" field first)
    split: str | None = None          # None: the line's own split, else train
    dry_run: bool = False
    batch_size: int = 1000


@dataclass
class FileImport:
    """What importing one file did (or, in a dry run, would do)."""

    path: str
    format: str
    run_id: str | None
    run_created: bool
    suite: str
    model: str | None
    rollouts: int                     # read from the file
    new: int                          # written now
    existing: int                     # already in the workspace (skipped)
    tasks: int
    errors: int
    scored: int
    mean_reward: float | None         # over the file's scored rollouts
    scorers: list[str] = field(default_factory=list)
    reward_scorer: str | None = None  # None: no scorer gave the reward (JSONL "reward" fields, or no scores)
    warnings: list[str] = field(default_factory=list)
    dry_run: bool = False

    def to_dict(self) -> dict:
        """The fields as a plain dict (for JSON output)."""
        return dict(self.__dict__)


@dataclass
class ImportReport:
    """The files imported, in order; `cancelled` when a cancel stopped the rest (the file in progress wrote nothing)."""

    files: list[FileImport] = field(default_factory=list)
    cancelled: bool = False


class _Cancelled(Exception):
    pass


class _DryRun(Exception):
    def __init__(self, result: FileImport):
        self.result = result


def detect_format(path: Path, requested: str = AUTO) -> str:
    """The name of the format asked for, else of the registered format that claims the file (never a guess)."""
    return format_of(path, requested).name


def import_files(ws: Workspace, paths: Iterable[str | Path], options: ImportOptions | None = None,
                 progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> ImportReport:
    """Import each file as one run, each in its own transaction; progress is reported in bytes read."""
    options = options or ImportOptions()
    files = [Path(p).expanduser() for p in paths]
    for path in files:
        if not path.exists():
            raise TransferError(f"{path}: no such file")
        format_of(path, options.format)  # every file's format is known before anything is written
    total = sum(path.stat().st_size for path in files) or 1
    report = ImportReport()
    offset = 0
    for path in files:
        size = path.stat().st_size

        def file_progress(done: int, _total: int, base=offset) -> None:
            if progress is not None:
                progress(min(base + done, total), total)

        try:
            result = import_file(ws, path, options, progress=file_progress, cancel=cancel)
        except _Cancelled:
            report.cancelled = True
            return report
        except MalformedFile as exc:
            exc.imported = list(report.files)
            raise
        report.files.append(result)
        offset += size
        if progress is not None:
            progress(min(offset, total), total)
    return report


def import_file(ws: Workspace, path: str | Path, options: ImportOptions | None = None, *,
                progress: ProgressCallback | None = None, cancel: threading.Event | None = None) -> FileImport:
    """Import one file as one run in one transaction (a malformed file writes nothing)."""
    options = options or ImportOptions()
    path = Path(path).expanduser()
    if options.split not in (None, "train", "heldout"):
        raise TransferError(f"unknown split {options.split!r} (use train or heldout)")
    if options.batch_size < 1:
        raise TransferError("the batch size must be at least 1")
    reader = open_source(path, options.format)
    try:
        if not reader.has_samples():
            raise MalformedFile(str(path), None, "it holds no rollouts (no samples, no lines)")
        try:
            with ws.transaction():
                result = _FileWriter(ws, path, reader, options).write(progress, cancel)
                if options.dry_run:
                    raise _DryRun(result)
        except _DryRun as dry:
            result = dry.result
    finally:
        reader.close()
    for line in result.warnings:
        log.info("%s: %s", path, line)  # front ends show result.warnings themselves
    return result


def utc_time(text: str | None) -> str | None:
    """An ISO-8601 time from a source file in the workspace's form (UTC, milliseconds, "Z"); None if unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_dt.timezone.utc)
    moment = moment.astimezone(_dt.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def prompt_form(messages: list[dict]) -> str | list[dict]:
    """A task prompt as suites write it: a lone user message is its text, anything else the message list."""
    if len(messages) == 1 and messages[0]["role"] == "user" and len(messages[0]) == 2:
        return messages[0]["content"]
    return messages


def derived_task(suite: str, name: str | None, prompt, verifier: dict) -> tuple[str, str, str]:
    """(task id, content hash, name) of a task known only by its prompt; unnamed ones are named after the prompt hash.

    The id is the one a suite task with this name, prompt and verifier gets (ids.task_id), so they meet.
    """
    canonical = json.dumps({"prompt": prompt, "verifier": verifier}, sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False)
    content_hash = hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()
    name = name or f"prompt-{content_hash[:10]}"
    return ids.task_id(suite, name, content_hash), content_hash, name


class _FileWriter:
    """Writes one file's rollouts into the open transaction, batch by batch."""

    def __init__(self, ws: Workspace, path: Path, reader: ImportSource, options: ImportOptions):
        self.ws, self.path, self.reader, self.options = ws, path, reader, options
        self.info: RunInfo = reader.info
        self.stamp = now()
        self.run_id: str | None = None
        self.run_created = False
        self.snapshots: dict[str, tuple[str, str | None]] = {}
        self.task_ids: dict[tuple, tuple[str, str, str]] = {}   # (suite, name, prompt, verifier) -> derived_task(...)
        self.known_tasks: set[str] = set()          # task ids already inserted (or present) this file
        self.positions: dict[str, int] = {}         # task id -> run_tasks position in this run
        self.next_index: dict[str, int] = {}        # task id -> next free sample index (auto numbering)
        self.file_keys: dict[str, str] = {}         # source key -> where, to refuse a sample given twice
        self.file_tasks: set[str] = set()
        self.counts = {"rollouts": 0, "new": 0, "existing": 0, "errors": 0, "scored": 0}
        self.reward_sum = 0.0
        self.score_seen = options.score is None
        self.explicit_rewards = False               # a JSONL "reward" field gave the reward (not a scorer)

    # --- the pipeline ----------------------------------------------------------------------------------

    def write(self, progress: ProgressCallback | None, cancel: threading.Event | None) -> FileImport:
        batch: list[ImportedRollout] = []
        done = 0
        for record, done in self.reader.rollouts():
            batch.append(record)
            if len(batch) >= self.options.batch_size:
                self._flush(batch, cancel)
                batch = []
                if progress is not None:
                    progress(done, self.reader.total_bytes)
        self._flush(batch, cancel)
        if not self.score_seen:
            names = ", ".join(self.reader.scorers) or "none"
            raise TransferError(f"{self.path}: no scorer named {self.options.score!r} (scorers in the file: {names})")
        if self.counts["new"]:
            self._finish_run()
        if progress is not None:
            progress(self.reader.total_bytes, self.reader.total_bytes)
        scored = self.counts["scored"]
        return FileImport(
            path=str(self.path), format=self.info.format, run_id=self.run_id if not (
                self.options.dry_run and self.run_created) else None,
            run_created=self.run_created, suite=self.info.suite, model=self.info.model,
            rollouts=self.counts["rollouts"], new=self.counts["new"], existing=self.counts["existing"],
            tasks=len(self.file_tasks), errors=self.counts["errors"], scored=scored,
            mean_reward=self.reward_sum / scored if scored else None, scorers=list(self.reader.scorers),
            reward_scorer=self.options.score or (self.reader.scorers[0] if self.reader.scorers
                                                 and not self.explicit_rewards else None),
            warnings=self.reader.warnings.lines(), dry_run=self.options.dry_run,
        )

    def _flush(self, batch: list[ImportedRollout], cancel: threading.Event | None) -> None:
        if cancel is not None and cancel.is_set():
            raise _Cancelled()
        if not batch:
            return
        if not getattr(self.reader, "keys_unique", False):  # else unique by construction (JSONL: bytes + occurrence)
            for record in batch:
                first = self.file_keys.setdefault(record.source_key, record.where)
                if first != record.where:
                    raise MalformedFile(str(self.path), record.where,
                                        f"the same sample (id and epoch) appears twice (first in {first})")
        existing = self._existing(batch)
        if self.run_id is None:
            if existing:
                self._adopt_run(next(iter(existing.values())))
        task_rows, run_task_rows, rollout_rows, text_rows, score_rows = [], [], [], [], []
        for record in batch:
            if not self.counts["rollouts"]:  # a file that names no suite or model takes the first rollout's
                self.info.suite = record.suite or self.info.suite
                self.info.model = self.info.model or record.model
            self.counts["rollouts"] += 1
            snapshot_id, messages_for_task = self._snapshot_of(record)
            task_id, task_row = self._task_of(record, messages_for_task)
            self.file_tasks.add(task_id)
            reward, feedback = self._verdict(record)
            if reward is not None:
                self.counts["scored"] += 1
                self.reward_sum += reward
            self.counts["errors"] += record.status == "error"
            if record.source_key in existing:
                self.counts["existing"] += 1
                continue  # its task is in the workspace already: a copy of a file writes no task rows
            if task_row is not None:
                self.known_tasks.add(task_id)
                task_rows.append(task_row)
            if self.run_id is None:
                self._create_run(snapshot_id)
            if task_id not in self.positions:
                self.positions[task_id] = len(self.positions)
                run_task_rows.append((self.run_id, self.positions[task_id], task_id))
            index = record.sample_index
            if index is None:
                index = self.next_index.get(task_id, 0)
            self.next_index[task_id] = max(index + 1, self.next_index.get(task_id, 0))
            rollout_id = new_id("ro", 6)
            rollout_rows.append((
                rollout_id, self.run_id, task_id, index, snapshot_id, record.status, reward, feedback, record.error,
                record.prompt_tokens, record.completion_tokens, record.latency_ms, record.model,
                record.finish_reason, self.stamp, record.source_key,
                step_count(record.messages, record.output), record.tool_mode,
            ))
            text_rows.append((rollout_id, json.dumps(record.messages), record.output,
                              json.dumps(record.steps) if record.steps else None,
                              json.dumps(record.tools) if record.tools else None))
            for position, score in enumerate(record.scores):
                score_rows.append((
                    rollout_id, position, score.scorer, json.dumps(finite(score.value)), score.reward, score.answer,
                    score.explanation, json.dumps(score.metadata) if score.metadata else None,
                ))
            self.counts["new"] += 1
        conn = self.ws.conn
        if task_rows:
            conn.executemany(
                "INSERT OR IGNORE INTO tasks (id, suite, name, split, content_hash, prompt_json, verifier_json,"
                " metadata_json, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", task_rows)
        if run_task_rows:
            conn.executemany("INSERT INTO run_tasks (run_id, position, task_id) VALUES (?, ?, ?)", run_task_rows)
        if rollout_rows:
            conn.executemany(
                "INSERT INTO rollouts (id, run_id, task_id, sample_index, snapshot_id, status, reward, feedback,"
                " error, prompt_tokens, completion_tokens, latency_ms, model, finish_reason, created_at, source_key,"
                " n_steps, tool_mode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rollout_rows)
            conn.executemany("INSERT INTO rollout_texts (rollout_id, messages_json, output, steps_json, tools_json)"
                             " VALUES (?, ?, ?, ?, ?)", text_rows)
        if score_rows:
            conn.executemany(
                "INSERT INTO rollout_scores (rollout_id, position, scorer, value_json, reward, answer, explanation,"
                " metadata_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", score_rows)

    def _existing(self, batch: list[ImportedRollout]) -> dict[str, str]:
        """Source key -> run id of the rollouts in the batch that the workspace holds already: by source key,
        or by the rollout id a line of lessonlab's own export carries (so that round trip adds nothing)."""
        conn = self.ws.conn
        keys = [record.source_key for record in batch]
        existing = dict(conn.execute(
            f"SELECT source_key, run_id FROM rollouts WHERE source_key IN ({','.join('?' * len(keys))})", keys
        ).fetchall())
        origins = {record.origin_id: record.source_key for record in batch if record.origin_id}
        if origins:
            found = conn.execute(f"SELECT id, run_id FROM rollouts WHERE id IN ({','.join('?' * len(origins))})",
                                 list(origins)).fetchall()
            existing.update((origins[rollout_id], run_id) for rollout_id, run_id in found)
        return existing

    # --- one rollout -------------------------------------------------------------------------------

    def _verdict(self, record: ImportedRollout) -> tuple[float | None, str | None]:
        if record.scores and not self.score_seen:
            self.score_seen = any(score.scorer == self.options.score for score in record.scores)
        if record.reward_given and self.options.score is None:
            self.explicit_rewards = True
            reward, feedback = record.reward, record.feedback
            if feedback is None and record.scores:
                feedback = feedback_of(record.scores[0])
        else:
            chosen, reward = choose_reward(record.scores, self.options.score)
            feedback = record.feedback if record.feedback is not None else feedback_of(chosen)
        if record.status == "error":
            reward = None
        return reward, feedback

    def _snapshot_of(self, record: ImportedRollout) -> tuple[str, list[dict]]:
        """The snapshot of the first system message, and the messages that belong to the task."""
        messages = record.messages
        if messages and messages[0]["role"] == "system":
            text, rest = messages[0]["content"], messages[1:]
        else:
            text, rest = "", messages
        hit = self.snapshots.get(text)
        if hit is None:
            hit = self.snapshots[text] = self._lookup_snapshot(text)
        snapshot_id, own_system = hit
        if own_system:
            rest = [{"role": "system", "content": own_system}, *rest]
        return snapshot_id, rest

    def _lookup_snapshot(self, text: str) -> tuple[str, str | None]:
        conn = self.ws.conn
        row = conn.execute("SELECT id FROM snapshots WHERE hash = ?", (sha256(text),)).fetchone()
        if row:
            return row[0], None
        # lessonlab joins a task's own system message to the snapshot's prompt with a blank line.
        cut = text.rfind("\n\n")
        while cut > 0:
            row = conn.execute("SELECT id FROM snapshots WHERE hash = ?", (sha256(text[:cut]),)).fetchone()
            if row:
                return row[0], text[cut + 2:]
            cut = text.rfind("\n\n", 0, cut)
        return get_or_create_snapshot(self.ws, text, text).id, None

    def _task_of(self, record: ImportedRollout, task_messages: list[dict]) -> tuple[str, tuple | None]:
        """The task id of a rollout, and the task row to insert when this file has not inserted it yet."""
        if record.prompt is not None:
            prompt = record.prompt
        else:  # an agent log's task is what came before its first model call, not its steps
            prompt = prompt_form(task_messages[:prompt_length(task_messages)] if is_multi_step(task_messages)
                                 else task_messages)
        suite = record.suite or self.info.suite
        # Most rollouts repeat a task already seen: find it without serialising and hashing again.
        cache_key = (suite, record.task_name,
                     prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True),
                     None if record.verifier == IMPORTED_VERIFIER else json.dumps(record.verifier, sort_keys=True))
        derived = self.task_ids.get(cache_key)
        if derived is None:
            derived = derived_task(suite, record.task_name, prompt, record.verifier)
            if len(self.task_ids) >= 100_000:
                self.task_ids.clear()  # bounded memory on huge files; a miss only recomputes the id
            self.task_ids[cache_key] = derived
        task_id, content_hash, name = derived
        if task_id in self.known_tasks:
            return task_id, None
        split = self.options.split or record.split or "train"
        return task_id, (task_id, suite, name, split, content_hash, json.dumps(prompt),
                         json.dumps(record.verifier), json.dumps(record.task_metadata), self.stamp)

    # --- the run ------------------------------------------------------------------------------------

    def _create_run(self, snapshot_id: str) -> None:
        self.run_id = new_id("run")
        self.run_created = True
        info = self.info
        started, finished = utc_time(info.started_at), utc_time(info.finished_at)
        if started and finished and finished < started:
            finished = None  # a source that contradicts itself keeps only its start
        self.ws.conn.execute(
            "INSERT INTO runs (id, kind, source, source_format, suite, split, samples, endpoint, model, snapshot_id,"
            " params_json, concurrency, status, note, created_at, started_at, finished_at, imported_at)"
            " VALUES (?, 'import', ?, ?, ?, ?, 0, 'import', ?, ?, ?, 1, 'completed', ?, ?, ?, ?, ?)",
            (self.run_id, str(self.path.resolve()), info.format, info.suite, self.options.split or "train",
             info.model, snapshot_id, json.dumps(info.params, sort_keys=True, default=str), info.note,
             # The run was created when the source ran it; when it was imported is a time of its own.
             started or finished or self.stamp, started, finished or (None if started else self.stamp), self.stamp),
        )

    def _adopt_run(self, run_id: str) -> None:
        """Add to the run an earlier import of this file made, so a re-import fills it in instead of forking it."""
        self.run_id = run_id
        conn = self.ws.conn
        for position, task_id in conn.execute("SELECT position, task_id FROM run_tasks WHERE run_id = ?", (run_id,)):
            self.positions[task_id] = position
        for task_id, last in conn.execute(
                "SELECT task_id, MAX(sample_index) FROM rollouts WHERE run_id = ? GROUP BY task_id", (run_id,)):
            self.next_index[task_id] = last + 1

    def _finish_run(self) -> None:
        """Recompute the run's summary columns from its rollouts (an adopted run may have had some already)."""
        conn = self.ws.conn
        refresh_run_summary(self.ws, self.run_id)
        # What only an import sets: every rollout in the file was planned, and the samples are its epochs.
        conn.execute("UPDATE runs SET n_planned = n_done, samples = (SELECT COALESCE(MAX(sample_index) + 1, 0)"
                     " FROM rollouts WHERE run_id = :id) WHERE id = :id", {"id": self.run_id})
        model = conn.execute(
            "SELECT model FROM rollouts WHERE run_id = ? AND model IS NOT NULL GROUP BY model"
            " ORDER BY COUNT(*) DESC, model LIMIT 1", (self.run_id,)).fetchone()
        snapshot = conn.execute(
            "SELECT snapshot_id FROM rollouts WHERE run_id = ? GROUP BY snapshot_id"
            " ORDER BY COUNT(*) DESC, snapshot_id LIMIT 1", (self.run_id,)).fetchone()
        conn.execute("UPDATE runs SET server_model = ?, snapshot_id = COALESCE(?, snapshot_id) WHERE id = ?",
                     (model[0] if model else None, snapshot[0] if snapshot else None, self.run_id))

