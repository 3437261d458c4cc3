"""Prompting: a reflection request (what to ask, of which model, over which context) and the meta-prompt built from it."""
from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from typing import Callable

from lessonlab.core.lessons import Lesson
from lessonlab.core.models import llm_client
from lessonlab.core.settings import Endpoint
from lessonlab.core.reflection.context import Context
from lessonlab.core.reflection.schema import response_format


@dataclass
class ReflectionRequest:
    """One reflection (or distill) to run: the meta-prompt's parts, the model to ask and how to follow the call."""

    kind: str                                  # reflect | distill
    endpoint: Endpoint
    prompt_name: str                           # the template's file name, recorded with its hash
    template: str
    context: Context
    lessons: dict[str, Lesson]                 # the lessons operations may name, by id
    allowed_ops: tuple[str, ...]
    params: dict                               # request parameters (max_tokens, temperature, …)
    values: dict = field(default_factory=dict)  # other {name}s in the template
    rows: list[dict] = field(default_factory=list)   # every rollout considered, included or not
    leak_suites: set[str] = field(default_factory=set)   # suites whose answers lessons must not give away
    base_url: str | None = None
    on_chunk: Callable[[str], None] | None = None
    cancel: threading.Event | None = None
    retry: llm_client.RetryPolicy = field(default_factory=llm_client.RetryPolicy)


@dataclass
class MetaPrompt:
    """The messages, the response formats to try in order, and the record of the context that went in."""

    messages: list[dict]
    formats: list[tuple[str, dict | None]]
    first_request: dict                        # the request body as first sent (stored while the call runs)
    context_record: dict


def render(template: str, values: dict) -> str:
    """The meta-prompt: each {name} of `values` replaced; other braces (JSON examples) left alone."""
    return re.sub(r"\{(" + "|".join(values) + r")\}", lambda m: str(values[m.group(1)]), template)


def context_record(request: ReflectionRequest) -> dict:
    """What went into the context and what was left out, stored with the reflection."""
    context = request.context
    record = {
        "included_rollouts": context.included, "omitted_rollouts": context.omitted,
        "lessons": context.lesson_ids, "tasks": context.task_ids, "estimated_tokens": context.tokens,
        "budget_tokens": request.values.get("budget_tokens"),
    }
    if context.steps:
        record["steps"] = context.steps
    return record


def schema_args(request: ReflectionRequest) -> dict:
    """The reply schema's arguments: the ids that may be named, and whether an operation is required."""
    included = set(request.context.included)
    return {
        "allowed_ops": request.allowed_ops, "lesson_ids": list(request.lessons),
        "evidence_ids": request.context.evidence_ids(),
        # A context with a failure in it must yield something to try: at least one operation.
        "require_operation": any(r["reward"] is not None and r["reward"] < 1
                                 for r in request.rows if r["id"] in included),
    }


def build_meta_prompt(request: ReflectionRequest, modes: list[str]) -> MetaPrompt:
    """The one user message of the meta-prompt and a response format per mode to try."""
    prompt = render(request.template, {**request.values, "context": request.context.text})
    messages = [{"role": "user", "content": prompt}]
    arguments = schema_args(request)
    formats = [(mode, response_format(mode, arguments)) for mode in modes]
    first = {"model": request.endpoint.model, "messages": messages, **request.params}
    if formats[0][1] is not None:
        first["response_format"] = formats[0][1]
    return MetaPrompt(messages, formats, first, context_record(request))
