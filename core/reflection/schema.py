"""The JSON schema of a reflection's reply, and the `response_format` that asks a server to follow it.

Three modes, tried in this order until the server accepts one (see `modes`):

- `json_schema` — `{"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}`
  (OpenAI, vLLM, LM Studio, llama.cpp's C++ server). Strict mode wants every property required and
  `additionalProperties: false` on every object, so each operation kind is its own object shape
  (an `anyOf` of add / edit / merge / retire) instead of one shape with optional fields.
- `json_object_schema` — `{"type": "json_object", "schema": ...}`: what llama-cpp-python's server (the
  embedded model) and llama.cpp's server turn into a grammar. The grammar version of the schema also
  bounds every string (`maxLength`), so a small model cannot ramble until `max_tokens` cuts the JSON off.
- `text` — no `response_format`; the JSON is extracted from the reply's text.

The schema is built for the context at hand: lesson ids and evidence ids are enums of the ids that
were really shown, operations the context cannot support (edit with no lessons, merge with fewer than
two) are left out, and when any rollout in the context scored below 1 at least one operation is required.
"""
from __future__ import annotations

MODES = ("json_schema", "json_object_schema", "text")
SCHEMA_NAME = "lesson_operations"

# Bounds for the grammar mode (characters / items): generous for a lesson, finite for a small model.
MAX_CHARS = {"analysis": 500, "text": 300, "rationale": 240}
MAX_OPERATIONS = 4
MAX_EVIDENCE = 4


# A lesson in the grammar: a sentence that starts with a capital letter, 20-300 characters, no double
# quote, backslash or control character. The capital keeps a small model from copying the prompt's
# lower-case example ("the new lesson"); the excluded characters keep the JSON string free of escapes.
LESSON_PATTERN = '^[A-Z][^"\\\\\\x00-\\x1f]{19,%d}$' % (MAX_CHARS["text"] - 1)


def _string(field: str, grammar: bool) -> dict:
    schema: dict = {"type": "string"}
    if grammar:
        if field == "text":
            schema["pattern"] = LESSON_PATTERN
        else:
            schema["maxLength"] = MAX_CHARS[field]
    return schema


def _id_list(ids: list[str], *, min_items: int = 0, max_items: int | None = None) -> dict:
    schema: dict = {"type": "array", "items": {"type": "string", "enum": list(ids)}}
    if min_items:
        schema["minItems"] = min_items
    if max_items:
        schema["maxItems"] = max_items
    return schema


def _operation(op: str, lesson_ids: list[str], evidence_ids: list[str], grammar: bool) -> dict:
    properties: dict = {"op": {"type": "string", "enum": [op]}}
    if op == "merge":
        properties["lessons"] = _id_list(lesson_ids, min_items=2, max_items=len(lesson_ids))
    elif op in ("edit", "retire"):
        properties["lesson"] = {"type": "string", "enum": list(lesson_ids)}
    if op != "retire":
        properties["text"] = _string("text", grammar)
    properties["rationale"] = _string("rationale", grammar)
    if evidence_ids:
        properties["evidence"] = _id_list(evidence_ids, max_items=min(MAX_EVIDENCE, len(evidence_ids)))
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def operations_schema(allowed_ops: tuple[str, ...], lesson_ids: list[str], evidence_ids: list[str], *,
                      require_operation: bool, grammar: bool = False) -> dict:
    """The reply schema: {"analysis": str, "operations": [one of the possible operation shapes]}."""
    possible = [op for op in allowed_ops
                if not (op in ("edit", "retire") and not lesson_ids) and not (op == "merge" and len(lesson_ids) < 2)]
    operations: dict = {"type": "array", "maxItems": MAX_OPERATIONS}
    if possible:
        shapes = [_operation(op, lesson_ids, evidence_ids, grammar) for op in possible]
        operations["items"] = shapes[0] if len(shapes) == 1 else {"anyOf": shapes}
        if require_operation:
            operations["minItems"] = 1
    else:
        operations["maxItems"] = 0
        operations["items"] = {"type": "object", "properties": {}, "required": [], "additionalProperties": False}
    return {"type": "object", "properties": {"analysis": _string("analysis", grammar), "operations": operations},
            "required": ["analysis", "operations"], "additionalProperties": False}


def response_format(mode: str, schema_args: dict) -> dict | None:
    """The `response_format` for a mode (None for plain text); schema_args go to operations_schema."""
    if mode == "json_schema":
        return {"type": "json_schema",
                "json_schema": {"name": SCHEMA_NAME, "schema": operations_schema(**schema_args), "strict": True}}
    if mode == "json_object_schema":
        return {"type": "json_object", "schema": operations_schema(**schema_args, grammar=True)}
    if mode == "text":
        return None
    raise ValueError(f"unknown response mode {mode!r}")
