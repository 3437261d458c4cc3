"""Verifiers: score a model's response to a task and say why, as a Verdict.

A verifier spec is a plain dict such as ``{"kind": "numeric", "answer": 3}``.
``validate_spec`` checks a spec up front (suites call it while loading), and
``verify`` scores one response. ``verify`` never raises: a failing verifier
yields reward 0 with the error as feedback, so one bad task cannot stop a run.
"""
from __future__ import annotations

import importlib
import json
import math
import os
import re
import sys
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable
from .errors import BadInput

KINDS: tuple[str, ...] = ("exact", "contains", "regex", "numeric", "json_schema", "game24", "python")

FEEDBACK_LIMIT = 300
GAME24_MAX_CHARS = 200
_GAME24_MAX_DEPTH = 50
_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE, "a": re.ASCII}
_PYTHON_REF_RE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def _one_line(text: str, limit: int = FEEDBACK_LIMIT) -> str:
    """Collapse whitespace (newlines included) and cap the length."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clamp(reward: Any) -> float:
    """A float in [0, 1]; NaN counts as 0 so it cannot poison averages."""
    value = float(reward)
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, value))


@dataclass(frozen=True)
class Verdict:
    """A reward in [0, 1] plus one line of feedback saying why."""

    reward: float
    feedback: str

    def __post_init__(self) -> None:
        # Normalise here so every Verdict, including ones built by user code, keeps the invariants.
        object.__setattr__(self, "reward", _clamp(self.reward))
        object.__setattr__(self, "feedback", _one_line(self.feedback))


class VerifierSpecError(BadInput, ValueError):
    """A verifier spec that is malformed."""


# --------------------------------------------------------------------------- helpers

def _type_name(value: Any) -> str:
    """The JSON name of a Python value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _to_fraction(value: int | float) -> Fraction:
    """Exact value of a spec number; repr() keeps 0.1 as 1/10 rather than its binary approximation."""
    return Fraction(value) if isinstance(value, int) else Fraction(repr(float(value)))


def _fmt_number(value: Fraction, digits: int = 12) -> str:
    """Show integers as integers and everything else as a short decimal."""
    if value.denominator == 1:
        return str(value.numerator)
    return f"{float(value):.{digits}g}"


def _quote(text: str, limit: int = 80) -> str:
    return json.dumps(_one_line(text, limit), ensure_ascii=False)


_THINK_RE = re.compile(r"^\s*<think>.*?</think>", re.DOTALL | re.IGNORECASE)
_ANSWER_RE = re.compile(r"(\*\*|__)?\banswer\s*(\*\*|__)?\s*:", re.IGNORECASE)
_FENCE_LINE_RE = re.compile(r"^`{3,}[\w+-]*$")


def _find_answer(output: str) -> tuple[str, bool]:
    """The final answer and whether it came from an 'Answer:' marker (else it is the last line)."""
    text = _THINK_RE.sub("", output or "", count=1)  # a reasoning block is not part of the reply
    match = None
    for match in _ANSWER_RE.finditer(text):
        pass
    if match is None:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        return (lines[-1] if lines else ""), False
    rest = text[match.end():]
    opening, closing = match.group(1), match.group(2)
    first, _, after = rest.partition("\n")
    first = first.strip()
    if opening and not closing:
        # "**Answer:** 3" or "**Answer: 3**": drop the bold marker that closes around the label.
        if first.startswith(opening):
            first = first[len(opening):].strip()
        elif first.endswith(opening):
            first = first[: -len(opening)].strip()
    if first:
        return first, True
    # "Answer:" alone on its line: the answer is the next non-empty line (code fences skipped).
    for line in after.splitlines():
        line = line.strip()
        if line and not _FENCE_LINE_RE.match(line):
            return line, True
    return "", True


def final_answer(output: str) -> str:
    """The final answer of a reply: the text after the last 'Answer:' line marker (case-insensitive), else the last non-empty line."""
    return _find_answer(output)[0]


_WRAPPERS = (("**", "**"), ("__", "__"), ("`", "`"), ('"', '"'), ("'", "'"),
             ("“", "”"), ("‘", "’"), ("*", "*"))


