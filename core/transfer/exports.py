"""Rollouts and lessons out: rollouts as chat JSONL (which `import` reads back) or CSV; lessons as JSON or Markdown."""
from __future__ import annotations

import csv
import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from lessonlab.core import lessons as L
from lessonlab.core.formatting import scope as scope_text
from lessonlab.core.storage.integrity import ensure_intact
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.transfer.errors import TransferError
from lessonlab.core.transfer.jsontext import encode, stored_json, with_reply
from lessonlab.core.transfer.selection import ROLLOUT_COLUMNS, Selection, atomic_output

ROLLOUT_FORMATS = ("jsonl", "csv")
LESSON_FORMATS = ("json", "markdown")
CSV_COLUMNS = ("rollout_id", "run_id", "suite", "task", "split", "sample_index", "status", "reward", "feedback",
               "error", "model", "prompt_tokens", "completion_tokens", "latency_ms", "snapshot_id", "lesson_count",
               "output", "messages_json")


@dataclass
class RecordsExport:
    """What an export wrote."""

    kind: str
    path: str | None               # None: standard output
    count: int

    def to_dict(self) -> dict:
        """The fields as a plain dict (for JSON output)."""
        return dict(self.__dict__)


def rollout_record(row: dict) -> dict:
    """One rollout as a chat JSONL line: the messages with the reply last, and what `import` needs to rebuild it."""
    messages = list(row["messages"])
    if row["status"] == "ok" and row["output"] is not None:
        messages.append({"role": "assistant", "content": row["output"]})
    record = {
        "messages": messages,
        "reward": row["reward"],
        "feedback": row["feedback"],
        "task_id": row["task"],
        "suite": row["suite"],
        "split": row["split"],
        "prompt": json.loads(row["prompt_json"]),
        "verifier": json.loads(row["verifier_json"]),
        "metadata": json.loads(row["metadata_json"] or "{}"),
        "model": row["model"],
        "usage": {"prompt_tokens": row["prompt_tokens"], "completion_tokens": row["completion_tokens"]},
        "latency_ms": row["latency_ms"],
        "finish_reason": row["finish_reason"],
    }
    if row.get("steps_json"):
        record["steps"] = json.loads(row["steps_json"])   # per-step figures, so the trajectory comes back whole
    if row.get("tools"):
        record["tools"] = row["tools"]
    record["tool_mode"] = row.get("tool_mode")
    if row["status"] == "error":
        record["error"] = row["error"] or "error"
    scores = json.loads(row.get("scores_json") or "[]")
    if scores:
        record["scores"] = {s.pop("scorer"): {k: v for k, v in s.items() if v is not None} for s in scores}
    # Where it came from (informational; import does not need them).
    record.update({"id": row["id"], "run_id": row["run_id"], "sample_index": row["sample_index"],
                   "snapshot_id": row["snapshot_id"]})
    return {key: value for key, value in record.items() if value is not None}


def _task_part(row: dict) -> str | None:
    """The task's fields of a line ("task_id" … "metadata"), the same for every sample; None: parse instead."""
    prompt, verifier = stored_json(row["prompt_json"]), stored_json(row["verifier_json"])
    metadata = stored_json(row["metadata_json"] or "{}")
    if prompt is None or verifier is None or metadata is None:
        return None
    parts = [f'"{key}": {encode(row[column])}' for key, column in
             (("task_id", "task"), ("suite", "suite"), ("split", "split")) if row[column] is not None]
    return ", ".join([*parts, f'"prompt": {prompt}', f'"verifier": {verifier}', f'"metadata": {metadata}'])


def rollout_line(row: dict, task_parts: dict | None = None) -> str:
    """`rollout_record(row)` as one JSONL line, built from the stored JSON texts without parsing them again.

    Exports are bound by JSON work: the prompt, verifier, metadata and messages are kept as the text the
    workspace stores (checked to be one line of the right shape), so only the small fields are encoded, and
    a task's part of the line is made once for its run of samples (`task_parts`: the caller's one-task cache,
    so memory stays flat however many tasks a selection has).
    `row` carries `messages_json` (raw) instead of `messages`; anything unusual takes the parsed path.
    """
    task_parts = {} if task_parts is None else task_parts
    if row["task_id"] not in task_parts:
        task_parts.clear()
        task_parts[row["task_id"]] = _task_part(row)
    task = task_parts[row["task_id"]]
    messages = stored_json(row["messages_json"], "[")  # the reply is spliced in before its "]"
    # A trajectory (steps, tools, a tool mode) is rarer and its round trip matters more: the parsed path.
    if messages is None or task is None or row.get("steps_json") or row.get("tools") or row.get("tool_mode"):
        return json.dumps(rollout_record({**row, "messages": json.loads(row["messages_json"])}), ensure_ascii=False)
    if row["status"] == "ok" and row["output"] is not None:
        messages = with_reply(messages, row["output"])
    error = (row["error"] or "error") if row["status"] == "error" else None
    scores = None
    if row.get("scores_json") not in (None, "[]"):
        scores = {score.pop("scorer"): {k: v for k, v in score.items() if v is not None}
                  for score in json.loads(row["scores_json"])}
    return (f'{{"messages": {messages}{_field("reward", row["reward"])}{_field("feedback", row["feedback"])}, {task}'
            f'{_field("model", row["model"])}, "usage": {{"prompt_tokens": {encode(row["prompt_tokens"])}, '
            f'"completion_tokens": {encode(row["completion_tokens"])}}}{_field("latency_ms", row["latency_ms"])}'
            f'{_field("finish_reason", row["finish_reason"])}{_field("error", error)}{_field("scores", scores)}'
            f'{_field("id", row["id"])}{_field("run_id", row["run_id"])}{_field("sample_index", row["sample_index"])}'
            f'{_field("snapshot_id", row["snapshot_id"])}}}')


