"""Reading the model's reply: the JSON object in it, and each lesson operation checked into a proposal row."""
from __future__ import annotations

import json

from lessonlab.core import json_text
from lessonlab.core.lessons import MAX_LESSON_CHARS, Lesson, LessonError, check_lesson_text, normalise_text
from lessonlab.core.reflection.evidence import check_evidence
from lessonlab.core.reflection.schema import MAX_OPERATIONS

OPS = ("add", "edit", "merge", "retire")
# The example values in the meta-prompts' reply shape: a small model sometimes copies them (and goes on).
PLACEHOLDER_TEXTS = ("the new lesson", "the better wording", "the combined lesson", "the shorter wording")


def extract_json(text: str, keys: tuple[str, ...] = ("analysis", "operations")) -> tuple[dict | None, str | None]:
    """The reply's JSON object (see json_text.find_object), preferring one with a reflection's keys.

    Control characters inside strings are accepted: grammar-constrained servers (llama.cpp) let a model
    write a raw newline in a string, and the reply means the same either way.
    """
    return json_text.find_object(text, keys, strict=False)


def parse_reply(text: str) -> tuple[dict | None, str | None]:
    """{"analysis": str, "operations": [...]} from a reply, or (None, the reason it cannot be read)."""
    data, error = extract_json(text)
    if data is None:
        return None, error
    if "operations" not in data and "analysis" not in data:
        return None, "the JSON object has neither 'analysis' nor 'operations'"
    operations = data.get("operations", [])
    if operations is None:
        operations = []
    if not isinstance(operations, list):
        return None, f"'operations' must be a list, got {type(operations).__name__}"
    analysis = data.get("analysis")
    if analysis is not None and not isinstance(analysis, str):
        analysis = json.dumps(analysis)
    return {"analysis": analysis, "operations": operations}, None


def kept_operations(operations: list) -> tuple[list, str | None]:
    """The operations a reflection stores: at most the schema's MAX_OPERATIONS, and a note when more came."""
    if len(operations) <= MAX_OPERATIONS:
        return operations, None
    return operations[:MAX_OPERATIONS], (f"the reply held {len(operations):,} operations; the first "
                                         f"{MAX_OPERATIONS} were kept (the reply schema allows {MAX_OPERATIONS})")


def _as_text(value) -> str:
    """A stripped string, or '' for anything that is not a string."""
    return value.strip() if isinstance(value, str) else ""


def _as_id_list(value) -> list[str] | None:
    """Ids given as one string or a list of strings; None when they are neither."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value.strip()]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [v.strip() for v in value]
    return None


def validate_operation(op: dict, *, lessons: dict[str, Lesson], evidence_ids: set[str],
                       allowed_ops: tuple[str, ...] = OPS, seen_texts: set[str] | None = None,
                       steps: dict[str, int] | None = None) -> dict:
    """A proposal row for one operation: status pending, or invalid with the reason.

    Evidence is rollout ids (`ro_x`) or steps (`ro_x#N`, where `steps` says ro_x was shown with N or more
    steps); refs that were not in the context are dropped, and the row's note says which.
    """
    row = {"op": None, "text": None, "rationale": None, "lesson_ids": [], "evidence": [], "evidence_steps": [],
           "invalid_reason": None, "note": None}

    def invalid(reason: str) -> dict:
        row["invalid_reason"] = reason
        return row

    if not isinstance(op, dict):
        row["op"] = "add"
        row["text"] = json.dumps(op)[:2000]
        return invalid(f"operation is not an object: {json.dumps(op)[:80]}")
    kind = _as_text(op.get("op") or op.get("operation") or op.get("type")).lower()
    row["op"] = kind if kind in OPS else "add"
    row["text"] = _as_text(op.get("text")) or None
    row["rationale"] = _as_text(op.get("rationale")) or None
    if kind not in OPS:
        row["text"] = row["text"] or json.dumps(op)[:2000]
        return invalid(f"unknown op {op.get('op')!r} (expected one of {', '.join(allowed_ops)})")
    if kind not in allowed_ops:
        return invalid(f"{kind!r} is not allowed here (only {', '.join(allowed_ops)})")
    evidence = _as_id_list(op.get("evidence"))
    if evidence is None:
        return invalid("'evidence' must be a list of rollout ids")
    checked = check_evidence(evidence, set(evidence_ids), steps or {})
    row["evidence"], row["evidence_steps"] = checked.rollout_ids, checked.step_cites
    row["note"] = checked.note()
    if kind == "merge":
        ids = _as_id_list(op.get("lessons"))
        if ids is None:
            return invalid("'lessons' must be a list of lesson ids")
    else:
        ids = _as_id_list(op.get("lesson")) if kind in ("edit", "retire") else []
        if ids is None:
            return invalid("'lesson' must be a lesson id")
    row["lesson_ids"] = ids
    if kind in ("add", "edit", "merge") and not row["text"]:
        return invalid(f"{kind} needs a non-empty 'text'")
    if kind in ("edit", "retire") and len(ids) != 1:
        return invalid(f"{kind} needs exactly one 'lesson' id")
    if kind == "merge" and len(set(ids)) < 2:
        return invalid("merge needs at least two different lesson ids in 'lessons'")
    unknown = [i for i in ids if i not in lessons]
    if unknown:
        return invalid(f"unknown or inactive lesson id(s): {', '.join(unknown)}")
    if row["text"]:
        try:
            check_lesson_text(row["text"])
        except LessonError as exc:
            if len(row["text"]) > MAX_LESSON_CHARS:  # kept as evidence of the reply, not in full
                row["text"] = row["text"][:MAX_LESSON_CHARS] + "…"
            return invalid(str(exc))
        wanted = normalise_text(row["text"])
        if wanted.lstrip("<[").startswith(PLACEHOLDER_TEXTS):
            return invalid("the text is the meta-prompt's example placeholder, not a lesson")
        if kind == "add":
            for lesson in lessons.values():
                if normalise_text(lesson.text) == wanted:
                    return invalid(f"duplicates active lesson {lesson.id}")
        if kind == "edit" and normalise_text(lessons[ids[0]].text) == wanted:
            return invalid(f"the text is the same as lesson {ids[0]} already has")
        if seen_texts is not None:
            if (kind, wanted) in seen_texts:
                return invalid("the same operation appears earlier in this reply")
            seen_texts.add((kind, wanted))
    return row
