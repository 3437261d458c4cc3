"""The json_schema verifier: the reply's JSON validates against a JSON Schema, checked by `jsonschema`.

The schema's `$schema` picks the draft (2020-12 when it has none). A `$ref` resolves only inside the
schema itself or to a bundled meta-schema: nothing is ever fetched, so scoring never touches the
network, and a schema whose refs point elsewhere is rejected when the suite loads.

This module only registers the kind; the checks live in `json_schema_check`, imported on first use,
because `jsonschema` takes long to import and most commands never score a reply.
"""
from __future__ import annotations

from lessonlab.core.verifiers.registry import VerifierKind, register
from lessonlab.core.verifiers.verdict import Verdict


def _validate(spec: dict) -> None:
    from lessonlab.core.verifiers import json_schema_check

    json_schema_check.validate(spec)


def _score(spec: dict, output: str) -> Verdict:
    from lessonlab.core.verifiers import json_schema_check

    return json_schema_check.score(spec, output)


def _has_pattern(spec: dict) -> bool:
    """Whether the schema holds a regex (`pattern`, `patternProperties`), which may backtrack without end."""
    stack = [spec.get("schema")]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if "pattern" in item or "patternProperties" in item:
                return True
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


register("json_schema", VerifierKind(_validate, _score, may_hang=_has_pattern))
