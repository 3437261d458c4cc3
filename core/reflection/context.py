"""The meta-prompt's context: the rollouts grouped by task, as much of them as fits the token budget.

A single-call rollout shows its output; a multi-step one (a run with tools, an imported agent log) shows
its numbered steps (see `steps_text`), so the model can cite `ro_x#N` as evidence.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from lessonlab.core import formatting
from lessonlab.core.lessons import Lesson, estimate_tokens
from lessonlab.core.runs.trajectory import is_multi_step, read_trajectory
from lessonlab.core.settings import Endpoint, Settings
from lessonlab.core.lessons.snapshots import snapshot_lessons
from lessonlab.core.resources import read_prompt
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.reflection.steps_text import render_steps

MAX_MESSAGE_CHARS = 1500          # longer task prompts and outputs are cut in the middle
LOCAL_CONTEXT_CAP = 2000          # the embedded model has a 4096-token window; leave room for the reply
MIN_STEPS_CHARS, MAX_STEPS_CHARS = 1000, 6000   # one trajectory's share of the context, in characters
# Said once, before the attempts, when any of them has steps (a context without one reads as it always did).
STEPS_GUIDANCE_PROMPT = "reflect_steps.md"


def context_budget(endpoint: Endpoint, settings: Settings | None, override: int | None) -> int:
    """Tokens allowed for the meta-prompt: the override, else the setting (capped for the small local model)."""
    if override:
        return override
    budget = (settings or Settings()).reflection_context_tokens
    return min(budget, LOCAL_CONTEXT_CAP) if endpoint.is_local else budget


def cut_middle(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Text shortened to about `limit` characters by cutting out its middle, saying how much was cut."""
    return formatting.cut_middle(text, limit)


def prompt_text(prompt_json: str) -> str:
    """A task's stored prompt as plain text: the string itself, or one '[role] content' line per message."""
    prompt = json.loads(prompt_json)
    if isinstance(prompt, str):
        return prompt
    return "\n".join(f"[{m.get('role')}] {m.get('content')}" for m in prompt)


def _task_priority(rows: list[dict]) -> int:
    """0: samples disagree, 1: all fail, 2: all succeed — disagreement teaches the most."""
    rewards = [r["reward"] for r in rows]
    if max(rewards) - min(rewards) > 1e-9:
        return 0
    return 1 if max(rewards) < 1.0 else 2


def _spread(rows: list[dict]) -> list[dict]:
    """Samples ordered lowest, highest, next lowest, … so a tight budget still keeps both kinds."""
    ordered = sorted(rows, key=lambda r: (r["reward"], r["id"]))
    out, lo, hi = [], 0, len(ordered) - 1
    while lo <= hi:
        out.append(ordered[lo])
        if hi != lo:
            out.append(ordered[hi])
        lo, hi = lo + 1, hi - 1
    return out


@dataclass
class Context:
    """The rendered context block and the record of what went in and what was left out."""

    text: str
    included: list[str]
    omitted: list[dict]
    lesson_ids: list[str]
    task_ids: list[str]
    tokens: int
    steps: dict[str, int] = field(default_factory=dict)   # included multi-step rollout id -> its number of steps

    def evidence_ids(self) -> list[str]:
        """What the model may cite: each included rollout, and each step `ro_x#N` of the multi-step ones."""
        return [*self.included, *(f"{rid}#{n}" for rid, count in self.steps.items() for n in range(1, count + 1))]


def _lessons_block(lessons: list[Lesson]) -> str:
    """The current lessons with their ids, so operations can name them."""
    if not lessons:
        return "## Current lessons\n(none yet)\n"
    lines = ["## Current lessons"]
    for lesson in lessons:
        lines.append(f"[{lesson.id}] ({formatting.scope(lesson.scope, long=True)}, ~{lesson.tokens} tokens) "
                     f"{lesson.text}")
    return "\n".join(lines) + "\n"


def _usable(rows: list[dict], omitted: list[dict]) -> list[dict]:
    """The rollouts a reflection may read; the others go to `omitted` with the reason."""
    usable = []
    for row in rows:
        if row["split"] != "train":
            omitted.append({"rollout_id": row["id"], "reason": f"{row['split']} task (held-out tasks stay held out)"})
        elif row["status"] == "ok" and row["reward"] is None:
            omitted.append({"rollout_id": row["id"], "reason": "unscored (no reward given yet)"})
        elif row["status"] != "ok" or row["reward"] is None:
            omitted.append({"rollout_id": row["id"], "reason": "the model call failed; no output to review"})
        else:
            usable.append(row)
    return usable


