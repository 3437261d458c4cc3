"""The meta-prompt's context: which rollouts to reflect on and how much of them fits the token budget."""
from __future__ import annotations

import json
from dataclasses import dataclass

from lessonlab.core import formatting
from lessonlab.core.errors import NotFound
from lessonlab.core.lessons import Lesson, estimate_tokens
from lessonlab.core.runs.queries import resolve_id
from lessonlab.core.settings import Endpoint, Settings
from lessonlab.core.lessons.snapshots import snapshot_lessons
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.reflection.results import ReflectionError

MAX_MESSAGE_CHARS = 1500          # longer task prompts and outputs are cut in the middle
LOCAL_CONTEXT_CAP = 2000          # the embedded model has a 4096-token window; leave room for the reply

_ROLLOUT_SQL = """
    SELECT r.id, r.run_id, r.task_id, r.sample_index, r.snapshot_id, r.status, r.reward, r.feedback, r.error,
           r.created_at, t.suite, t.name AS task, t.split, t.prompt_json, x.output
    FROM rollouts r JOIN tasks t ON t.id = r.task_id JOIN rollout_texts x ON x.rollout_id = r.id
"""


def select_rollouts(ws: Workspace, *, run_id: str | None = None, rollout_ids: list[str] | None = None,
                    suite: str | None = None, last: int | None = None) -> list[dict]:
    """The rollouts named by a run id, explicit rollout ids, or the last N runs of a suite."""
    chosen = [bool(run_id), bool(rollout_ids), bool(suite)]
    if sum(chosen) != 1:
        raise ReflectionError("say what to reflect on: --run RUN, or --rollouts ID..., or --suite S [--last N]")
    try:
        if run_id:
            full = resolve_id(ws, "runs", run_id)
            rows = ws.query(_ROLLOUT_SQL + " WHERE r.run_id = ? ORDER BY r.created_at, r.id", (full,))
        elif rollout_ids:
            ids = [resolve_id(ws, "rollouts", ident) for ident in rollout_ids]
            rows = ws.query(_ROLLOUT_SQL + f" WHERE r.id IN ({','.join('?' * len(ids))}) ORDER BY r.created_at, r.id",
                            ids)
        else:
            if last is not None and last < 1:
                raise ReflectionError("--last must be at least 1")
            runs = ws.query("SELECT id FROM runs WHERE suite = ? ORDER BY created_at DESC LIMIT ?", (suite, last or 1))
            if not runs:
                raise ReflectionError(f"no runs of suite {suite!r} yet")
            ids = [r["id"] for r in runs]
            rows = ws.query(
                _ROLLOUT_SQL + f" WHERE r.run_id IN ({','.join('?' * len(ids))}) ORDER BY r.created_at, r.id", ids
            )
    except NotFound as exc:
        raise ReflectionError(str(exc)) from exc
    if not rows:
        raise ReflectionError("no rollouts to reflect on")
    return rows


def context_budget(endpoint: Endpoint, settings: Settings | None, override: int | None) -> int:
    """Tokens allowed for the meta-prompt: the override, else the setting (capped for the small local model)."""
    if override:
        return override
    budget = (settings or Settings()).reflection_context_tokens
    return min(budget, LOCAL_CONTEXT_CAP) if endpoint.is_local else budget


def cut_middle(text: str, limit: int = MAX_MESSAGE_CHARS) -> str:
    """Text shortened to about `limit` characters by cutting out its middle, saying how much was cut."""
    text = text or ""
    if len(text) <= limit:
        return text
    keep = limit // 2
    cut = len(text) - 2 * keep
    return f"{text[:keep]}\n[… {cut} characters cut …]\n{text[-keep:]}"


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


def _lessons_block(lessons: list[Lesson]) -> str:
    """The current lessons with their ids, so operations can name them."""
    if not lessons:
        return "## Current lessons\n(none yet)\n"
    lines = ["## Current lessons"]
    for lesson in lessons:
        lines.append(f"[{lesson.id}] ({formatting.scope(lesson.scope, long=True)}, ~{lesson.tokens} tokens) "
                     f"{lesson.text}")
    return "\n".join(lines) + "\n"


def build_reflect_context(ws: Workspace, rows: list[dict], lessons: list[Lesson], budget_tokens: int,
                          fixed_tokens: int = 0) -> Context:
    """Group rollouts by task, prefer disagreeing or failing tasks, and fit what we can into the budget."""
    omitted: list[dict] = []
    usable: list[dict] = []
    for row in rows:
        if row["split"] != "train":
            omitted.append({"rollout_id": row["id"], "reason": f"{row['split']} task (held-out tasks stay held out)"})
        elif row["status"] == "ok" and row["reward"] is None:
            omitted.append({"rollout_id": row["id"], "reason": "unscored (no reward given yet)"})
        elif row["status"] != "ok" or row["reward"] is None:
            omitted.append({"rollout_id": row["id"], "reason": "the model call failed; no output to review"})
        else:
            usable.append(row)
    groups: dict[str, list[dict]] = {}
    for row in usable:
        groups.setdefault(row["task_id"], []).append(row)
    order = sorted(groups.values(), key=_task_priority)  # stable: first-seen order within a priority

    lessons_text = _lessons_block(lessons)
    used = fixed_tokens + estimate_tokens(lessons_text) + 20
    parts = [lessons_text, "## Attempts"]
    included: list[str] = []
    task_ids: list[str] = []
    snapshot_cache: dict[str, str] = {}
    for group in order:
        first = group[0]
        rewards = " ".join(f"{r['reward']:.2f}" for r in group)
        header = (f"\n### Task {first['suite']}/{first['task']} — {len(group)} attempt(s), rewards {rewards}\n"
                  f"Task prompt:\n{cut_middle(prompt_text(first['prompt_json']))}\n")
        header_tokens = estimate_tokens(header)
        group_parts: list[str] = []
        for row in _spread(group):
            if row["snapshot_id"] not in snapshot_cache:
                held = snapshot_lessons(ws, row["snapshot_id"])
                snapshot_cache[row["snapshot_id"]] = (
                    ", ".join(f"{h['lesson_id']} v{h['version']}" for h in held) if held else "none")
            block = (f"\n#### Attempt {row['id']} — reward {row['reward']:.2f}\n"
                     f"Verifier feedback: {row['feedback'] or '(none)'}\n"
                     f"Lessons in its system prompt: {snapshot_cache[row['snapshot_id']]}\n"
                     f"Output:\n{cut_middle(row['output'] or '')}\n")
            cost = estimate_tokens(block) + (0 if group_parts else header_tokens)
            if used + cost > budget_tokens:
                omitted.append({"rollout_id": row["id"],
                                "reason": f"did not fit the context budget of {budget_tokens} tokens"})
                continue
            used += cost
            group_parts.append(block)
            included.append(row["id"])
        if group_parts:
            parts.append(header + "".join(group_parts))
            task_ids.append(first["task_id"])
    return Context("\n".join(parts), included, omitted, [lesson.id for lesson in lessons], task_ids, used)
