"""The reflect pipeline: select → prompt → call → store, one small step each.

Nothing the model says is applied here: every operation becomes a `pending` proposal (or an `invalid`
one, with the reason) that a person accepts or rejects. The reply is stored verbatim before it is
parsed, so a reply that is not JSON is kept with the parse error and the reflection marked failed.
Selecting is `selecting` and `context`, prompting `prompting`, calling `model_call` and `modes`,
storing `storing`.
"""
from __future__ import annotations

import asyncio
import threading
from collections import Counter
from typing import Callable

from lessonlab.core.models import llm_client
from lessonlab.core.lessons import estimate_tokens
from lessonlab.core.resources import read_prompt
from lessonlab.core.settings import Endpoint, Settings
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.reflection import storing
from lessonlab.core.reflection.context import Context, build_reflect_context, context_budget
from lessonlab.core.reflection.model_call import call_model, reply_params
from lessonlab.core.reflection.modes import modes_to_try, remember_mode
from lessonlab.core.reflection.parsing import OPS, kept_operations, parse_reply
from lessonlab.core.reflection.prompting import MetaPrompt, ReflectionRequest, build_meta_prompt
from lessonlab.core.reflection.results import ReflectionError, ReflectionResult
from lessonlab.core.reflection.selecting import lessons_for, select_rollouts


async def _call(ws: Workspace, request: ReflectionRequest, prompt: MetaPrompt, reflection_id: str):
    """The model call; a failure is stored on the reflection and returned as its error text."""
    parts: list[str] = []
    try:
        return await call_model(request.endpoint, request.base_url, prompt.messages, request.params,
                                formats=prompt.formats, on_chunk=request.on_chunk, cancel=request.cancel,
                                retry=request.retry, parts=parts), None
    except (asyncio.CancelledError, Exception) as exc:  # noqa: BLE001 - stored, never lost
        expected = isinstance(exc, (asyncio.CancelledError, llm_client.ModelCallError))
        error = "cancelled" if isinstance(exc, asyncio.CancelledError) else f"model call failed: {exc}"
        storing.store_failure(ws, reflection_id, error, "".join(parts) or None)
        if not expected:
            raise
        return None, error


async def run_reflection(ws: Workspace, request: ReflectionRequest) -> ReflectionResult:
    """Store a running reflection, call the model, then store the raw reply, its parse and its proposals."""
    modes = modes_to_try(ws, request.endpoint)
    prompt = build_meta_prompt(request, modes)
    reflection_id = storing.insert_running(ws, request, prompt, modes[0])
    result = ReflectionResult(reflection_id, request.kind, "failed", None, None,
                              n_included=len(request.context.included), n_omitted=len(request.context.omitted),
                              response_mode=modes[0])
    answered, result.error = await _call(ws, request, prompt, reflection_id)
    if answered is None:
        return result
    reply, body, notes, mode = answered
    prompt.context_record["notes"] = notes
    remember_mode(ws, request.endpoint, mode, "; ".join(notes) or None)
    parsed, parse_error = parse_reply(reply.output)
    proposals = []
    if parsed is not None:
        operations, cut = kept_operations(parsed["operations"])   # at most the schema's limit is stored
        if cut:
            prompt.context_record["notes"] = [*notes, cut]
        proposals = storing.proposal_rows(ws, request, reflection_id, operations)
    result.status = "ok" if parsed is not None else "failed"
    result.error = None if parsed is not None else f"could not parse the reply: {parse_error}"
    result.analysis = parsed["analysis"] if parsed else None
    result.response_mode = mode
    storing.store_reply(ws, reflection_id, status=result.status, error=result.error, reply=reply,
                        analysis=result.analysis, request_body={"model": request.endpoint.model,
                                                               "messages": prompt.messages, **body},
                        context_record=prompt.context_record, mode=mode, proposals=proposals)
    result.proposal_ids = [p["id"] for p in proposals]
    result.n_pending = sum(p["status"] == "pending" for p in proposals)
    result.n_invalid = sum(p["status"] == "invalid" for p in proposals)
    return result


def _nothing_to_reflect_on(context: Context) -> ReflectionError:
    reasons = Counter(o["reason"] for o in context.omitted)
    return ReflectionError("none of these rollouts can be reflected on: "
                           + "; ".join(f"{n} × {why}" for why, n in reasons.items()))


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
    lessons = lessons_for(ws, rows)
    template = read_prompt(prompt_name)
    budget = context_budget(endpoint, settings, context_tokens)
    context = build_reflect_context(ws, rows, lessons, budget, fixed_tokens=estimate_tokens(template))
    if not context.included:
        raise _nothing_to_reflect_on(context)
    return await run_reflection(ws, ReflectionRequest(
        kind="reflect", endpoint=endpoint, base_url=base_url, prompt_name=prompt_name, template=template,
        values={"budget_tokens": budget}, context=context, lessons={lesson.id: lesson for lesson in lessons},
        allowed_ops=OPS, rows=rows, params=reply_params(endpoint, max_tokens, temperature), on_chunk=on_chunk,
        cancel=cancel, retry=retry, leak_suites={r["suite"] for r in rows},
    ))


def reflect(ws: Workspace, endpoint: Endpoint, **kwargs) -> ReflectionResult:
    """Blocking reflect_async (for the CLI and GUI worker threads)."""
    return asyncio.run(reflect_async(ws, endpoint, **kwargs))
