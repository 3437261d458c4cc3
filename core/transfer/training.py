"""Training data out of rollouts: SFT examples (OpenAI chat fine-tuning JSONL) and DPO preference pairs.

With `strip_lessons` each example's system prompt is rebuilt from its snapshot's base prompt without the
lessons block (the snapshot records both, so nothing is cut out of text by pattern): a model tuned on
such data learns to behave as if the lessons were in its prompt.

A trajectory keeps its steps in the OpenAI fine-tuning shape: assistant messages with `tool_calls`, the
`tool` messages answering them, then the final reply; the line carries the `tools` list the rollout was
sent with where it is known (an imported log without tool schemas gets none: nothing is guessed). In DPO
the prompt is what came before the first model call, and each output is the whole continuation.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lessonlab.core.lessons import estimate_tokens
from lessonlab.core.runs.trajectory import is_multi_step
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.transfer.errors import TransferError
from lessonlab.core.transfer.imported import tool_call
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


_FINE_TUNING_KEYS = {"assistant": ("role", "content", "name", "tool_calls"), "tool": ("role", "tool_call_id", "content")}


def fine_tuning_message(message: dict) -> dict:
    """A stored message with only the keys the fine-tuning format has for its role (tool calls made uniform)."""
    keys = _FINE_TUNING_KEYS.get(message.get("role"), ("role", "content", "name"))
    out = {key: message[key] for key in keys if message.get(key) is not None}
    out.setdefault("content", "" if message.get("role") != "assistant" or not out.get("tool_calls") else None)
    if out.get("tool_calls"):
        out["tool_calls"] = [tool_call(call) for call in out["tool_calls"] if isinstance(call, dict)]
    return out


def prompt_and_continuation(messages: list[dict], output: str) -> tuple[list[dict], list[dict]]:
    """The request before the first model call, and everything the model did from there (its steps, the reply)."""
    first = len(messages)
    if is_multi_step(messages):
        first = next((i for i, m in enumerate(messages) if m.get("role") == "assistant"), len(messages))
    continuation = [*messages[first:], {"role": "assistant", "content": output}]
    return ([fine_tuning_message(m) for m in messages[:first]], [fine_tuning_message(m) for m in continuation])


def _with_tools(record: dict, tools: list[dict] | None) -> dict:
    return {**record, "tools": tools} if tools else record


def _tokens(messages: list[dict]) -> int:
    return sum(estimate_tokens(m.get("content") or "")
               + (estimate_tokens(json.dumps(m["tool_calls"])) if m.get("tool_calls") else 0) for m in messages)


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
            prompt, continuation = prompt_and_continuation(messages, row["output"])
            example = [*prompt, *continuation]
            handle.write(json.dumps(_with_tools({"messages": example}, row["tools"]), ensure_ascii=False) + "\n")
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
        # Pair only samples that saw the same prompt and tools (different snapshots are different prompts).
        by_prompt: dict[str, list[tuple[list[dict], list[dict], dict]]] = {}
        for row in group:
            messages = row["messages"]
            if strip_lessons:
                rebuilt = without_lessons(messages, row)
                summary.stripped += rebuilt is not messages
                messages = rebuilt
            prompt, continuation = prompt_and_continuation(messages, row["output"])
            key = json.dumps([prompt, row["tools"]], sort_keys=True)
            by_prompt.setdefault(key, []).append((prompt, continuation, row))
        for candidates in by_prompt.values():
            if len(candidates) < 2:
                continue
            best = max(candidates, key=lambda item: item[2]["reward"])
            worst = min(candidates, key=lambda item: item[2]["reward"])
            gap = best[2]["reward"] - worst[2]["reward"]
            if gap <= 0 or gap < min_gap:
                summary.skipped["no reward gap"] = summary.skipped.get("no reward gap", 0) + 1
                continue
            record = {
                "input": _with_tools({"messages": best[0]}, best[2]["tools"]),
                "preferred_output": best[1],
                "non_preferred_output": worst[1],
            }
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            summary.examples += 1
            summary.tokens += _tokens(best[0]) + _tokens(best[1]) + _tokens(worst[1])
            tasks.add(best[2]["task_id"])

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