def _field(key: str, value) -> str:
    """`, "key": value` as JSON, or nothing for None (a record leaves out what it does not know)."""
    return "" if value is None else f', "{key}": {encode(value)}'


def export_rollouts(ws: Workspace, out: str | Path | None, *, runs: list[str] | None = None,
                    suite: str | None = None, fmt: str = "jsonl") -> RecordsExport:
    """Write the selected rollouts as chat JSONL (round-trips through import) or CSV (one row each)."""
    if fmt not in ROLLOUT_FORMATS:
        raise TransferError(f"unknown rollouts format {fmt!r} (use {' or '.join(ROLLOUT_FORMATS)})")
    selection = Selection(ws, runs, suite)
    with atomic_output(out, newline="" if fmt == "csv" else None) as handle:
        count = _write_csv(selection, handle) if fmt == "csv" else _write_jsonl(selection, handle)
        if not count:
            raise TransferError(f"no rollouts in {selection.describe()}; nothing was written")
    return RecordsExport("rollouts", None if out in (None, "-") else str(out), count)


def _write_csv(selection: Selection, handle: TextIO) -> int:
    writer = csv.writer(handle)
    writer.writerow(CSV_COLUMNS)
    count = 0
    for row in selection.rows():
        writer.writerow([
            row["id"], row["run_id"], row["suite"], row["task"], row["split"], row["sample_index"],
            row["status"], row["reward"], row["feedback"], row["error"], row["model"], row["prompt_tokens"],
            row["completion_tokens"], row["latency_ms"], row["snapshot_id"], row["lesson_count"],
            row["output"], json.dumps(row["messages"], ensure_ascii=False),
        ])
        count += 1
    return count


def _write_jsonl(selection: Selection, handle: TextIO, batch_size: int = 256) -> int:
    """The rollouts as chat JSONL, written a few hundred lines at a time."""
    task_parts: dict[str, str | None] = {}
    batch: list[str] = []
    count = 0
    for row in selection.rows(with_scores=True, parsed=False, columns=ROLLOUT_COLUMNS):
        batch.append(rollout_line(row, task_parts))
        count += 1
        if len(batch) == batch_size:
            handle.write("\n".join(batch) + "\n")
            batch.clear()
    if batch:
        handle.write("\n".join(batch) + "\n")
    return count


def lessons_document(ws: Workspace, status: str | tuple[str, ...] | None = None) -> dict:
    """Every lesson (or those of one or several statuses) with its versions, events and provenance."""
    statuses = (status,) if isinstance(status, str) else status
    rows = [lesson for lesson in L.list_lessons(ws) if not statuses or lesson.status in statuses]
    lessons = []
    for lesson in rows:
        history = L.lesson_history(ws, lesson.id)
        for version in history["versions"]:
            version.pop("diff", None)
        lessons.append({**history["lesson"], "versions": history["versions"], "events": history["events"],
                        "proposals": history["proposals"], "reflection": history["reflection"],
                        "used_in": history["used_in"]})
    return {"format": "lessonlab-lessons", "version": 1,
            "exported_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "workspace": str(ws.path), "lessons": lessons}


def _markdown(document: dict, handle: TextIO) -> None:
    lessons = document["lessons"]
    handle.write(f"# Lessons\n\nExported from `{document['workspace']}` on {document['exported_at']}: "
                 f"{len(lessons)} lesson(s).\n")
    for status in L.STATUSES:
        group = [lesson for lesson in lessons if lesson["status"] == status]
        if not group:
            continue
        handle.write(f"\n## {status.capitalize()} ({len(group)})\n")
        for lesson in group:
            origin = (f"from reflection {lesson['reflection_id']}" if lesson["origin"] == "reflection"
                      else "written by hand")
            handle.write(f"\n### {lesson['id']} (v{lesson['version']})\n\n{lesson['text'].strip()}\n\n"
                         f"*Scope: {scope_text(lesson['scope'])}; ~{lesson['tokens']} tokens; {origin}; "
                         f"{len(lesson['versions'])} version(s); seen by {lesson['used_in']['rollouts']} "
                         f"rollout(s); updated {lesson['updated_at']}.*\n")


def export_lessons(ws: Workspace, out: str | Path | None, *, fmt: str = "json",
                   status: str | tuple[str, ...] | None = None) -> RecordsExport:
    """Write the lessons as JSON (versions, events and provenance) or as Markdown for people."""
    if fmt not in LESSON_FORMATS:
        raise TransferError(f"unknown lessons format {fmt!r} (use {' or '.join(LESSON_FORMATS)})")
    for one in ((status,) if isinstance(status, str) else status or ()):
        if one not in L.STATUSES:
            raise TransferError(f"unknown status {one!r} (use {', '.join(L.STATUSES)})")
    ensure_intact(ws.conn, ws.path)
    document = lessons_document(ws, status)
    with atomic_output(out) as handle:
        if fmt == "json":
            handle.write(json.dumps(document, indent=2, ensure_ascii=False, default=str) + "\n")
        else:
            _markdown(document, handle)
    return RecordsExport("lessons", None if out in (None, "-") else str(out), len(document["lessons"]))
