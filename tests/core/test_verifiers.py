"""Hand-worked cases for every verifier kind, including hostile game24 answers."""
from __future__ import annotations

import dataclasses
import sys

import pytest

from lessonlab.core.tasks.suites import load_suite
from lessonlab.core.verifiers import (
    KINDS,
    Verdict,
    VerifierSpecError,
    final_answer,
    validate_spec,
    verify,
)


def check(spec, output, reward, *fragments, **kwargs):
    """Verify, assert the reward and that the feedback mentions each fragment, return the verdict."""
    verdict = verify(spec, output, **kwargs)
    assert isinstance(verdict, Verdict)
    assert verdict.reward == reward, verdict.feedback
    assert "\n" not in verdict.feedback and len(verdict.feedback) <= 300
    for fragment in fragments:
        assert fragment in verdict.feedback, verdict.feedback
    return verdict


# --------------------------------------------------------------------------- basics

def test_kinds_listed():
    assert KINDS == ("exact", "contains", "regex", "numeric", "json_schema", "game24", "python", "state")


def test_verdict_clamps_and_flattens():
    verdict = Verdict(1.7, "line one\nline two " + "x" * 500)
    assert verdict.reward == 1.0
    assert "\n" not in verdict.feedback and len(verdict.feedback) <= 300
    assert Verdict(-2, "x").reward == 0.0
    assert Verdict(float("nan"), "x").reward == 0.0


@pytest.mark.parametrize("output, expected", [
    ("thinking...\nAnswer: 42", "42"),
    ("Answer: 1\nmore thought\nanswer: 2\n", "2"),
    ("ANSWER:   Paris  ", "Paris"),
    ("**Answer:** 7", "7"),
    ("**Answer: 7**", "7"),
    ("**Answer**: 7", "7"),
    ("Final answer: 12", "12"),
    ("Answer:\n\n  9  \n", "9"),
    ("no marker here\nlast line\n\n", "last line"),
    ("", ""),
    ("<think>Answer: 1</think>\nso it is 3", "so it is 3"),
])
def test_final_answer(output, expected):
    assert final_answer(output) == expected


# --------------------------------------------------------------------------- validate_spec

@pytest.mark.parametrize("spec, fragment", [
    ([], "must be an object"),
    ({}, '"kind"'),
    ({"kind": "fuzzy"}, "unknown verifier kind 'fuzzy'"),
    ({"kind": "exact"}, '"answer"'),
    ({"kind": "exact", "answer": 3}, "non-empty string"),
    ({"kind": "exact", "answer": "x", "extra": 1}, '"extra"'),
    ({"kind": "contains", "text": ""}, "non-empty string"),
    ({"kind": "contains", "text": "a", "case_sensitive": "yes"}, "case_sensitive"),
    ({"kind": "regex", "pattern": "(unclosed"}, "invalid pattern"),
    ({"kind": "regex", "pattern": "a", "flags": "q"}, 'unknown flag "q"'),
    ({"kind": "numeric", "answer": "12"}, "finite number"),
    ({"kind": "numeric", "answer": True}, "finite number"),
    ({"kind": "numeric", "answer": 1, "tolerance": -1}, "tolerance"),
    ({"kind": "numeric", "answer": 1, "tolerence": 0.1}, '"tolerence"'),
    ({"kind": "json_schema", "schema": []}, "must be an object"),
    ({"kind": "json_schema", "schema": {"type": "float"}},
     "schema is invalid: 'float' is not valid under any of the given schemas at $.type"),
    ({"kind": "json_schema", "schema": {"properties": {"name": {"type": "strnig"}}}},
     "schema is invalid: 'strnig' is not valid under any of the given schemas at $.properties.name.type"),
    ({"kind": "json_schema", "schema": {"properties": {"a": {"pattern": "("}}}},
     "schema is invalid: '(' is not a 'regex' at $.properties.a.pattern"),
    ({"kind": "json_schema", "schema": {"required": "a"}}, "schema is invalid: 'a' is not of type 'array' at $.required"),
    ({"kind": "json_schema", "schema": {"minLength": -1}}, "at $.minLength"),
    ({"kind": "json_schema", "schema": {"$schema": "https://example.com/my-draft"}}, 'unknown "$schema"'),
    ({"kind": "json_schema", "schema": {"$ref": "#/$defs/missing"}}, "$ref '#/$defs/missing' does not resolve"),
    ({"kind": "json_schema", "schema": {"$ref": "https://example.com/person.json"}}, "remote $ref not allowed"),
    ({"kind": "game24", "numbers": []}, "numbers"),
    ({"kind": "game24", "numbers": [1, 2, "3", 4]}, "numbers"),
    ({"kind": "game24", "numbers": [1, 2, 3, 4], "target": "24"}, "target"),
    ({"kind": "python", "function": "no_colon"}, "module:function"),
    ({"kind": "python", "function": "a b:c"}, "module:function"),
])
def test_validate_spec_rejects(spec, fragment):
    with pytest.raises(VerifierSpecError) as info:
        validate_spec(spec)
    assert fragment in str(info.value)