def _unwrap(text: str) -> str:
    """Strip surrounding quotes, backticks and bold/italic markers, repeatedly."""
    changed = True
    while changed:
        changed = False
        text = text.strip()
        for left, right in _WRAPPERS:
            if len(text) >= len(left) + len(right) and text.startswith(left) and text.endswith(right):
                text = text[len(left): len(text) - len(right)]
                changed = True
                break
    return text


def _normalise(text: str) -> str:
    """Casefolded, whitespace-collapsed answer without wrappers or one trailing period."""
    text = _unwrap(text)
    if text.endswith("."):
        text = _unwrap(text[:-1])
    return " ".join(text.casefold().split())


# --------------------------------------------------------------------------- spec validation

def _require(spec: dict, field: str, kind: str) -> Any:
    if field not in spec:
        raise VerifierSpecError(f'{kind} verifier needs a "{field}" field')
    return spec[field]


def _check_fields(spec: dict, kind: str, allowed: set[str]) -> None:
    # Unknown fields are rejected so a typo such as "tolerence" cannot silently change scoring.
    unknown = sorted(set(spec) - allowed - {"kind"})
    if unknown:
        names = ", ".join(f'"{name}"' for name in unknown)
        raise VerifierSpecError(f"{kind} verifier has unknown field(s) {names} (allowed: {', '.join(sorted(allowed))})")


def _compile_regex(pattern: Any, flags: Any) -> re.Pattern:
    if not isinstance(pattern, str) or not pattern:
        raise VerifierSpecError(f'regex verifier: "pattern" must be a non-empty string, got {_type_name(pattern)}')
    if not isinstance(flags, str):
        raise VerifierSpecError(f'regex verifier: "flags" must be a string such as "i", got {_type_name(flags)}')
    value = 0
    for letter in flags:
        if letter not in _REGEX_FLAGS:
            raise VerifierSpecError(f'regex verifier: unknown flag "{letter}" (allowed: {"".join(_REGEX_FLAGS)})')
        value |= _REGEX_FLAGS[letter]
    try:
        return re.compile(pattern, value)
    except re.error as exc:
        raise VerifierSpecError(f"regex verifier: invalid pattern {pattern!r}: {exc}") from None


_SCHEMA_TYPES = {"string", "number", "integer", "boolean", "object", "array", "null"}


def _check_schema(schema: Any, path: str) -> None:
    """Reject schemas whose keywords we understand but that are malformed (unknown keywords pass)."""
    if isinstance(schema, bool):
        return
    if not isinstance(schema, dict):
        raise VerifierSpecError(f"json_schema verifier: schema at {path} must be an object, got {_type_name(schema)}")
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        for item in kinds:
            if item not in _SCHEMA_TYPES:
                raise VerifierSpecError(f"json_schema verifier: unknown type {item!r} at {path} (known: {', '.join(sorted(_SCHEMA_TYPES))})")
    props = schema.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            raise VerifierSpecError(f'json_schema verifier: "properties" at {path} must be an object')
        for name, sub in props.items():
            _check_schema(sub, f"{path}.properties.{name}")
    required = schema.get("required")
    if required is not None and (not isinstance(required, list) or not all(isinstance(r, str) for r in required)):
        raise VerifierSpecError(f'json_schema verifier: "required" at {path} must be a list of strings')
    extra = schema.get("additionalProperties")
    if extra is not None:
        _check_schema(extra, f"{path}.additionalProperties")
    items = schema.get("items")
    if isinstance(items, list):
        for index, sub in enumerate(items):
            _check_schema(sub, f"{path}.items[{index}]")
    elif items is not None:
        _check_schema(items, f"{path}.items")
    for keyword in ("anyOf", "oneOf", "allOf"):
        subs = schema.get(keyword)
        if subs is not None:
            if not isinstance(subs, list) or not subs:
                raise VerifierSpecError(f'json_schema verifier: "{keyword}" at {path} must be a non-empty list of schemas')
            for index, sub in enumerate(subs):
                _check_schema(sub, f"{path}.{keyword}[{index}]")
    if "not" in schema:
        _check_schema(schema["not"], f"{path}.not")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise VerifierSpecError(f'json_schema verifier: "enum" at {path} must be a list')
    for keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if keyword in schema and not _is_number(schema[keyword]):
            raise VerifierSpecError(f'json_schema verifier: "{keyword}" at {path} must be a number')
    for keyword in ("minLength", "maxLength", "minItems", "maxItems"):
        value = schema.get(keyword)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0):
            raise VerifierSpecError(f'json_schema verifier: "{keyword}" at {path} must be a non-negative integer')
    if "pattern" in schema:
        pattern = schema["pattern"]
        if not isinstance(pattern, str):
            raise VerifierSpecError(f'json_schema verifier: "pattern" at {path} must be a string')
        try:
            re.compile(pattern)
        except re.error as exc:
            raise VerifierSpecError(f"json_schema verifier: invalid pattern {pattern!r} at {path}: {exc}") from None


