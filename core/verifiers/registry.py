"""The verifier kinds by name, and the two entry points that dispatch on a spec's kind.

Each family module registers its kinds when it is imported (the package imports them all);
the order of registration is the order of KINDS.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from lessonlab.core.verifiers.spec import VerifierSpecError, type_name
from lessonlab.core.verifiers.verdict import Verdict

# Seconds a verifier that may hang (see `may_hang`) gets before it scores 0; the worker pool enforces it.
DEFAULT_VERIFY_TIMEOUT = 5.0


@dataclass(frozen=True)
class VerifierKind:
    """How one kind of verifier checks its spec and scores a reply."""

    validate: Callable[[dict], None]
    score: Callable[..., Verdict]
    # A kind that runs the user's code also gets the task and the caller's trust decision.
    runs_user_code: bool = False
    # A kind that reads the task itself (the final tool state, for `state`) gets it as `task=`.
    needs_task: bool = False
    # Whether scoring this spec may run without end (a backtracking pattern, user code): such specs
    # are scored in a worker process that can be killed at the time limit.
    may_hang: Callable[[dict], bool] = lambda spec: False


_KINDS: dict[str, VerifierKind] = {}


def register(name: str, kind: VerifierKind) -> None:
    """Make a verifier kind available under `name`."""
    if name in _KINDS:
        raise ValueError(f"verifier kind {name!r} is already registered")
    _KINDS[name] = kind


def kind_names() -> tuple[str, ...]:
    """The registered kinds, in registration order."""
    return tuple(_KINDS)


def validate_spec(spec: dict) -> None:
    """Raise VerifierSpecError with a clear reason if the spec is malformed."""
    if not isinstance(spec, dict):
        raise VerifierSpecError(f"verifier spec must be an object, got {type_name(spec)}")
    kind = spec.get("kind")
    known = ", ".join(_KINDS)
    if kind is None:
        raise VerifierSpecError(f'verifier spec has no "kind" (one of {known})')
    if not isinstance(kind, str) or kind not in _KINDS:
        raise VerifierSpecError(f"unknown verifier kind {kind!r} (known: {known})")
    _KINDS[kind].validate(spec)


def needs_isolation(spec: dict, trust_python: bool = False) -> bool:
    """Whether scoring `spec` may never end, so that it must run where it can be stopped."""
    kind = _KINDS.get(spec.get("kind")) if isinstance(spec, dict) else None
    if kind is None:
        return False  # verify() turns an unknown kind into a verdict at once
    if kind.runs_user_code:
        return trust_python  # untrusted user code is refused, not run
    return kind.may_hang(spec)


def verify(spec: dict, output: str, *, task: dict | None = None, trust_python: bool = False) -> Verdict:
    """Score output; NEVER raises: a verifier that raises gives Verdict(0.0, 'verifier error: <ExcType>: <msg>')."""
    try:
        validate_spec(spec)
        output = "" if output is None else str(output)
        kind = _KINDS[spec["kind"]]
        if kind.runs_user_code:
            return kind.score(spec, output, task=task, trust=trust_python)
        if kind.needs_task:
            return kind.score(spec, output, task=task)
        return kind.score(spec, output)
    except Exception as exc:  # noqa: BLE001 - the contract is that scoring never raises
        return Verdict(0.0, f"verifier error: {type(exc).__name__}: {exc}")