def _steps_of(ws: Workspace, row: dict) -> list:
    """The rollout's numbered steps; none for a single-call rollout."""
    # Read one rollout at a time: a large run's messages never sit in memory all at once.
    text = ws.one("SELECT messages_json, steps_json FROM rollout_texts WHERE rollout_id = ?", (row["id"],))
    messages = json.loads(text["messages_json"]) if text and text["messages_json"] else []
    if not is_multi_step(messages):
        return []
    return read_trajectory(messages, row["output"], text["steps_json"])[1]


class _Attempts:
    """Renders attempt blocks, remembering each snapshot's lessons line (many attempts share one snapshot)."""

    def __init__(self, ws: Workspace, steps_chars: int):
        self.ws, self.steps_chars = ws, steps_chars
        self.snapshots: dict[str, str] = {}

    def lessons_line(self, snapshot_id: str) -> str:
        if snapshot_id not in self.snapshots:
            held = snapshot_lessons(self.ws, snapshot_id)
            self.snapshots[snapshot_id] = (", ".join(f"{h['lesson_id']} v{h['version']}" for h in held)
                                           if held else "none")
        return self.snapshots[snapshot_id]

    def block(self, row: dict, steps: list) -> str:
        head = (f"\n#### Attempt {row['id']} — reward {row['reward']:.2f}\n"
                f"Verifier feedback: {row['feedback'] or '(none)'}\n"
                f"Lessons in its system prompt: {self.lessons_line(row['snapshot_id'])}\n")
        if not steps:
            return head + f"Output:\n{cut_middle(row['output'] or '')}\n"
        return (head + f"Steps ({len(steps)} model calls; cite one as {row['id']}#N):\n"
                + render_steps(row["id"], steps, self.steps_chars) + "\n")


def build_reflect_context(ws: Workspace, rows: list[dict], lessons: list[Lesson], budget_tokens: int,
                          fixed_tokens: int = 0) -> Context:
    """Group rollouts by task, prefer disagreeing or failing tasks, and fit what we can into the budget."""
    omitted: list[dict] = []
    groups: dict[str, list[dict]] = {}
    for row in _usable(rows, omitted):
        groups.setdefault(row["task_id"], []).append(row)
    order = sorted(groups.values(), key=_task_priority)  # stable: first-seen order within a priority

    lessons_text = _lessons_block(lessons)
    used = fixed_tokens + estimate_tokens(lessons_text) + 20
    parts = [lessons_text, "## Attempts"]
    context = Context("", [], omitted, [lesson.id for lesson in lessons], [], 0)
    attempts = _Attempts(ws, min(MAX_STEPS_CHARS, max(MIN_STEPS_CHARS, budget_tokens)))
    guidance = read_prompt(STEPS_GUIDANCE_PROMPT).strip()
    for group in order:
        first = group[0]
        rewards = " ".join(f"{r['reward']:.2f}" for r in group)
        header = (f"\n### Task {first['suite']}/{first['task']} — {len(group)} attempt(s), rewards {rewards}\n"
                  f"Task prompt:\n{cut_middle(prompt_text(first['prompt_json']))}\n")
        header_tokens = estimate_tokens(header)
        group_parts: list[str] = []
        for row in _spread(group):
            steps = _steps_of(ws, row)
            block = attempts.block(row, steps)
            cost = estimate_tokens(block) + (0 if group_parts else header_tokens)
            cost += estimate_tokens(guidance) if steps and not context.steps else 0
            if used + cost > budget_tokens:
                omitted.append({"rollout_id": row["id"],
                                "reason": f"did not fit the context budget of {budget_tokens} tokens"})
                continue
            used += cost
            group_parts.append(block)
            context.included.append(row["id"])
            if steps:
                context.steps[row["id"]] = len(steps)
        if group_parts:
            parts.append(header + "".join(group_parts))
            context.task_ids.append(first["task_id"])
    if context.steps:
        parts.insert(2, guidance)
    context.text, context.tokens = "\n".join(parts), used
    return context
