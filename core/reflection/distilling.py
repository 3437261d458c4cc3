"""Distill: ask for merge/edit/retire proposals that bring the active lessons under the token budget."""
from __future__ import annotations

import asyncio
import json
import threading
from typing import Callable

from lessonlab.core import formatting

from lessonlab.core.models import llm_client
from lessonlab.core.impact import impact_table
from lessonlab.core.lessons import Lesson, estimate_tokens, list_lessons
from lessonlab.core.resources import read_prompt
from lessonlab.core.settings import Endpoint, Settings
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.reflection.context import Context
from lessonlab.core.reflection.model_call import reply_params
from lessonlab.core.reflection.pipeline import run_reflection
from lessonlab.core.reflection.prompting import ReflectionRequest
from lessonlab.core.reflection.results import ReflectionError, ReflectionResult


def lesson_usage(ws: Workspace, lesson_id: str) -> dict:
    """How many scored rollouts saw this lesson and their mean reward (a rough figure, not a matched impact)."""
    row = ws.one(
        "SELECT COUNT(r.id) AS rollouts, AVG(r.reward) AS mean_reward FROM snapshot_lessons sl"
        " JOIN rollouts r ON r.snapshot_id = sl.snapshot_id WHERE sl.lesson_id = ? AND r.status = 'ok'",
        (lesson_id,),
    )
    return {"rollouts": row["rollouts"] or 0, "mean_reward": row["mean_reward"]}


def _impact_text(row) -> str:
    """Impact figures for the distill prompt: weak or harmful lessons should be the first to go."""
    if row is None:
        return "impact not measured"
    parts = [f"observed lift {row.observational.describe()}"]
    if row.confounded_with:
        parts.append("confounded with " + ", ".join(row.confounded_with))
    ablation = row.latest_ablation
    if ablation and ablation.get("lift") is not None:
        parts.append(f"ablation lift {ablation['lift']:+.2f} [{ablation['ci_low']:+.2f}, {ablation['ci_high']:+.2f}]")
    return "; ".join(parts)


def projected_tokens(lessons: list[Lesson], operations: list[dict]) -> int:
    """Estimated lesson tokens if these (valid) operations were all applied."""
    texts = {lesson.id: lesson.text for lesson in lessons}
    extra: list[str] = []
    for op in operations:
        ids = op["lesson_ids"]
        if op["op"] == "retire":
            for i in ids:
                texts.pop(i, None)
        elif op["op"] == "edit" and ids and ids[0] in texts:
            texts[ids[0]] = op["text"]
        elif op["op"] == "merge":
            for i in ids:
                texts.pop(i, None)
            extra.append(op["text"])
        elif op["op"] == "add":
            extra.append(op["text"])
    return sum(estimate_tokens(t) for t in [*texts.values(), *extra])


async def distill_async(
    ws: Workspace, endpoint: Endpoint, *, base_url: str | None = None, budget: int | None = None,
    settings: Settings | None = None, max_tokens: int | None = None, temperature: float | None = None,
    on_chunk: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
    retry: llm_client.RetryPolicy = llm_client.RetryPolicy(), prompt_name: str = "distill.md",
) -> ReflectionResult:
    """Ask for merge/edit/retire proposals that bring the active lessons under the token budget."""
    settings = settings or Settings()
    budget = budget or settings.lesson_token_budget
    if budget < 1:
        raise ReflectionError("--budget must be at least 1 token")
    lessons = list_lessons(ws, status="active")
    if not lessons:
        raise ReflectionError("there are no active lessons to distill")
    before = sum(lesson.tokens for lesson in lessons)
    impacts = {row.lesson_id: row for row in impact_table(ws, statuses=("active",))}
    lines = ["## Active lessons"]
    for lesson in lessons:
        usage = lesson_usage(ws, lesson.id)
        seen = (f"seen by {usage['rollouts']} scored rollouts, mean reward {usage['mean_reward']:.2f}"
                if usage["rollouts"] else "not used in any run yet")
        scope = formatting.scope(lesson.scope, long=True)
        lines.append(f"[{lesson.id}] ({scope}, ~{lesson.tokens} tokens; {seen}; "
                     f"{_impact_text(impacts.get(lesson.id))}) {lesson.text}")
    text = "\n".join(lines)
    context = Context(text, [], [], [lesson.id for lesson in lessons], [], estimate_tokens(text))
    template = read_prompt(prompt_name)
    result = await run_reflection(ws, ReflectionRequest(
        kind="distill", endpoint=endpoint, base_url=base_url, prompt_name=prompt_name, template=template,
        values={"tokens": before, "budget": budget}, context=context,
        lessons={lesson.id: lesson for lesson in lessons}, allowed_ops=("merge", "edit", "retire"), rows=[],
        params=reply_params(endpoint, max_tokens, temperature), on_chunk=on_chunk, cancel=cancel, retry=retry,
        leak_suites={r["suite"] for r in ws.query("SELECT DISTINCT suite FROM tasks")},
    ))
    result.tokens_before = before
    pending = [p for p in _proposal_rows(ws, result.proposal_ids) if p["status"] == "pending"]
    result.tokens_after = projected_tokens(lessons, pending)
    return result


def _proposal_rows(ws: Workspace, ids: list[str]) -> list[dict]:
    """The proposals with these ids, in creation order, with their lesson ids decoded."""
    if not ids:
        return []
    rows = ws.query(f"SELECT * FROM proposals WHERE id IN ({','.join('?' * len(ids))}) ORDER BY created_at, rowid", ids)
    for row in rows:
        row["lesson_ids"] = json.loads(row["lesson_ids_json"])
    return rows


def distill(ws: Workspace, endpoint: Endpoint, **kwargs) -> ReflectionResult:
    """Blocking distill_async."""
    return asyncio.run(distill_async(ws, endpoint, **kwargs))
