"""The python verifier: the user's own `function(output, task)`, run only when the caller trusts it."""
from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
from typing import Any, Callable, Iterable

from lessonlab.core.verifiers.registry import VerifierKind, register
from lessonlab.core.verifiers.spec import VerifierSpecError, check_fields, is_number, require
from lessonlab.core.verifiers.verdict import Verdict

_FUNCTION_REF_RE = re.compile(r"^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*:[A-Za-z_]\w*$")


def load_function(ref: str) -> Callable:
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


def _module_file(module_name: str, search_path: list[str]) -> str | None:
    """The file that importing module_name would run, found without importing it (or its packages)."""
    spec = None
    locations: list[str] | None = search_path
    for depth, part in enumerate(module_name.split(".")):
        # PathFinder looks a name up in explicit directories: a parent package's __init__ never runs,
        # unlike importlib.util.find_spec("pkg.mod"), which imports pkg first.
        if depth == 0 and part in sys.builtin_module_names:
            return None
        spec = importlib.machinery.PathFinder.find_spec(part, locations)
        if spec is None:
            return None
        locations = list(spec.submodule_search_locations or [])
    return spec.origin if spec is not None else None


def describe_python_verifiers(tasks: Iterable) -> list[tuple[str, str | None]]:
    """Each distinct python verifier `module:function` of the tasks with the file it would run (None: not found)."""
    refs: list[str] = []
    for task in tasks:
        spec = task.verifier if hasattr(task, "verifier") else task.get("verifier")
        if isinstance(spec, dict) and spec.get("kind") == "python" and isinstance(spec.get("function"), str):
            if spec["function"] not in refs:
                refs.append(spec["function"])
    return [(ref, code_file(ref)) for ref in refs]


def code_file(ref: str) -> str | None:
    """The file `module:function` would be imported from, found without importing it (None: not found)."""
    module_name = ref.split(":")[0]
    # The same search order as load_function: the current directory, then sys.path.
    search = [os.getcwd(), *(p or os.getcwd() for p in sys.path)]
    loaded = sys.modules.get(module_name)
    return getattr(loaded, "__file__", None) if loaded is not None else _module_file(module_name, search)


def _to_verdict(result: Any) -> Verdict:
    """Accept the result shapes a user verifier may reasonably return."""
    if isinstance(result, Verdict):
        return result
    if isinstance(result, bool):
        return Verdict(1.0 if result else 0.0, f"python verifier returned {result}")
    if is_number(result):
        return Verdict(result, f"python verifier returned {result}")
    if isinstance(result, tuple) and len(result) == 2 and is_number(result[0]):
        return Verdict(result[0], str(result[1]))
    if isinstance(result, dict) and is_number(result.get("reward")):
        return Verdict(result["reward"], str(result.get("feedback", "")))
    if is_number(getattr(result, "reward", None)):
        return Verdict(result.reward, str(getattr(result, "feedback", "")))
    raise TypeError(f"python verifier returned {type(result).__name__}; expected a Verdict, a number, "
                    "a (reward, feedback) tuple or a dict with reward and feedback")


def _validate(spec: dict) -> None:
    check_fields(spec, "python", {"function"})
    ref = require(spec, "function", "python")
    if not isinstance(ref, str) or not _FUNCTION_REF_RE.match(ref):
        raise VerifierSpecError(f'python verifier: "function" must look like "module:function", got {ref!r}')


def _score(spec: dict, output: str, *, task: dict | None, trust: bool) -> Verdict:
    ref = spec["function"]
    if not trust:
        return Verdict(0.0, f"python verifier refused: rerun with --trust-verifiers to run user code {ref!r}")
    func = load_function(ref)
    try:
        result = func(output, task)
    except SystemExit as exc:
        # User code calling sys.exit must not end the whole run.
        raise RuntimeError(f"verifier called sys.exit({exc.code})") from None
    return _to_verdict(result)


register("python", VerifierKind(_validate, _score, runs_user_code=True))
