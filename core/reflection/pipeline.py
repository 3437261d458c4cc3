"""The reflect pipeline: build the meta-prompt, call the model, store the reply verbatim and its proposals.

Nothing the model says is applied here: every operation becomes a `pending` proposal (or an `invalid`
one, with the reason) that a person accepts or rejects. The reply is stored verbatim before it is
parsed, so a reply that is not JSON is kept with the parse error and the reflection marked failed.
"""
from __future__ import annotations

import asyncio
import json
import re
import threading
from collections import Counter
from typing import Callable

from lessonlab.core.models import llm_client
from lessonlab.core.lessons import Lesson, active_lessons, estimate_tokens, list_lessons
from lessonlab.core.resources import read_prompt, sha256
from lessonlab.core.runs.owner import this_process
from lessonlab.core.settings import Endpoint, Settings
from lessonlab.core.storage.workspace import Workspace, new_id, now
from lessonlab.core.reflection.context import Context, build_reflect_context, context_budget, select_rollouts
from lessonlab.core.reflection.leakage import check_leakage, leakage_pool
from lessonlab.core.reflection.model_call import call_model, reply_params
from lessonlab.core.reflection.modes import modes_to_try, remember_mode
from lessonlab.core.reflection.parsing import OPS, kept_operations, parse_reply, validate_operation
from lessonlab.core.reflection.schema import response_format
from lessonlab.core.reflection.results import ReflectionError, ReflectionResult


def _render(template: str, values: dict) -> str:
    """The meta-prompt: each {name} of `values` replaced; other braces (JSON examples) left alone."""
    return re.sub(r"\{(" + "|".join(values) + r")\}", lambda m: str(values[m.group(1)]), template)


async def run_reflection(
    ws: Workspace, *, kind: str, endpoint: Endpoint, base_url: str | None, prompt_name: str, template: str,
    values: dict, context: Context, lessons: dict[str, Lesson], allowed_ops: tuple[str, ...],
    rows: list[dict], params: dict, on_chunk, cancel, retry: llm_client.RetryPolicy, leak_suites: set[str],
) -> ReflectionResult:
    """Store a running reflection, call the model, then store the raw reply, its parse and its proposals."""
    prompt = _render(template, {**values, "context": context.text})
    messages = [{"role": "user", "content": prompt}]
    reflection_id = new_id("ref", 4)
    context_record = {
        "included_rollouts": context.included, "omitted_rollouts": context.omitted,
        "lessons": context.lesson_ids, "tasks": context.task_ids, "estimated_tokens": context.tokens,
        "budget_tokens": values.get("budget_tokens"),
    }
    included = set(context.included)
    schema_args = {
        "allowed_ops": allowed_ops, "lesson_ids": list(lessons), "evidence_ids": list(context.included),
        # A context with a failure in it must yield something to try: at least one operation.
        "require_operation": any(r["reward"] is not None and r["reward"] < 1 for r in rows if r["id"] in included),
    }
    modes = modes_to_try(ws, endpoint)
    formats = [(mode, response_format(mode, schema_args)) for mode in modes]
    request = {"model": endpoint.model, "messages": messages, **params}
    if formats[0][1] is not None:
        request["response_format"] = formats[0][1]
    owner = this_process()   # a reflection whose process dies reads as interrupted, not running forever
    with ws.transaction():
        ws.db["reflections"].insert({
            "id": reflection_id, "kind": kind, "endpoint": endpoint.name, "model": endpoint.model,
            "server_model": None, "prompt_name": prompt_name, "prompt_hash": sha256(template),
            "request_json": json.dumps(request), "raw_reply": None, "analysis": None, "status": "running",
            "error": None, "context_json": json.dumps(context_record), "prompt_tokens": None,
            "completion_tokens": None, "created_at": now(), "response_mode": modes[0],
            "owner_pid": owner.pid, "owner_host": owner.host, "owner_started": owner.started,
        })
        reasons = {o["rollout_id"]: o["reason"] for o in context.omitted}
        ws.conn.executemany(
            "INSERT OR IGNORE INTO reflection_rollouts (reflection_id, rollout_id, included, reason) VALUES (?, ?, ?, ?)",
            [(reflection_id, r["id"], int(r["id"] in context.included), reasons.get(r["id"])) for r in rows],
        )
    parts: list[str] = []
    result = ReflectionResult(reflection_id, kind, "failed", None, None,
                              n_included=len(context.included), n_omitted=len(context.omitted),
                              response_mode=modes[0])
    try:
        reply, body, notes, mode = await call_model(endpoint, base_url, messages, params, formats=formats,
                                                    on_chunk=on_chunk, cancel=cancel, retry=retry, parts=parts)
    except (asyncio.CancelledError, llm_client.ModelCallError, Exception) as exc:  # noqa: BLE001 - stored, never lost
        error = "cancelled" if isinstance(exc, asyncio.CancelledError) else f"model call failed: {exc}"
        with ws.transaction():
            ws.conn.execute("UPDATE reflections SET status = 'failed', error = ?, raw_reply = ? WHERE id = ?",
                            (error, "".join(parts) or None, reflection_id))
        result.error = error
        if isinstance(exc, asyncio.CancelledError) or isinstance(exc, llm_client.ModelCallError):
            return result
        raise
    context_record["notes"] = notes
    remember_mode(ws, endpoint, mode, "; ".join(notes) or None)
    result.response_mode = mode
    parsed, parse_error = parse_reply(reply.output)
    proposal_rows: list[dict] = []
    if parsed is not None:
        pool = leakage_pool(ws, leak_suites)
        seen: set = set()
        operations, cut = kept_operations(parsed["operations"])
        if cut:
            context_record["notes"] = [*notes, cut]
        for op in operations:
            row = validate_operation(op, lessons=lessons, evidence_ids=included,
                                     allowed_ops=allowed_ops, seen_texts=seen)
            leaks = check_leakage(row["text"], pool) if row["text"] else []
            proposal_rows.append({
                "id": new_id("prop", 4), "reflection_id": reflection_id, "op": row["op"],
                "status": "invalid" if row["invalid_reason"] else "pending",
                "text": row["text"], "rationale": row["rationale"], "lesson_ids_json": json.dumps(row["lesson_ids"]),
                "evidence_json": json.dumps(row["evidence"]), "invalid_reason": row["invalid_reason"],
                "leakage_json": json.dumps(leaks) if leaks else None, "decided_at": None, "decided_by": None,
                "decision_reason": None, "result_lesson_id": None, "created_at": now(), "note": row["note"],
            })
    with ws.transaction():
        ws.conn.execute(
            "UPDATE reflections SET status = ?, error = ?, raw_reply = ?, analysis = ?, server_model = ?,"
            " prompt_tokens = ?, completion_tokens = ?, request_json = ?, context_json = ?, response_mode = ?"
            " WHERE id = ?",
            ("ok" if parsed is not None else "failed",
             None if parsed is not None else f"could not parse the reply: {parse_error}",
             reply.output, parsed["analysis"] if parsed else None, reply.model, reply.prompt_tokens,
             reply.completion_tokens, json.dumps({"model": endpoint.model, "messages": messages, **body}),
             json.dumps(context_record), mode, reflection_id),
        )
        if proposal_rows:
            ws.db["proposals"].insert_all(proposal_rows)
    result.status = "ok" if parsed is not None else "failed"
    result.error = None if parsed is not None else f"could not parse the reply: {parse_error}"
    result.analysis = parsed["analysis"] if parsed else None
    result.proposal_ids = [p["id"] for p in proposal_rows]
    result.n_pending = sum(p["status"] == "pending" for p in proposal_rows)
    result.n_invalid = sum(p["status"] == "invalid" for p in proposal_rows)
    return result