def validate_spec(spec: dict) -> None:
    """Raise VerifierSpecError with a clear reason if the spec is malformed."""
    if not isinstance(spec, dict):
        raise VerifierSpecError(f"verifier spec must be an object, got {_type_name(spec)}")
    kind = spec.get("kind")
    if kind is None:
        raise VerifierSpecError(f'verifier spec has no "kind" (one of {", ".join(KINDS)})')
    if kind not in KINDS:
        raise VerifierSpecError(f"unknown verifier kind {kind!r} (known: {', '.join(KINDS)})")

    if kind == "exact":
        _check_fields(spec, kind, {"answer"})
        answer = _require(spec, "answer", kind)
        if not isinstance(answer, str) or not answer.strip():
            raise VerifierSpecError(f'exact verifier: "answer" must be a non-empty string, got {_type_name(answer)}')
    elif kind == "contains":
        _check_fields(spec, kind, {"text", "case_sensitive"})
        text = _require(spec, "text", kind)
        if not isinstance(text, str) or not text:
            raise VerifierSpecError(f'contains verifier: "text" must be a non-empty string, got {_type_name(text)}')
        if not isinstance(spec.get("case_sensitive", False), bool):
            raise VerifierSpecError('contains verifier: "case_sensitive" must be true or false')
    elif kind == "regex":
        _check_fields(spec, kind, {"pattern", "flags"})
        _compile_regex(_require(spec, "pattern", kind), spec.get("flags", ""))
    elif kind == "numeric":
        _check_fields(spec, kind, {"answer", "tolerance"})
        answer = _require(spec, "answer", kind)
        if not _is_number(answer) or not math.isfinite(answer):
            raise VerifierSpecError(f'numeric verifier: "answer" must be a finite number, got {_type_name(answer)}')
        tolerance = spec.get("tolerance", 1e-6)
        if not _is_number(tolerance) or not math.isfinite(tolerance) or tolerance < 0:
            raise VerifierSpecError('numeric verifier: "tolerance" must be a non-negative number')
    elif kind == "json_schema":
        _check_fields(spec, kind, {"schema"})
        schema = _require(spec, "schema", kind)
        if not isinstance(schema, dict):
            raise VerifierSpecError(f'json_schema verifier: "schema" must be an object, got {_type_name(schema)}')
        _check_schema(schema, "$")
    elif kind == "game24":
        _check_fields(spec, kind, {"numbers", "target"})
        numbers = _require(spec, "numbers", kind)
        if (not isinstance(numbers, list) or not numbers or len(numbers) > 12
                or not all(isinstance(n, int) and not isinstance(n, bool) for n in numbers)):
            raise VerifierSpecError('game24 verifier: "numbers" must be a list of 1 to 12 integers')
        target = spec.get("target", 24)
        if not _is_number(target) or not math.isfinite(target):
            raise VerifierSpecError('game24 verifier: "target" must be a number')
    elif kind == "python":
        _check_fields(spec, kind, {"function"})
        ref = _require(spec, "function", kind)
        if not isinstance(ref, str) or not _PYTHON_REF_RE.match(ref):
            raise VerifierSpecError(f'python verifier: "function" must look like "module:function", got {ref!r}')


# --------------------------------------------------------------------------- simple kinds

