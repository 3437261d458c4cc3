"""Reflection: put several rollouts (with rewards and verifier feedback) and the current lessons into one
meta-prompt, ask a model what to learn, and store its reply and the lesson operations as proposals.

Nothing the model says is applied here: every operation becomes a `pending` proposal (or an `invalid`
one, with the reason) that a person accepts or rejects. The reply is stored verbatim before it is
parsed, so a reply that is not JSON is kept with the parse error and the reflection marked failed.

Modules, in the order a reflection goes through them: selecting — `selecting` (which rollouts and lessons),
`context` (what fits the budget; `steps_text` numbers a trajectory's steps); prompting — `prompting` (the
request and the meta-prompt), `schema` (the reply schema and `response_format` per mode); calling —
`model_call` (the streamed call, falling back mode by mode), `modes` (which mode each endpoint accepts);
storing — `storing` (the SQL), `parsing` and `evidence` (the reply, its operations and what they cite),
`leakage` (lessons must not leak task answers). `pipeline` runs the four; `distilling` reuses it;
`stored` reads stored reflections. Everything callers use is re-exported here.
"""
from __future__ import annotations

# Re-exported because callers and tests have always reached them as reflection.X.
from lessonlab.core.lessons import estimate_tokens
from lessonlab.core.resources import read_prompt, sha256
from lessonlab.core.reflection.context import (LOCAL_CONTEXT_CAP, MAX_MESSAGE_CHARS, Context, build_reflect_context,
                                               context_budget, cut_middle)
from lessonlab.core.reflection.evidence import check_evidence, cited_step_text, cited_steps, split_cite
from lessonlab.core.reflection.distilling import distill, distill_async, lesson_usage, projected_tokens
from lessonlab.core.reflection.leakage import ANSWER_WINDOW, SHINGLE, check_leakage, leakage_pool
from lessonlab.core.reflection.model_call import DEFAULT_REPLY_TOKENS
from lessonlab.core.reflection.modes import modes_to_try, remember_mode, remembered_mode
from lessonlab.core.reflection.parsing import OPS, extract_json, parse_reply, validate_operation
from lessonlab.core.reflection.stored import list_reflections, reflection_detail
from lessonlab.core.reflection.pipeline import reflect, reflect_async, run_reflection
from lessonlab.core.reflection.prompting import ReflectionRequest
from lessonlab.core.reflection.selecting import select_rollouts
from lessonlab.core.reflection.results import ReflectionError, ReflectionResult
from lessonlab.core.reflection.schema import MODES, operations_schema, response_format

__all__ = [
    "ANSWER_WINDOW", "Context", "ReflectionRequest", "check_evidence", "cited_step_text", "cited_steps", "run_reflection", "split_cite", "DEFAULT_REPLY_TOKENS", "LOCAL_CONTEXT_CAP", "MAX_MESSAGE_CHARS", "MODES", "OPS",
    "ReflectionError", "ReflectionResult", "SHINGLE", "build_reflect_context", "check_leakage", "context_budget",
    "cut_middle", "distill", "distill_async", "estimate_tokens", "extract_json", "leakage_pool", "lesson_usage",
    "list_reflections", "modes_to_try", "operations_schema", "parse_reply", "projected_tokens", "read_prompt",
    "reflect", "reflect_async", "reflection_detail", "remember_mode", "remembered_mode", "response_format",
    "select_rollouts", "sha256", "validate_operation",
]
