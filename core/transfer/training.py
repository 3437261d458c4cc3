"""Training data out of rollouts: SFT examples (OpenAI chat fine-tuning JSONL) and DPO preference pairs.

With `strip_lessons` each example's system prompt is rebuilt from its snapshot's base prompt without the
lessons block (the snapshot records both, so nothing is cut out of text by pattern): a model tuned on
such data learns to behave as if the lessons were in its prompt.

A trajectory keeps its steps in the OpenAI fine-tuning shape: assistant messages with `tool_calls`, the
`tool` messages answering them, then the final reply; the line carries the `tools` list the rollout was
sent with where it is known (an imported log without tool schemas gets none: nothing is guessed). In DPO
the prompt is what came before the first model call, and each output is the whole continuation.
How one stored request becomes an example is in `examples`.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from lessonlab.core.lessons import estimate_tokens
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.transfer.errors import TransferError
from lessonlab.core.transfer.examples import Request, Requests, message_tokens
from lessonlab.core.transfer.jsontext import with_reply
from lessonlab.core.transfer.selection import TRAINING_COLUMNS, Selection, atomic_output


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


def _with_tools(record: dict, tools: list[dict] | None) -> dict:
    return {**record, "tools": tools} if tools else record


def _usable(row: dict, skipped: dict) -> bool:
    if row["status"] != "ok" or row["output"] is None:
        skipped["failed"] = skipped.get("failed", 0) + 1
        return False
    if row["reward"] is None:
        skipped["unscored"] = skipped.get("unscored", 0) + 1
        return False
    return True


def _sft_line(row: dict, request: Request, tokens: list[int]) -> str:
    """One SFT line (and its tokens into `tokens`); a request still as stored goes out as its text plus the reply."""
    output = row["output"]
    if request.verbatim is not None:
        tokens[0] += request.prompt_tokens + estimate_tokens(output)
        return f'{{"messages": {with_reply(request.verbatim, output)}}}'
    prompt, continuation = request.example(output)
    example = [*prompt, *continuation]
    tokens[0] += message_tokens(example)
    return json.dumps(_with_tools({"messages": example}, row["tools"]), ensure_ascii=False)


def export_sft(ws: Workspace, out: str | Path, *, runs: list[str] | None = None, suite: str | None = None,
               min_reward: float = 1.0, strip_lessons: bool = False) -> TrainingExport:
    """Write the rollouts with reward ≥ min_reward as `{"messages": [...]}` lines (system, task, reply)."""
    selection = Selection(ws, runs, suite)
    summary = TrainingExport("sft", str(out), 0, 0, 0, 0)
    tasks: set[str] = set()
    requests, tokens = Requests(strip_lessons), [0]
    with atomic_output(out) as handle:
        for row in selection.rows(parsed=False, columns=TRAINING_COLUMNS):
            summary.considered += 1
            if not _usable(row, summary.skipped):
                continue
            if row["reward"] < min_reward:
                summary.skipped["below min reward"] = summary.skipped.get("below min reward", 0) + 1
                continue
            request = requests.of(row)
            summary.stripped += request.stripped
            handle.write(_sft_line(row, request, tokens) + "\n")
            summary.examples += 1
            tasks.add(row["task_id"])
        if not summary.examples:
            raise TransferError(_nothing(selection, summary, f"with reward ≥ {min_reward:g}"))
    summary.tokens, summary.tasks = tokens[0], len(tasks)
    return summary


def _pairs(group: list[dict], requests: Requests, min_gap: float, summary: TrainingExport) -> list[tuple[dict, dict]]:
    """A task's best sample over its worst, per prompt and tools (different snapshots are different prompts)."""
    by_prompt: dict[tuple, list[tuple]] = {}
    for row in group:
        request = requests.of(row)
        summary.stripped += request.stripped
        by_prompt.setdefault(request.key, []).append((request, row))
    pairs = []
    for candidates in by_prompt.values():
        if len(candidates) < 2:
            continue
        best = max(candidates, key=lambda item: item[1]["reward"])
        worst = min(candidates, key=lambda item: item[1]["reward"])
        gap = best[1]["reward"] - worst[1]["reward"]
        if gap <= 0 or gap < min_gap:
            summary.skipped["no reward gap"] = summary.skipped.get("no reward gap", 0) + 1
            continue
        pairs.append((best, worst))
    return pairs


def export_dpo(ws: Workspace, out: str | Path, *, runs: list[str] | None = None, suite: str | None = None,
               min_gap: float = 0.0, strip_lessons: bool = False) -> TrainingExport:
    """Write one preference pair per task (and prompt): its best sample preferred over its worst."""
    selection = Selection(ws, runs, suite)
    summary = TrainingExport("dpo", str(out), 0, 0, 0, 0)
    tasks: set[str] = set()
    requests = Requests(strip_lessons)

    def emit(group: list[dict], handle) -> None:
        for (best, best_row), (worst, worst_row) in _pairs(group, requests, min_gap, summary):
            prompt, preferred = best.example(best_row["output"])
            non_preferred = worst.example(worst_row["output"])[1]
            record = {"input": _with_tools({"messages": prompt}, best_row["tools"]),
                      "preferred_output": preferred, "non_preferred_output": non_preferred}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            summary.examples += 1
            summary.tokens += message_tokens(prompt) + message_tokens(preferred) + message_tokens(non_preferred)
            tasks.add(best_row["task_id"])

    with atomic_output(out) as handle:
        group: list[dict] = []
        for row in selection.rows(by_task=True, parsed=False, columns=TRAINING_COLUMNS):
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