def _verify_exact(spec: dict, output: str) -> Verdict:
    if not output.strip():
        return Verdict(0.0, "empty response")
    answer, marked = _find_answer(output)
    expected = spec["answer"]
    if _normalise(answer) == _normalise(expected):
        return Verdict(1.0, f"correct: {_quote(expected)}")
    note = "" if marked else ' (no "Answer:" line; compared the last line)'
    return Verdict(0.0, f"expected {_quote(expected)}, got {_quote(answer)}{note}")


def _verify_contains(spec: dict, output: str) -> Verdict:
    if not output.strip():
        return Verdict(0.0, "empty response")
    text = spec["text"]
    if spec.get("case_sensitive", False):
        found = text in output
    else:
        found = text.casefold() in output.casefold()
    if found:
        return Verdict(1.0, f"found {_quote(text)}")
    return Verdict(0.0, f"{_quote(text)} not found in the response")


def _verify_regex(spec: dict, output: str) -> Verdict:
    compiled = _compile_regex(spec["pattern"], spec.get("flags", ""))
    match = compiled.search(output)
    shown = _quote(spec["pattern"], 100)
    if match:
        return Verdict(1.0, f"pattern {shown} matched {_quote(match.group(0), 100)}")
    suffix = " (empty response)" if not output.strip() else ""
    return Verdict(0.0, f"pattern {shown} not found in the response{suffix}")


# A number: optional sign (only when not glued to a preceding word, so "5-3" is 5 and 3),
# then a fraction a/b, or digits with optional thousands separators, decimals and exponent.
_NUMBER_RE = re.compile(
    r"(?<![\w.])(?P<sign>[-+−]?)"
    r"(?:(?P<num>\d+)\s*/\s*(?P<den>\d+)(?![\d.,])"
    r"|(?P<int>\d{1,3}(?:,\d{3})+(?!\d)|\d+)(?P<frac>\.\d+)?(?P<exp>[eE][-+]?\d+)?)"
)


def _numbers_in(text: str) -> list[Fraction]:
    """All numbers in text, in order, as exact fractions."""
    values = []
    for m in _NUMBER_RE.finditer(text):
        if m.group("num") is not None:
            if int(m.group("den")) == 0:
                continue
            value = Fraction(int(m.group("num")), int(m.group("den")))
        else:
            exponent = m.group("exp") or ""
            if exponent and abs(int(exponent[1:])) > 400:
                continue  # "1e999999999" would take ages to expand exactly; no real answer looks like that
            literal = m.group("int").replace(",", "") + (m.group("frac") or "") + exponent
            try:
                value = Fraction(literal)
            except (ValueError, OverflowError):
                continue
        values.append(-value if m.group("sign") in ("-", "−") else value)
    return values


def _verify_numeric(spec: dict, output: str) -> Verdict:
    if not output.strip():
        return Verdict(0.0, "empty response")
    expected = _to_fraction(spec["answer"])
    tolerance = _to_fraction(spec.get("tolerance", 1e-6))
    answer, marked = _find_answer(output)
    found = _numbers_in(answer)
    note = ""
    if not found:
        found = _numbers_in(output)
        note = " (no number on the final answer line; used the last number in the response)"
    elif not marked:
        note = ' (no "Answer:" line; used the last line)'
    if not found:
        return Verdict(0.0, "no number found in the response")
    got = found[-1]
    off = abs(got - expected)
    if off <= tolerance:
        return Verdict(1.0, f"correct: {_fmt_number(got)}")
    return Verdict(0.0, f"expected {_fmt_number(expected)}, got {_fmt_number(got)} "
                        f"(off by {_fmt_number(off, 6)}, tolerance {_fmt_number(tolerance, 6)}){note}")


# --------------------------------------------------------------------------- json_schema

