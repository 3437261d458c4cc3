"""The json_schema verifier's checks, done with `jsonschema` (imported only when a json_schema spec is checked or
scored: see `json_schema`, which registers the kind)."""
from __future__ import annotations

import json
import re
from typing import Any, Iterable, Iterator

import referencing.jsonschema
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError, best_match
from jsonschema.validators import validator_for
from jsonschema_specifications import REGISTRY as META_SCHEMAS
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable

from lessonlab.core.json_text import parse_value
from lessonlab.core.verifiers.spec import VerifierSpecError, check_fields, require, type_name
from lessonlab.core.verifiers.verdict import Verdict

DEFAULT_VALIDATOR = Draft202012Validator
# Deeper replies are refused before validation: jsonschema recurses a few frames per level (more
# through $ref and anyOf), and no real answer is nested this far.
MAX_REPLY_DEPTH = 64
_INSTANCE_LIMIT = 60  # longest rendering of the offending value kept in a message
_REF_KEYWORDS = ("$ref", "$dynamicRef", "$recursiveRef")
_PLAIN_KEY_RE = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")


class _RemoteRefRefused(Exception):
    """A $ref to a document outside the schema, which would have to be fetched."""


def _refuse_to_fetch(uri: str) -> Resource:
    raise _RemoteRefRefused(uri)


# Holds the bundled meta-schemas and retrieves nothing else. Passed explicitly to every validator,
# because jsonschema's default registry would fetch remote refs over the network.
_LOCAL_ONLY = META_SCHEMAS.combine(Registry(retrieve=_refuse_to_fetch))


# --------------------------------------------------------------------------- messages

def _json_path(parts: Iterable[str | int]) -> str:
    """'$.items[2]' for ['items', 2]; keys that are not plain names are quoted, as in '$["a b"]'."""
    path = "$"
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        elif _PLAIN_KEY_RE.match(part):
            path += f".{part}"
        else:
            path += f"[{json.dumps(part, ensure_ascii=False)}]"
    return path


def _message(error: ValidationError) -> str:
    """jsonschema's message, with a long rendering of the offending value cut short so the reason survives."""
    text = error.message
    shown = repr(error.instance)
    if len(shown) > _INSTANCE_LIMIT and shown in text:
        text = text.replace(shown, shown[: _INSTANCE_LIMIT - 1] + "…")
    return text


def _unresolvable_reason(ref: str, error: Unresolvable) -> str:
    """Why a $ref did not resolve: it points outside the schema, or to nothing inside it."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, _RemoteRefRefused):
        cause = cause.__cause__
    if cause is not None:
        return (f"remote $ref not allowed: {ref!r} points outside the schema and is never fetched "
                "(use a local ref such as '#/$defs/name')")
    return f"$ref {ref!r} does not resolve to anything inside the schema"


# --------------------------------------------------------------------------- spec

def _validator_class(schema: dict) -> type:
    """The jsonschema validator class for the draft the schema names in `$schema` (2020-12 if none)."""
    if "$schema" not in schema:
        return DEFAULT_VALIDATOR
    dialect = schema["$schema"]
    found = validator_for(schema, default=None) if isinstance(dialect, str) else None
    if found is None:
        raise VerifierSpecError(f'json_schema verifier: unknown "$schema" {dialect!r} (use a JSON Schema draft '
                                'URI such as "https://json-schema.org/draft/2020-12/schema", or leave it out)')
    return found


def _refs(resolver: referencing.Resolver, resource: Resource) -> Iterator[tuple[referencing.Resolver, str]]:
    """Every ref in the schema with the resolver that applies where it stands (its base URI)."""
    contents = resource.contents
    if isinstance(contents, dict):
        for keyword in _REF_KEYWORDS:
            if isinstance(contents.get(keyword), str):
                yield resolver, contents[keyword]
    for sub in resource.subresources():
        yield from _refs(resolver.in_subresource(sub), sub)


def _check_refs(schema: dict, validator_class: type) -> None:
    """Resolve every ref now, so a remote or dangling one fails the spec rather than each reply."""
    specification = referencing.jsonschema.specification_with(validator_class.ID_OF(validator_class.META_SCHEMA))
    root = specification.create_resource(schema)
    for resolver, ref in _refs(_LOCAL_ONLY.resolver_with_root(root), root):
        try:
            resolver.lookup(ref)
        except Unresolvable as exc:
            raise VerifierSpecError(f"json_schema verifier: {_unresolvable_reason(ref, exc)}") from None


# Schemas that passed check_schema and the ref walk. verify() checks its spec on every reply, and
# these two checks cost far more than scoring a reply: a suite's schema is checked once, not per rollout.
_CHECKED_SCHEMAS: set[str] = set()
_CHECKED_LIMIT = 1024


def validate(spec: dict) -> None:
    """Check a json_schema spec: its fields, its draft, the schema itself and every $ref (VerifierSpecError)."""
    check_fields(spec, "json_schema", {"schema"})
    schema = require(spec, "schema", "json_schema")
    if not isinstance(schema, dict):
        raise VerifierSpecError(f'json_schema verifier: "schema" must be an object, got {type_name(schema)}')
    validator_class = _validator_class(schema)
    try:
        key = json.dumps(schema, sort_keys=True)
        if key in _CHECKED_SCHEMAS:
            return
        validator_class.check_schema(schema)
        _check_refs(schema, validator_class)
        if len(_CHECKED_SCHEMAS) < _CHECKED_LIMIT:
            _CHECKED_SCHEMAS.add(key)
    except SchemaError as exc:
        raise VerifierSpecError(f"json_schema verifier: schema is invalid: {_message(exc)} "
                                f"at {_json_path(exc.absolute_path)}") from None
    except RecursionError:
        raise VerifierSpecError("json_schema verifier: schema is nested too deeply") from None


# --------------------------------------------------------------------------- scoring

def _nested_deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than `limit` levels (walked without recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def score(spec: dict, output: str) -> Verdict:
    """Whether the reply is JSON that validates against the spec's schema, and where it does not."""
    if not output.strip():
        return Verdict(0.0, "empty response")
    try:
        value, problem = parse_value(output)
    except ValueError as exc:  # e.g. an integer literal longer than Python converts
        return Verdict(0.0, f"response is not valid JSON: {exc}")
    if problem:
        return Verdict(0.0, problem)
    if _nested_deeper_than(value, MAX_REPLY_DEPTH):
        return Verdict(0.0, f"response JSON is nested more than {MAX_REPLY_DEPTH} levels deep")
    schema = spec["schema"]
    validator = _validator_class(schema)(schema, registry=_LOCAL_ONLY)
    try:
        error = best_match(validator.iter_errors(value))
    except Unresolvable as exc:
        # validate_spec resolves every ref up front; this only catches one it could not see.
        return Verdict(0.0, f"schema error: {_unresolvable_reason(str(getattr(exc, 'ref', '?')), exc)}")
    except RecursionError:
        # The reply's depth is capped above, so this is mostly a schema whose $refs loop.
        return Verdict(0.0, "validation recursed too deeply: the schema's $refs loop, "
                            "or the reply is nested too deeply for this schema")
    if error is None:
        return Verdict(1.0, "valid JSON matching the schema")
    return Verdict(0.0, f"{_json_path(error.absolute_path)}: {_message(error)}")
