"""Training data out of rollouts: SFT examples (OpenAI chat fine-tuning JSONL) and DPO preference pairs.

With `strip_lessons` each example's system prompt is rebuilt from its snapshot's base prompt without the
lessons block (the snapshot records both, so nothing is cut out of text by pattern): a model tuned on
such data learns to behave as if the lessons were in its prompt.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lessonlab.core.lessons import estimate_tokens
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.transfer.errors import TransferError
from lessonlab.core.transfer.selection import Selection, atomic_output, without_lessons


@dataclass
class TrainingExport:
    """What an export wrote."""

    kind: str                      # sft | dpo
    path: str
    examples: int                  # SFT examples or DPO pairs
    tasks: int
    tokens: int                    # estimated as ceil(characters / 4), like every budget in lessonlab
    considered: int                # rollouts looked at
    stripped: int = 0              # examples whose system prompt was rebuilt without lessons
    skipped: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """The fields as a plain dict (for JSON output)."""
        return dict(self.__dict__)


def _tokens(messages: list[dict]) -> int:
    return sum(estimate_tokens(m.get("content") or "") for m in messages)


def _usable(row: dict, skipped: dict) -> bool:
    if row["status"] != "ok" or row["output"] is None:
        skipped["failed"] = skipped.get("failed", 0) + 1
        return False
    if row["reward"] is None:
        skipped["unscored"] = skipped.get("unscored", 0) + 1
        return False
    return True


def export_sft(ws: Workspace, out: str | Path, *, runs: list[str] | None = None, suite: str | None = None,
               min_reward: float = 1.0, strip_lessons: bool = False) -> TrainingExport:
    """Write the rollouts with reward ≥ min_reward as `{"messages": [...]}` lines (system, task, reply)."""
    selection = Selection(ws, runs, suite)
    summary = TrainingExport("sft", str(out), 0, 0, 0, 0)
    tasks: set[str] = set()
    with atomic_output(out) as handle:
        for row in selection.rows():
            summary.considered += 1
            if not _usable(row, summary.skipped):
                continue
            if row["reward"] < min_reward:
                summary.skipped["below min reward"] = summary.skipped.get("below min reward", 0) + 1
                continue
            messages = row["messages"]
            if strip_lessons:
                rebuilt = without_lessons(messages, row)
                summary.stripped += rebuilt is not messages
                messages = rebuilt
            example = [*messages, {"role": "assistant", "content": row["output"]}]
            handle.write(json.dumps({"messages": example}, ensure_ascii=False) + "\n")
            summary.examples += 1
            summary.tokens += _tokens(example)
            tasks.add(row["task_id"])
        if not summary.examples:
            raise TransferError(_nothing(selection, summary, f"with reward ≥ {min_reward:g}"))
    summary.tasks = len(tasks)
    return summary


def export_dpo(ws: Workspace, out: str | Path, *, runs: list[str] | None = None, suite: str | None = None,
               min_gap: float = 0.0, strip_lessons: bool = False) -> TrainingExport:
    """Write one preference pair per task (and prompt): its best sample preferred over its worst."""
    selection = Selection(ws, runs, suite)
    summary = TrainingExport("dpo", str(out), 0, 0, 0, 0)
    tasks: set[str] = set()

    def emit(group: list[dict], handle) -> None:
        # Pair only samples that saw the same prompt (different snapshots are different prompts).
        by_prompt: dict[str, list[tuple[list[dict], dict]]] = {}
        for row in group:
            messages = row["messages"]
            if strip_lessons:
                rebuilt = without_lessons(messages, row)
                summary.stripped += rebuilt is not messages
                messages = rebuilt
            by_prompt.setdefault(json.dumps(messages, sort_keys=True), []).append((messages, row))
        for candidates in by_prompt.values():
            if len(candidates) < 2:
                continue
            best = max(candidates, key=lambda item: item[1]["reward"])
            worst = min(candidates, key=lambda item: item[1]["reward"])
            gap = best[1]["reward"] - worst[1]["reward"]
            if gap <= 0 or gap < min_gap:
                summary.skipped["no reward gap"] = summary.skipped.get("no reward gap", 0) + 1
                continue
            record = {
                "input": {"messages": best[0]},
                "preferred_output": [{"role": "assistant", "content": best[1]["output"]}],
                "non_preferred_output": [{"role": "assistant", "content": worst[1]["output"]}],
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            summary.examples += 1
            summary.tokens += _tokens(best[0]) + estimate_tokens(best[1]["output"]) + estimate_tokens(worst[1]["output"])
            tasks.add(best[1]["task_id"])

    with atomic_output(out) as handle:
        group: list[dict] = []
        for row in selection.rows(by_task=True):
            summary.considered += 1
            if not _usable(row, summary.skipped):
                continue
            if group and group[0]["task_id"] != row["task_id"]:
                emit(group, handle)
                group = []
            group.append(row)
        if group:
            emit(group, handle)
        if not summary.examples:
            raise TransferError(_nothing(selection, summary, "whose best and worst samples differ in reward"))
    summary.tasks = len(tasks)
    return summary


def _nothing(selection: Selection, summary: TrainingExport, wanted: str) -> str:
    skipped = ", ".join(f"{n} {why}" for why, n in summary.skipped.items())
    return (f"nothing to export: no rollouts of {selection.describe()} {wanted} "
            f"({summary.considered} looked at{'; ' + skipped if skipped else ''}); nothing was written")