@pytest.mark.parametrize("spec", [
    {"kind": "exact", "answer": "Paris"},
    {"kind": "contains", "text": "x", "case_sensitive": True},
    {"kind": "regex", "pattern": r"\d+", "flags": "im"},
    {"kind": "numeric", "answer": 12.5, "tolerance": 0.01},
    {"kind": "json_schema", "schema": {"type": "object", "properties": {"a": {"type": ["string", "null"]}}}},
    {"kind": "json_schema", "schema": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"}},
    {"kind": "json_schema", "schema": {"$ref": "https://json-schema.org/draft/2020-12/schema"}},
    {"kind": "game24", "numbers": [4, 7, 8, 8]},
    {"kind": "python", "function": "pkg.mod:check"},
])
def test_validate_spec_accepts(spec):
    validate_spec(spec)


def test_malformed_spec_in_verify_is_a_verdict():
    check({"kind": "fuzzy"}, "x", 0.0, "verifier error: VerifierSpecError")
    check("not a dict", "x", 0.0, "verifier error")


# --------------------------------------------------------------------------- exact

EXACT = {"kind": "exact", "answer": "Paris"}


@pytest.mark.parametrize("output", [
    "Answer: Paris", "Let me think.\nanswer: paris.", "Answer: **Paris**", 'Answer: "Paris"',
    "Answer: `Paris`", "Paris", "**Answer:** Paris", "Answer:   PARIS  ",
])
def test_exact_correct(output):
    check(EXACT, output, 1.0, 'correct: "Paris"')


def test_exact_wrong_and_empty():
    check(EXACT, "Answer: Lyon", 0.0, 'expected "Paris", got "Lyon"')
    check(EXACT, "Answer: Paris, France", 0.0, 'got "Paris, France"')
    check(EXACT, "The capital is Paris.", 0.0, 'no "Answer:" line')
    check(EXACT, "", 0.0, "empty response")
    check(EXACT, "   \n ", 0.0, "empty response")


def test_exact_collapses_whitespace_and_one_period():
    check({"kind": "exact", "answer": "New  York"}, "Answer: new york.", 1.0)
    check({"kind": "exact", "answer": "3"}, "Answer: 3..", 0.0, 'expected "3"')


# --------------------------------------------------------------------------- contains / regex

def test_contains():
    spec = {"kind": "contains", "text": "Hello"}
    check(spec, "well, hello there", 1.0, 'found "Hello"')
    check(spec, "goodbye", 0.0, '"Hello" not found')
    check(spec, "", 0.0, "empty response")
    strict = {"kind": "contains", "text": "Hello", "case_sensitive": True}
    check(strict, "hello", 0.0, "not found")
    check(strict, "say Hello", 1.0)


def test_regex():
    spec = {"kind": "regex", "pattern": r"^answer: \d+$", "flags": "im"}
    check(spec, "work\nANSWER: 12\n", 1.0, "matched", "ANSWER: 12")
    check(spec, "answer: twelve", 0.0, "not found")
    check(spec, "", 0.0, "empty response")
    check({"kind": "regex", "pattern": "abc"}, "ABC", 0.0)
    check({"kind": "regex", "pattern": "(bad"}, "x", 0.0, "verifier error: VerifierSpecError")


# --------------------------------------------------------------------------- numeric

@pytest.mark.parametrize("output, answer", [
    ("Answer: 3", 3),
    ("The letter appears 3 times.\nAnswer: 3", 3),
    ("Answer: -3", -3),
    ("x = 5-8\nAnswer: -3", -3),
    ("Answer: 1,234", 1234),
    ("Answer: $1,234.50", 1234.5),
    ("Answer: 1e3", 1000),
    ("Answer: 3/4", 0.75),
    ("Answer: 12.5%", 12.5),
    ("so the result is 42", 42),
    ("Answer: **57,590**", 57590),
    ("Answer: 7 − 10 = −3", -3),
])
def test_numeric_correct(output, answer):
    check({"kind": "numeric", "answer": answer, "tolerance": 0}, output, 1.0, "correct")


def test_numeric_wrong_messages():
    check({"kind": "numeric", "answer": 12.5, "tolerance": 0.01}, "Answer: 12.4", 0.0,
          "expected 12.5, got 12.4 (off by 0.1, tolerance 0.01)")
    check({"kind": "numeric", "answer": 3, "tolerance": 0}, "Answer: 2", 0.0, "expected 3, got 2")
    check({"kind": "numeric", "answer": 3}, "Answer: three", 0.0, "no number found in the response")
    check({"kind": "numeric", "answer": 3}, "", 0.0, "empty response")


def test_numeric_tolerance_and_fallback():
    check({"kind": "numeric", "answer": 12.5, "tolerance": 0.01}, "Answer: 12.505", 1.0)
    check({"kind": "numeric", "answer": 0.1, "tolerance": 0}, "Answer: 0.1", 1.0)
    check({"kind": "numeric", "answer": 2}, "About 2 I think", 1.0)  # default tolerance 1e-6
    # No number on the answer line: fall back to the last number anywhere.
    check({"kind": "numeric", "answer": 3}, "I counted 4, no wait, 2.\nAnswer: see above", 0.0,
          "got 2", "used the last number in the response")


def test_numeric_huge_exponent_is_ignored_quickly():
    # Expanding 10**999999999 exactly would hang; such a "number" is skipped instead.
    check({"kind": "numeric", "answer": 1}, "Answer: 1e999999999", 0.0, "no number found")


# --------------------------------------------------------------------------- json_schema

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "tags": {"type": "array", "items": {"type": "string", "pattern": "^[a-z]+$"}, "maxItems": 3},
        "role": {"enum": ["admin", "user"]},
        "version": {"const": 2},
        "nickname": {"type": ["string", "null"]},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
}


