"""The state verifier: the final state of a task's stateful tools (`task["tool_state"]`) against a spec.

`{"kind": "state", "expect": {"shop.cart": {"oat-bread": 2}, "shop.checked_out": true}}`: each key is a
dotted path into the state, each value what must be found there (JSON equality). The reward is the share
of expectations met, and the feedback names each one that was not.
"""
from __future__ import annotations

import json
from typing import Any

from lessonlab.core.verifiers.registry import VerifierKind, register
from lessonlab.core.verifiers.spec import VerifierSpecError, check_fields, require, type_name
from lessonlab.core.verifiers.verdict import Verdict

_MISSING = object()


def _validate(spec: dict) -> None:
    check_fields(spec, "state", {"expect"})
    expect = require(spec, "expect", "state")
    if not isinstance(expect, dict) or not expect:
        raise VerifierSpecError(f'state verifier: "expect" must be a non-empty object of path: value, got '
                                f"{type_name(expect)}")
    for path in expect:
        if not path or any(not part for part in path.split(".")):
            raise VerifierSpecError(f'state verifier: path {json.dumps(path)} must be dotted keys such as "shop.cart"')


def _lookup(state: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(state, dict) and part in state:
            state = state[part]
        elif isinstance(state, list) and part.isdigit() and int(part) < len(state):
            state = state[int(part)]
        else:
            return _MISSING
    return state


def _same(found: Any, expected: Any) -> bool:
    """JSON equality: 1 and 1.0 are the same, true and 1 are not."""
    if isinstance(found, bool) or isinstance(expected, bool):
        return type(found) is type(expected) and found == expected
    if isinstance(expected, dict):
        return (isinstance(found, dict) and found.keys() == expected.keys()
                and all(_same(found[k], expected[k]) for k in expected))
    if isinstance(expected, list):
        return (isinstance(found, list) and len(found) == len(expected)
                and all(_same(a, b) for a, b in zip(found, expected)))
    return found == expected


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= 80 else text[:79] + "…"


def _score(spec: dict, output: str, *, task: dict | None) -> Verdict:
    state = (task or {}).get("tool_state")
    if state is None:
        return Verdict(0.0, "no tool state to check: the rollout ran no stateful tools")
    misses = []
    for path, expected in spec["expect"].items():
        found = _lookup(state, path)
        if found is _MISSING:
            misses.append(f"{path}: missing, expected {_short(expected)}")
        elif not _same(found, expected):
            misses.append(f"{path}: expected {_short(expected)}, got {_short(found)}")
    total = len(spec["expect"])
    if not misses:
        return Verdict(1.0, f"state as expected ({total} of {total} checks)")
    return Verdict((total - len(misses)) / total, f"{total - len(misses)} of {total} state checks met; "
                   + "; ".join(misses))


register("state", VerifierKind(_validate, _score, needs_task=True))