async def reflect_async(
    ws: Workspace, endpoint: Endpoint, *, base_url: str | None = None, run_id: str | None = None,
    rollout_ids: list[str] | None = None, suite: str | None = None, last: int | None = None,
    settings: Settings | None = None, context_tokens: int | None = None, max_tokens: int | None = None,
    temperature: float | None = None, on_chunk: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None, retry: llm_client.RetryPolicy = llm_client.RetryPolicy(),
    prompt_name: str = "reflect.md",
) -> ReflectionResult:
    """Reflect on rollouts (a run, ids, or a suite's last runs) and store the reply and its proposals."""
    rows = select_rollouts(ws, run_id=run_id, rollout_ids=rollout_ids, suite=suite, last=last)
    suites = {r["suite"] for r in rows}
    lessons = [lesson for lesson in active_lessons(ws, None)]
    lessons += [lesson for lesson in list_lessons(ws, status="active")
                if lesson.scope is not None and suites & set(lesson.scope)]
    lessons.sort(key=lambda lesson: (lesson.created_at, lesson.seq))
    template = read_prompt(prompt_name)
    budget = context_budget(endpoint, settings, context_tokens)
    context = build_reflect_context(ws, rows, lessons, budget, fixed_tokens=estimate_tokens(template))
    if not context.included:
        reasons = Counter(o["reason"] for o in context.omitted)
        raise ReflectionError("none of these rollouts can be reflected on: "
                              + "; ".join(f"{n} × {why}" for why, n in reasons.items()))
    return await run_reflection(
        ws, kind="reflect", endpoint=endpoint, base_url=base_url, prompt_name=prompt_name, template=template,
        values={"budget_tokens": budget}, context=context, lessons={lesson.id: lesson for lesson in lessons},
        allowed_ops=OPS, rows=rows, params=reply_params(endpoint, max_tokens, temperature), on_chunk=on_chunk,
        cancel=cancel, retry=retry, leak_suites=suites,
    )


def reflect(ws: Workspace, endpoint: Endpoint, **kwargs) -> ReflectionResult:
    """Blocking reflect_async (for the CLI and GUI worker threads)."""
    return asyncio.run(reflect_async(ws, endpoint, **kwargs))