def schema_spec(schema=PERSON):
    return {"kind": "json_schema", "schema": schema}


def test_json_schema_valid_forms():
    check(schema_spec(), '{"name": "Ada", "age": 36}', 1.0, "valid JSON")
    check(schema_spec(), 'Sure:\n```json\n{"name": "Ada", "age": 36.0, "nickname": null}\n```\nDone.', 1.0)
    check(schema_spec(), 'Here:\n```\n{"name": "Ada", "age": 1, "tags": ["a", "b"], "role": "user", "version": 2.0}\n```', 1.0)


@pytest.mark.parametrize("reply, fragment", [
    ('{"name": "Ada", "age": "36"}', "$.age: '36' is not of type 'integer'"),
    ('{"name": "Ada", "age": 3.5}', "$.age: 3.5 is not of type 'integer'"),
    ('{"name": "Ada", "age": true}', "$.age: True is not of type 'integer'"),
    ('{"name": "Ada"}', "$: 'age' is a required property"),
    ('{"name": "Ada", "age": 3, "extra": 1}', "$: Additional properties are not allowed ('extra' was unexpected)"),
    ('{"name": "", "age": 3}', "$.name: '' should be non-empty"),
    ('{"name": "Ada", "age": -1}', "$.age: -1 is less than the minimum of 0"),
    ('{"name": "Ada", "age": 200}', "$.age: 200 is greater than the maximum of 150"),
    ('{"name": "Ada", "age": 3, "tags": ["ok", "NO"]}', "$.tags[1]: 'NO' does not match '^[a-z]+$'"),
    ('{"name": "Ada", "age": 3, "tags": ["a", "b", "c", "d"]}', "$.tags: ['a', 'b', 'c', 'd'] is too long"),
    ('{"name": "Ada", "age": 3, "role": "root"}', "$.role: 'root' is not one of ['admin', 'user']"),
    ('{"name": "Ada", "age": 3, "version": 3}', "$.version: 2 was expected"),
    ('{"name": "Ada", "age": 3, "nickname": 5}', "$.nickname: 5 is not of type 'string', 'null'"),
    ("[1, 2]", "$: [1, 2] is not of type 'object'"),
    ("name: Ada", "response is not valid JSON"),
    ("```json\n{bad}\n```", "fenced block is not valid JSON"),
    ("", "empty response"),
])
def test_json_schema_failures(reply, fragment):
    check(schema_spec(), reply, 0.0, fragment)