_JSON_FENCE_RE = re.compile(r"```[ \t]*json[^\n]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_ANY_FENCE_RE = re.compile(r"```[^\n]*\n(.*?)```", re.DOTALL)


def _extract_json(output: str) -> tuple[Any, str | None]:
    """(value, None) for the reply's JSON, or (None, reason) when there is none that parses."""
    stripped = output.strip()
    try:
        return json.loads(stripped), None
    except (json.JSONDecodeError, RecursionError) as exc:
        whole_error = exc
    fence = _JSON_FENCE_RE.search(output) or _ANY_FENCE_RE.search(output)
    if fence is None:
        return None, f"response is not valid JSON: {_json_error(whole_error)}"
    try:
        return json.loads(fence.group(1).strip()), None
    except (json.JSONDecodeError, RecursionError) as exc:
        return None, f"fenced block is not valid JSON: {_json_error(exc)}"


def _json_error(exc: Exception) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return "nested too deeply"


def _json_equal(a: Any, b: Any) -> bool:
    """JSON equality: 1 == 1.0, but true is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def _has_type(value: Any, kind: str) -> bool:
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer())
    if kind == "number":
        return _is_number(value)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "null":
        return value is None
    if kind == "array":
        return isinstance(value, list)
    if kind == "object":
        return isinstance(value, dict)
    return True


_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _child_path(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if _IDENTIFIER_RE.match(key) else f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _short_json(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _schema_error(schema: Any, value: Any, path: str = "$") -> str | None:
    """The first way value fails schema, as '<path>: <reason>', or None when it validates."""
    if schema is True:
        return None
    if schema is False:
        return f"{path}: no value is allowed here"
    if not isinstance(schema, dict):
        return None

    if "type" in schema:
        kinds = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_has_type(value, kind) for kind in kinds):
            return f"{path}: expected {' or '.join(kinds)}, got {_type_name(value)}"
    if "const" in schema and not _json_equal(schema["const"], value):
        return f"{path}: expected {_short_json(schema['const'])}, got {_short_json(value)}"
    if "enum" in schema and not any(_json_equal(option, value) for option in schema["enum"]):
        return f"{path}: {_short_json(value)} is not one of {_short_json(schema['enum'], 120)}"

    if _is_number(value):
        if "minimum" in schema and value < schema["minimum"]:
            return f"{path}: {_short_json(value)} is less than the minimum {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            return f"{path}: {_short_json(value)} is greater than the maximum {schema['maximum']}"
        if _is_number(schema.get("exclusiveMinimum")) and value <= schema["exclusiveMinimum"]:
            return f"{path}: {_short_json(value)} must be greater than {schema['exclusiveMinimum']}"
        if _is_number(schema.get("exclusiveMaximum")) and value >= schema["exclusiveMaximum"]:
            return f"{path}: {_short_json(value)} must be less than {schema['exclusiveMaximum']}"
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            return f"{path}: string has {len(value)} characters, fewer than the minimum {schema['minLength']}"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            return f"{path}: string has {len(value)} characters, more than the maximum {schema['maxLength']}"
        if "pattern" in schema and not re.search(schema["pattern"], value):
            return f"{path}: {_short_json(value)} does not match pattern {_short_json(schema['pattern'])}"
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            return f"{path}: array has {len(value)} items, fewer than the minimum {schema['minItems']}"
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            return f"{path}: array has {len(value)} items, more than the maximum {schema['maxItems']}"
        items = schema.get("items")
        if isinstance(items, list):
            for index, (sub, item) in enumerate(zip(items, value)):
                error = _schema_error(sub, item, _child_path(path, index))
                if error:
                    return error
        elif items is not None:
            for index, item in enumerate(value):
                error = _schema_error(items, item, _child_path(path, index))
                if error:
                    return error
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                return f"{path}: missing required property {json.dumps(name, ensure_ascii=False)}"
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            props = {}
        for name, sub in props.items():
            if name in value:
                error = _schema_error(sub, value[name], _child_path(path, name))
                if error:
                    return error
        extra = schema.get("additionalProperties")
        if extra is not None and extra is not True:
            for name in value:
                if name in props:
                    continue
                if extra is False:
                    return f"{path}: unexpected property {json.dumps(name, ensure_ascii=False)}"
                error = _schema_error(extra, value[name], _child_path(path, name))
                if error:
                    return error

    for sub in schema.get("allOf", []) or []:
        error = _schema_error(sub, value, path)
        if error:
            return error
    any_of = schema.get("anyOf")
    if any_of:
        errors = [_schema_error(sub, value, path) for sub in any_of]
        if all(errors):
            return f"{path}: matches none of the anyOf alternatives (first: {errors[0]})"
    one_of = schema.get("oneOf")
    if one_of:
        errors = [_schema_error(sub, value, path) for sub in one_of]
        matched = sum(1 for error in errors if error is None)
        if matched == 0:
            return f"{path}: matches none of the oneOf alternatives (first: {errors[0]})"
        if matched > 1:
            return f"{path}: matches {matched} of the oneOf alternatives, expected exactly one"
    if "not" in schema and _schema_error(schema["not"], value, path) is None:
        return f"{path}: must not match the schema under \"not\""
    return None


def _verify_json_schema(spec: dict, output: str) -> Verdict:
    if not output.strip():
        return Verdict(0.0, "empty response")
    value, problem = _extract_json(output)
    if problem:
        return Verdict(0.0, problem)
    error = _schema_error(spec["schema"], value)
    if error:
        return Verdict(0.0, error)
    return Verdict(1.0, "valid JSON matching the schema")


# --------------------------------------------------------------------------- game24

class _ExprError(Exception):
    """An expression that is not allowed or cannot be evaluated; the message is the feedback."""


_EXPR_CHARS_RE = re.compile(r"[\d\s()+\-*/^.]+")
_BARE_NUMBER_RE = re.compile(r"^[-+]?\d+(?:\.\d+)?$")
_TIMES_WORDS = {1: "once", 2: "twice", 3: "three times", 4: "four times", 5: "five times",
                6: "six times", 7: "seven times", 8: "eight times", 9: "nine times", 10: "ten times"}


def _times(count: int) -> str:
    return _TIMES_WORDS.get(count, f"{count} times")


def _clean_expression(text: str) -> str:
    """Turn a final answer line into a bare expression: no markdown, LaTeX or '= 24' tail."""
    # Only surrounding markdown is stripped: a "**" inside is a power and must be reported as one.
    text = _unwrap(text)
    if len(text) >= 2 and text[0] == text[-1] == "$":
        text = text.strip("$")
    for latex, plain in ((r"\times", "*"), (r"\cdot", "*"), (r"\div", "/"), (r"\left", ""),
                         (r"\right", ""), (r"\(", ""), (r"\)", ""), (r"\[", ""), (r"\]", "")):
        text = text.replace(latex, plain)
    for symbol, plain in (("×", "*"), ("✕", "*"), ("⋅", "*"), ("·", "*"), ("∗", "*"),
                          ("÷", "/"), ("∕", "/"), ("−", "-"), ("–", "-"), ("—", "-")):
        text = text.replace(symbol, plain)
    # An "x" between two operands is multiplication ("3 x 8"), never a name.
    text = re.sub(r"(?<=[\d)])\s*[xX]\s*(?=[\d(])", "*", text)
    text = text.strip().rstrip(".").strip()
    if "=" in text:
        # "(8-4)*(7-1) = 24" or "24 = (8-4)*(7-1)": keep the side that is an expression.
        parts = [part.strip() for part in text.split("=") if part.strip()]
        expressions = [part for part in parts if not _BARE_NUMBER_RE.match(part)]
        text = (expressions or parts or [""])[0]
    return text


class _ExprParser:
    """Recursive-descent parser for integers, + - * /, unary minus and parentheses; nothing else."""

    def __init__(self, text: str):
        self.tokens = self._tokenize(text)
        self.pos = 0
        self.numbers: list[int] = []

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, Any]]:
        tokens: list[tuple[str, Any]] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char.isspace():
                i += 1
            elif char in "0123456789":
                j = i
                while j < len(text) and text[j] in "0123456789":
                    j += 1
                if j + 1 < len(text) and text[j] == "." and text[j + 1] in "0123456789":
                    raise _ExprError(f"only whole numbers are allowed, found a decimal near {text[i:j + 2]!r}")
                tokens.append(("num", int(text[i:j])))
                i = j
            elif text.startswith("**", i):
                raise _ExprError("powers (**) are not allowed: use only + - * / and parentheses")
            elif char == "^":
                raise _ExprError("powers (^) are not allowed: use only + - * / and parentheses")
            elif char in "+-*/()":
                tokens.append(("op", char))
                i += 1
            else:
                raise _ExprError(f"not an arithmetic expression: unexpected {char!r} "
                                 "(only integers, + - * / and parentheses are allowed)")
        return tokens

    def _peek(self) -> tuple[str, Any] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, Any]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> tuple:
        if not self.tokens:
            raise _ExprError("no expression found on the final answer line")
        tree = self._expr(0)
        if self._peek() is not None:
            raise _ExprError(f"unexpected {self._peek()[1]!r} after a complete expression")
        return tree

    def _expr(self, depth: int) -> tuple:
        if depth > _GAME24_MAX_DEPTH:
            raise _ExprError("expression is nested too deeply")
        tree = self._term(depth)
        while self._peek() in (("op", "+"), ("op", "-")):
            op = self._take()[1]
            tree = (op, tree, self._term(depth))
        return tree

    def _term(self, depth: int) -> tuple:
        tree = self._unary(depth)
        while self._peek() in (("op", "*"), ("op", "/")):
            op = self._take()[1]
            tree = (op, tree, self._unary(depth))
        return tree

    def _unary(self, depth: int) -> tuple:
        if self._peek() == ("op", "-"):
            self._take()
            if depth > _GAME24_MAX_DEPTH:
                raise _ExprError("expression is nested too deeply")
            return ("neg", self._unary(depth + 1))
        return self._primary(depth)

    def _primary(self, depth: int) -> tuple:
        token = self._peek()
        if token is None:
            raise _ExprError("expression ends unexpectedly")
        if token[0] == "num":
            self._take()
            self.numbers.append(token[1])
            return ("num", token[1])
        if token == ("op", "("):
            self._take()
            tree = self._expr(depth + 1)
            if self._peek() != ("op", ")"):
                raise _ExprError("unbalanced parentheses")
            self._take()
            return tree
        raise _ExprError(f"unexpected {token[1]!r}")


def _evaluate(tree: tuple) -> Fraction:
    """Exact value of a parsed expression; fractions keep 8/(3-8/3) exact."""
    if tree[0] == "num":
        return Fraction(tree[1])
    if tree[0] == "neg":
        return -_evaluate(tree[1])
    left, right = _evaluate(tree[1]), _evaluate(tree[2])
    if tree[0] == "+":
        return left + right
    if tree[0] == "-":
        return left - right
    if tree[0] == "*":
        return left * right
    if right == 0:
        raise _ExprError("division by zero")
    return left / right


def _parse_candidate(text: str) -> tuple[str, tuple, list[int]]:
    """(expression, tree, numbers used); falls back to the longest formula inside surrounding prose."""
    try:
        parser = _ExprParser(text)
        return text, parser.parse(), parser.numbers
    except _ExprError as first_error:
        # "Answer: the expression is 8/(3-8/3)": try the longest formula standing apart from the
        # words; one glued to a word, as in "abs(-24)", is a call and stays rejected.
        runs = []
        for match in _EXPR_CHARS_RE.finditer(text):
            run = match.group(0).strip()
            start = match.start() + match.group(0).index(run[0]) if run else match.start()
            end = start + len(run)
            glued = (start > 0 and (text[start - 1].isalnum() or text[start - 1] == "_")) or (
                end < len(text) and (text[end].isalnum() or text[end] in "_(["))
            if run and not glued and re.search(r"\d", run) and re.search(r"[-+*/]", run):
                runs.append(run)
        if runs and max(runs, key=len) != text:
            run = max(runs, key=len)
            try:
                parser = _ExprParser(run)
                return run, parser.parse(), parser.numbers
            except _ExprError:
                pass
        raise first_error


def _usage_problems(used: list[int], given: list[int]) -> list[str]:
    used_count, given_count = Counter(used), Counter(given)
    problems = []
    for number in sorted(set(used_count) | set(given_count)):
        u, g = used_count[number], given_count[number]
        if u == g:
            continue
        if g == 0:
            problems.append(f"uses {number}, which is not among the given numbers")
        elif u == 0:
            problems.append(f"does not use {number}")
        else:
            problems.append(f"uses {number} {_times(u)} but it is given {_times(g)}")
    return problems


def _verify_game24(spec: dict, output: str) -> Verdict:
    if not output.strip():
        return Verdict(0.0, "empty response")
    given = list(spec["numbers"])
    target = _to_fraction(spec.get("target", 24))
    candidate = _clean_expression(final_answer(output))
    if not candidate:
        return Verdict(0.0, "no expression found on the final answer line")
    if len(candidate) > GAME24_MAX_CHARS:
        return Verdict(0.0, f"expression too long ({len(candidate)} characters, limit {GAME24_MAX_CHARS})")
    try:
        expression, tree, used = _parse_candidate(candidate)
        problems = _usage_problems(used, given)
        if problems:
            listed = ", ".join(str(n) for n in given)
            return Verdict(0.0, f"{'; '.join(problems)} (use each of {listed} exactly once): {expression}")
        value = _evaluate(tree)
    except _ExprError as exc:
        return Verdict(0.0, f"{exc}: {_one_line(candidate, 100)}")
    compact = "".join(expression.split())
    if value == target:
        return Verdict(1.0, f"{_fmt_number(target)} reached: {compact}")
    shown = str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"
    return Verdict(0.0, f"expression equals {shown}, not {_fmt_number(target)}: {compact}")


# --------------------------------------------------------------------------- python

def _load_function(ref: str) -> Callable:
    """Import 'module:function', looking in the current directory as well as sys.path."""
    module_name, func_name = ref.split(":")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    finally:
        if added and cwd in sys.path:
            sys.path.remove(cwd)
    func = getattr(module, func_name, None)
    if func is None:
        raise AttributeError(f"module {module_name!r} has no attribute {func_name!r}")
    if not callable(func):
        raise TypeError(f"{ref} is not callable")
    return func


def _to_verdict(result: Any) -> Verdict:
    """Accept the result shapes a user verifier may reasonably return."""
    if isinstance(result, Verdict):
        return result
    if isinstance(result, bool):
        return Verdict(1.0 if result else 0.0, f"python verifier returned {result}")
    if _is_number(result):
        return Verdict(result, f"python verifier returned {result}")
    if isinstance(result, tuple) and len(result) == 2 and _is_number(result[0]):
        return Verdict(result[0], str(result[1]))
    if isinstance(result, dict) and _is_number(result.get("reward")):
        return Verdict(result["reward"], str(result.get("feedback", "")))
    if _is_number(getattr(result, "reward", None)):
        return Verdict(result.reward, str(getattr(result, "feedback", "")))
    raise TypeError(f"python verifier returned {type(result).__name__}; expected a Verdict, a number, "
                    "a (reward, feedback) tuple or a dict with reward and feedback")


def _verify_python(spec: dict, output: str, task: dict | None, trust_python: bool) -> Verdict:
    ref = spec["function"]
    if not trust_python:
        return Verdict(0.0, f"python verifier refused: rerun with --trust-verifiers to run user code {ref!r}")
    func = _load_function(ref)
    try:
        result = func(output, task)
    except SystemExit as exc:
        # User code calling sys.exit must not end the whole run.
        raise RuntimeError(f"verifier called sys.exit({exc.code})") from None
    return _to_verdict(result)


# --------------------------------------------------------------------------- entry point

def verify(spec: dict, output: str, *, task: dict | None = None, trust_python: bool = False) -> Verdict:
    """Score output; NEVER raises: a verifier that raises gives Verdict(0.0, 'verifier error: <ExcType>: <msg>')."""
    try:
        validate_spec(spec)
        output = "" if output is None else str(output)
        kind = spec["kind"]
        if kind == "exact":
            return _verify_exact(spec, output)
        if kind == "contains":
            return _verify_contains(spec, output)
        if kind == "regex":
            return _verify_regex(spec, output)
        if kind == "numeric":
            return _verify_numeric(spec, output)
        if kind == "json_schema":
            return _verify_json_schema(spec, output)
        if kind == "game24":
            return _verify_game24(spec, output)
        return _verify_python(spec, output, task, trust_python)
    except Exception as exc:  # noqa: BLE001 - the contract is that scoring never raises
        return Verdict(0.0, f"verifier error: {type(exc).__name__}: {exc}")
