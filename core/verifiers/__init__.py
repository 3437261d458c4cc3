"""Verifiers: score a model's response to a task and say why, as a Verdict.

A verifier spec is a plain dict such as ``{"kind": "numeric", "answer": 3}``.
``validate_spec`` checks a spec up front (suites call it while loading), and
``verify`` scores one response. ``verify`` never raises: a failing verifier
yields reward 0 with the error as feedback, so one bad task cannot stop a run.

Each family of kinds lives in its own module and registers itself on import;
the imports below fix the order of KINDS.
"""
from __future__ import annotations

from lessonlab.core.verifiers import text, numeric, json_schema, game24, python_function, state  # noqa: F401 - registers the kinds
from lessonlab.core.verifiers.answers import final_answer
from lessonlab.core.verifiers.game24 import GAME24_MAX_CHARS
from lessonlab.core.verifiers.registry import DEFAULT_VERIFY_TIMEOUT, VerifierKind, kind_names, needs_isolation, register, validate_spec, verify
from lessonlab.core.verifiers.spec import VerifierSpecError
from lessonlab.core.verifiers.verdict import FEEDBACK_LIMIT, Verdict

KINDS: tuple[str, ...] = kind_names()

# The worker pool brings asyncio and concurrent.futures; checking specs (suites) and scoring in place never
# need it, so VerifierPool and WorkerPool are imported from pool.py on first use.
_POOL_NAMES = ("VerifierPool", "WorkerPool")


def __getattr__(name: str):
    if name in _POOL_NAMES:
        from lessonlab.core.verifiers import pool

        return getattr(pool, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "DEFAULT_VERIFY_TIMEOUT",
    "FEEDBACK_LIMIT",
    "GAME24_MAX_CHARS",
    "KINDS",
    "Verdict",
    "VerifierKind",
    "VerifierPool",
    "VerifierSpecError",
    "WorkerPool",
    "final_answer",
    "needs_isolation",
    "register",
    "validate_spec",
    "verify",
]