def test_json_schema_combinators_and_bool_not_number():
    number = schema_spec({"type": "number"})
    check(number, "true", 0.0, "True is not of type 'number'")
    check(number, "2", 1.0)
    any_of = schema_spec({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    check(any_of, '"x"', 1.0)
    check(any_of, "1.5", 0.0, "$: 1.5 is not valid under any of the given schemas")
    one_of = schema_spec({"oneOf": [{"type": "integer"}, {"type": "number"}]})
    check(one_of, "1.5", 1.0)
    check(one_of, "1", 0.0, "1 is valid under each of")
    all_of = schema_spec({"allOf": [{"type": "string"}, {"maxLength": 2}]})
    check(all_of, '"abc"', 0.0, "'abc' is too long")
    check(schema_spec({"enum": [1]}), "true", 0.0, "not one of")
    check(schema_spec({"type": "object", "x-unknown-keyword": 1, "properties": {"a b": {"type": "string"}}}),
          '{"a b": 1}', 0.0, "$[\"a b\"]: 1 is not of type 'string'")


# The hand-written subset before jsonschema got each of these wrong: (schema, passing reply,
# failing reply, fragment of the failure's feedback).
SUBSET_BUGS = {
    "$ref/$defs": (
        {"$defs": {"even": {"type": "integer", "multipleOf": 2}},
         "type": "object", "properties": {"count": {"$ref": "#/$defs/even"}}},
        '{"count": 4}', '{"count": "four"}', "$.count: 'four' is not of type 'integer'"),
    "uniqueItems": (
        {"type": "array", "uniqueItems": True},
        '[1, 2, 3]', '[1, 2, 1]', "$: [1, 2, 1] has non-unique elements"),
    "multipleOf": (
        {"type": "object", "properties": {"items": {"type": "array", "items": {"multipleOf": 2}}}},
        '{"items": [2, 4, 6]}', '{"items": [2, 4, 5]}', "$.items[2]: 5 is not a multiple of 2"),
    "if/then": (
        {"type": "object", "if": {"properties": {"unit": {"const": "cm"}}, "required": ["unit"]},
         "then": {"required": ["value"]}},
        '{"unit": "cm", "value": 3}', '{"unit": "cm"}', "$: 'value' is a required property"),
    "prefixItems": (
        {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
        '["a", 1, true]', '["a", "b"]', "$[1]: 'b' is not of type 'integer'"),
    "patternProperties": (
        {"type": "object", "patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False},
        '{"x-colour": "red"}', '{"x-colour": "red", "size": 2}', "'size' does not match any of the regexes: '^x-'"),
}


@pytest.mark.parametrize("name", sorted(SUBSET_BUGS))
def test_json_schema_keywords_the_old_subset_missed(name):
    schema, good, bad, fragment = SUBSET_BUGS[name]
    check(schema_spec(schema), good, 1.0, "valid JSON matching the schema")
    check(schema_spec(schema), bad, 0.0, fragment)


def test_json_schema_draft_from_dollar_schema():
    # Draft 4 did not count 1.0 as an integer; 2020-12 (the default) does.
    draft4 = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "integer"}
    check(schema_spec(draft4), "1.0", 0.0, "1.0 is not of type 'integer'")
    check(schema_spec({"type": "integer"}), "1.0", 1.0)
    # Draft 7 has no prefixItems, so it is an unknown keyword there and ignored.
    draft7 = {"$schema": "http://json-schema.org/draft-07/schema#", "prefixItems": [{"type": "string"}]}
    check(schema_spec(draft7), "[1]", 1.0)


def test_json_schema_bad_schema_in_verify_is_a_verdict():
    check(schema_spec({"type": "strnig"}), '"x"', 0.0, "verifier error: VerifierSpecError", "schema is invalid")


@pytest.mark.parametrize("schema", [
    {"$ref": "https://example.com/person.json"},
    {"properties": {"a": {"$ref": "other.json#/$defs/a"}}},
    {"$id": "https://example.com/root.json", "items": {"$ref": "item.json"}},
])
def test_json_schema_remote_ref_is_refused_without_fetching(schema, monkeypatch):
    import urllib.request

    def no_network(*args, **kwargs):
        raise AssertionError("tried to fetch a remote $ref")

    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    with pytest.raises(VerifierSpecError, match=r"remote \$ref not allowed"):
        validate_spec(schema_spec(schema))
    check(schema_spec(schema), "{}", 0.0, "remote $ref not allowed")


def test_json_schema_local_refs_resolve():
    tree = {"$defs": {"node": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
                               "additionalProperties": False}},
            "$ref": "#/$defs/node"}
    check(schema_spec(tree), '{"kids": [{"kids": []}, {}]}', 1.0)
    check(schema_spec(tree), '{"kids": [{"kids": [{"x": 1}]}]}', 0.0, "$.kids[0].kids[0]: Additional properties")
    with_id = {"$id": "https://example.com/root.json", "$defs": {"a": {"$anchor": "A", "type": "string"}},
               "items": {"$ref": "root.json#A"}}
    check(schema_spec(with_id), '["x"]', 1.0)
    check(schema_spec(with_id), "[1]", 0.0, "$[0]: 1 is not of type 'string'")


def test_json_schema_deeply_nested_reply_is_a_clear_zero():
    deep = "[" * 500 + "]" * 500
    tree = {"$defs": {"n": {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/n"}}, {"type": "object"}]}},
            "$ref": "#/$defs/n"}
    for schema in ({"type": "array"}, tree):
        verdict = check(schema_spec(schema), deep, 0.0, "nested more than 64 levels deep")
        assert "RecursionError" not in verdict.feedback
    # Deeper than the JSON parser goes: still a plain verdict.
    check(schema_spec(tree), "[" * 100_000 + "]" * 100_000, 0.0, "nested too deeply")
    # Within the limit, a recursive schema still validates.
    check(schema_spec(tree), "[" * 60 + "]" * 60, 1.0)


def test_json_schema_ref_loop_is_a_clear_zero():
    loop = {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}
    validate_spec(schema_spec(loop))  # legal JSON Schema; it only fails when a reply reaches it
    verdict = check(schema_spec(loop), "1", 0.0, "the schema's $refs loop")
    assert "RecursionError" not in verdict.feedback


def test_json_schema_long_values_keep_the_reason():
    reply = '{"blob": "' + "x" * 1000 + '"}'
    verdict = check(schema_spec({"properties": {"blob": {"type": "integer"}}}), reply, 0.0, "is not of type 'integer'")
    assert verdict.feedback.startswith("$.blob: 'xxx")


# --------------------------------------------------------------------------- game24

G24 = {"kind": "game24", "numbers": [4, 7, 8, 8]}
G1555 = {"kind": "game24", "numbers": [1, 5, 5, 5]}


@pytest.mark.parametrize("output", [
    "Answer: 8*(4+7-8)",
    "Let me try.\nAnswer: (7-(8/8))*4",
    "Answer: (7 - 8/8) × 4 = 24",
    "Answer: `(7-8/8)*4`",
    "**Answer:** 4 x (7 - 8 ÷ 8)",
    "Answer: 24 = (7-8/8)*4",
    "Answer: the expression is (7-8/8)*4.",
])
def test_game24_correct(output):
    check(G24, output, 1.0, "24 reached")


def test_game24_fractions_are_exact():
    check(G1555, "Answer: 5*(5-1/5)", 1.0, "24 reached: 5*(5-1/5)")
    check({"kind": "game24", "numbers": [3, 3, 8, 8]}, "Answer: 8/(3-8/3)", 1.0)


def test_game24_other_target():
    check({"kind": "game24", "numbers": [1, 2, 3], "target": 7}, "Answer: 1+2*3", 1.0, "7 reached")


@pytest.mark.parametrize("output, fragments", [
    ("Answer: (8-4)*(7-1)", ["uses 1, which is not among the given numbers", "uses 8 once but it is given twice"]),
    ("Answer: 8*8/8+7+4", ["uses 8 three times but it is given twice"]),
    ("Answer: 8*(7-4)", ["uses 8 once but it is given twice"]),
    ("Answer: 8*(8-4)", ["does not use 7"]),
    ("Answer: 8+8+7+4", ["expression equals 27, not 24"]),
    ("Answer: 8/7+8+4", ["expression equals 92/7, not 24"]),
    ("Answer: __import__('os').system('x')", ["not an arithmetic expression"]),
    ("Answer: 9**9**9", ["powers (**) are not allowed"]),
    ("Answer: 8^2-40", ["powers (^) are not allowed"]),
    ("Answer: abs(-24)", ["not an arithmetic expression"]),
    ("Answer: (8-4)*(7-1", ["unbalanced parentheses"]),
    ("Answer: 4.0*7+8-8", ["only whole numbers"]),
    ("Answer: 87-48-8-7", ["uses 87"]),
    ("Answer:", ["no expression found"]),
    ("", ["empty response"]),
    ("I give up, no idea.", ["not an arithmetic expression"]),
])
def test_game24_rejections(output, fragments):
    check(G24, output, 0.0, *fragments)


def test_game24_division_by_zero():
    check({"kind": "game24", "numbers": [4, 4, 7, 8]}, "Answer: (8/(4-4))*7", 0.0, "division by zero")


def test_game24_long_and_deep_inputs():
    check(G24, "Answer: " + "+".join(["8"] * 200), 0.0, "expression too long")
    check(G24, "Answer: " + "(" * 60 + "8" + ")" * 60, 0.0, "nested too deeply")
    check(G24, "Answer: " + "-" * 80 + "8", 0.0, "nested too deeply")
    huge = "blah " * 200_000 + "\nAnswer: (7-8/8)*4"
    check(G24, huge, 1.0)


def test_builtin_game24_solutions_verify():
    suite = load_suite("game24")
    for task in suite.tasks:
        verdict = verify(task.verifier, f"Answer: {task.metadata['answer']}")
        assert verdict.reward == 1.0, (task.id, verdict.feedback)


def test_builtin_numeric_answers_verify():
    for name in ("strawberry", "arithmetic"):
        for task in load_suite(name).tasks:
            assert verify(task.verifier, f"Answer: {task.metadata['answer']}").reward == 1.0, task.id
            assert verify(task.verifier, f"Answer: {task.metadata['answer'] + 1}").reward == 0.0, task.id


def test_builtin_format_answers_verify():
    for task in load_suite("format").tasks:
        assert verify(task.verifier, f"Answer: {task.metadata['answer']}").reward == 1.0, task.id


# --------------------------------------------------------------------------- python

def write_module(tmp_path, name, body):
    (tmp_path / f"{name}.py").write_text(body, encoding="utf-8")


def test_python_refused_without_trust(tmp_path, monkeypatch):
    write_module(tmp_path, "llv_refused", "def check(output, task):\n    raise AssertionError('ran')\n")
    monkeypatch.chdir(tmp_path)
    verdict = check({"kind": "python", "function": "llv_refused:check"}, "x", 0.0)
    assert verdict.feedback == ("python verifier refused: rerun with --trust-verifiers "
                                "to run user code 'llv_refused:check'")
    assert "llv_refused" not in sys.modules


def test_python_runs_with_trust_from_cwd(tmp_path, monkeypatch):
    write_module(tmp_path, "llv_shapes", (
        "def as_float(output, task):\n    return 0.25\n"
        "def as_bool(output, task):\n    return output == 'yes'\n"
        "def as_tuple(output, task):\n    return (0.5, 'half: ' + task['id'])\n"
        "def as_dict(output, task):\n    return {'reward': 3, 'feedback': 'too\\nmuch'}\n"
        "def as_verdict(output, task):\n"
        "    from lessonlab.core.verifiers import Verdict\n    return Verdict(1.0, 'fine')\n"
        "def as_junk(output, task):\n    return 'nope'\n"
        "def boom(output, task):\n    raise KeyError('missing')\n"
        "def leave(output, task):\n    import sys; sys.exit(3)\n"
    ))
    monkeypatch.chdir(tmp_path)
    path_before = list(sys.path)
    task = {"id": "t1"}

    def run(fn, output="x"):
        return verify({"kind": "python", "function": f"llv_shapes:{fn}"}, output, task=task, trust_python=True)

    assert run("as_float") == Verdict(0.25, "python verifier returned 0.25")
    assert run("as_bool", "yes").reward == 1.0
    assert run("as_bool", "no").reward == 0.0
    assert run("as_tuple") == Verdict(0.5, "half: t1")
    assert run("as_dict") == Verdict(1.0, "too much")
    assert run("as_verdict") == Verdict(1.0, "fine")
    assert run("as_junk").feedback.startswith("verifier error: TypeError")
    assert run("boom").feedback == "verifier error: KeyError: 'missing'"
    assert run("boom").reward == 0.0
    assert "sys.exit(3)" in run("leave").feedback
    assert run("missing_fn").feedback.startswith("verifier error: AttributeError")
    assert sys.path == path_before


def test_python_missing_module(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    verdict = verify({"kind": "python", "function": "llv_does_not_exist:f"}, "x", trust_python=True)
    assert verdict.reward == 0.0
    assert verdict.feedback.startswith("verifier error: ModuleNotFoundError")


def test_any_verifier_exception_becomes_a_verdict(monkeypatch):
    from lessonlab.core.verifiers import registry

    def explode(spec, output):
        raise RuntimeError("kaboom\nsecond line")

    exploding = dataclasses.replace(registry._KINDS["exact"], score=explode)
    monkeypatch.setitem(registry._KINDS, "exact", exploding)
    check({"kind": "exact", "answer": "x"}, "x", 0.0, "verifier error: RuntimeError: kaboom second line")


def test_feedback_is_one_line_everywhere():
    long_line = "Answer: " + "word " * 400
    for spec in ({"kind": "exact", "answer": "x"}, {"kind": "numeric", "answer": 1},
                 {"kind": "contains", "text": "zzz\nyyy"}, {"kind": "regex", "pattern": "a\nb", "flags": "x"},
                 schema_spec({"type": "integer"}), schema_spec({"type": "object", "required": ["x" * 500]}), G24):
        for output in (long_line, "multi\nline\noutput", "Answer: 1\n"):
            check(spec, output, verify(spec, output).reward)


def test_the_worker_pool_loads_on_first_use_only():
    # Checking specs (every suite load) must not pay for asyncio and the worker pool; using the pool loads it.
    probe = ("import sys\n"
             "import lessonlab.core.tasks.suites\n"
             "before = 'asyncio' in sys.modules or 'lessonlab.core.verifiers.pool' in sys.modules\n"
             "from lessonlab.core.verifiers import DEFAULT_VERIFY_TIMEOUT, VerifierPool, WorkerPool\n"
             "from lessonlab.core.verifiers import pool\n"
             "print(before, VerifierPool is pool.VerifierPool, WorkerPool is pool.WorkerPool, DEFAULT_VERIFY_TIMEOUT)\n")
    import subprocess

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["False", "True", "True", "5.0"], done.stderr


def test_an_unknown_name_in_the_verifiers_package_is_an_attribute_error():
    import lessonlab.core.verifiers as verifiers

    with pytest.raises(AttributeError, match="no_such_thing"):
        verifiers.no_such_thing  # noqa: B018


@pytest.mark.parametrize("text, literals", [
    ("Answer: 007", ["7"]), ("1,234,567 apples", ["1234567"]), ("-5 and +6", ["-5", "6"]),
    ("\u0661\u0662 in Arabic-Indic digits", ["12"]), ("3.50 or 1e3 or 2E-2", ["3.50", "1e3", "2E-2"]),
    ("12345678901234567890123", ["12345678901234567890123"]), ("\u22127", ["-7"]), ("3/4 and 5/0; 3/4, 1", ["3/4", "3", "4", "1"]),
])
def test_numbers_in_reads_whole_numbers_as_the_exact_fraction_parser_does(text, literals):
    from fractions import Fraction

    from lessonlab.core.verifiers.answers import numbers_in, to_fraction

    assert numbers_in(text) == [Fraction(literal) for literal in literals]
    assert all(type(value) is Fraction for value in numbers_in(text))
    # The cached spec numbers are the same exact values, whatever type the spec used.
    assert to_fraction(0.1) == Fraction(1, 10) and to_fraction(1) == to_fraction(1.0) == 1
    assert type(to_fraction(True)) is Fraction and to_fraction(True) == 1
