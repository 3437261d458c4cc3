"""Suites: named sets of tasks loaded from JSONL files, built-in or the user's own.

One task per line: ``{"id", "prompt", "verifier", "split"?, "metadata"?, "tools"?, "max_turns"?}``. Loading
checks every line and stops at the first problem with its line number, so a
person can fix a hand-written suite without guessing.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from lessonlab.core.errors import BadInput
from lessonlab.core.tools import DEFAULT_MAX_TURNS, ToolSpecError, check_max_turns, check_tool_refs
from lessonlab.core.verifiers import VerifierSpecError, validate_spec

SPLITS = ("train", "heldout")
ROLES = ("system", "user", "assistant")
FIELDS = ("id", "prompt", "verifier", "split", "metadata", "tools", "max_turns")
# A prompt longer than this is a document pasted by mistake (no model reads a million characters).
MAX_PROMPT_CHARS = 1_000_000
_SURROGATE_RE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Task:
    """One prompt plus the verifier that scores responses to it, and the tools it may call (if any)."""

    id: str
    prompt: str | tuple
    verifier: dict
    split: str = "train"
    metadata: dict = field(default_factory=dict)
    tools: tuple[str, ...] = ()          # "set" or "set.tool" names; empty: a one-call task
    max_turns: int | None = None         # as written in the suite; None: DEFAULT_MAX_TURNS when there are tools

    @property
    def turn_limit(self) -> int:
        """How many model calls a rollout of this task may make."""
        return self.max_turns if self.max_turns is not None else (DEFAULT_MAX_TURNS if self.tools else 1)

    def messages(self) -> list[dict]:
        """The prompt as chat messages (a copy, safe to extend)."""
        if isinstance(self.prompt, str):
            return [{"role": "user", "content": self.prompt}]
        return [dict(message) for message in self.prompt]

    def to_dict(self) -> dict:
        """The task as its JSONL fields (`tools` and `max_turns` only when the suite gave them)."""
        fields = {
            "id": self.id,
            "prompt": self._prompt_json(),
            "verifier": copy.deepcopy(self.verifier),
            "split": self.split,
            "metadata": copy.deepcopy(self.metadata),
        }
        fields.update(self._tool_fields())
        return fields

    def _tool_fields(self) -> dict:
        fields: dict[str, Any] = {}
        if self.tools:
            fields["tools"] = list(self.tools)
        if self.max_turns is not None:
            fields["max_turns"] = self.max_turns
        return fields

    def _prompt_json(self) -> str | list[dict]:
        return self.prompt if isinstance(self.prompt, str) else [dict(m) for m in self.prompt]

    @property
    def content_hash(self) -> str:
        """sha256 of the canonical JSON of prompt and verifier (and tools, max_turns when given), so edited tasks
        are told apart from unchanged ones while tasks without tools keep the hash they always had."""
        canonical = json.dumps({"prompt": self._prompt_json(), "verifier": self.verifier, **self._tool_fields()},
                               sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Suite:
    """A named set of tasks and where they came from."""

    name: str
    source: str
    tasks: tuple[Task, ...]

    def select(self, split: str = "train", limit: int | None = None) -> list[Task]:
        """Tasks of one split ("train", "heldout" or "all"), the first `limit` in file order."""
        if split not in (*SPLITS, "all"):
            raise ValueError(f"unknown split {split!r} (use train, heldout or all)")
        if limit is not None and limit < 0:
            raise ValueError("limit must be zero or more")
        chosen = [task for task in self.tasks if split == "all" or task.split == split]
        return chosen if limit is None else chosen[:limit]

    def tools(self) -> list[str]:
        """The tool names its tasks give, in order of first use (empty for a suite without tools)."""
        return list(dict.fromkeys(name for task in self.tasks for name in task.tools))

    def counts(self) -> dict:
        """Number of tasks per split and in total."""
        train = sum(1 for task in self.tasks if task.split == "train")
        heldout = sum(1 for task in self.tasks if task.split == "heldout")
        return {"train": train, "heldout": heldout, "total": train + heldout}


class SuiteError(BadInput, ValueError):
    """A suite that cannot be loaded, with the line at fault when there is one."""

    def __init__(self, source: str, line: int | None, reason: str):
        self.source = source
        self.line = line
        self.reason = reason
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {reason}")


class _LineError(Exception):
    """A problem with one line; load code adds source and line number."""


def _builtin_dir():
    return resources.files("lessonlab.resources") / "suites"


def builtin_suites() -> list[str]:
    """Sorted names of the built-in suites."""
    try:
        entries = list(_builtin_dir().iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(entry.name[: -len(".jsonl")] for entry in entries if entry.name.endswith(".jsonl"))


def _type_name(value: Any) -> str:
    names = {type(None): "null", bool: "boolean", int: "integer", float: "number",
             str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _check_text(text: str, where: str) -> None:
    """_LineError for prompt text that is binary or too long to be a prompt."""
    if len(text) > MAX_PROMPT_CHARS:
        raise _LineError(f"{where} is {len(text):,} characters; a prompt is at most {MAX_PROMPT_CHARS:,}")
    nul = text.find("\0")
    if nul >= 0:
        raise _LineError(f"{where} contains a NUL character at character {nul + 1} (binary data, not text)")


def _check_unicode(record: Any, where: str = "the task") -> None:
    """_LineError for a string holding half a surrogate pair (valid JSON escapes, but not text)."""
    stack = [record]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found = _SURROGATE_RE.search(item)
            if found:
                raise _LineError(f"{where} holds \\u{ord(found.group(0)):04x}, half of a surrogate pair: "
                                 "not valid Unicode text")
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _parse_prompt(value: Any) -> str | tuple:
    problem = '"prompt" must be a non-empty string or a non-empty list of chat messages'
    if isinstance(value, str):
        if not value.strip():
            raise _LineError(f"{problem}, got an empty string")
        _check_text(value, '"prompt"')
        return value
    if not isinstance(value, list):
        raise _LineError(f"{problem}, got {_type_name(value)}")
    if not value:
        raise _LineError(f"{problem}, got an empty list")
    messages = []
    for index, message in enumerate(value):
        where = f'"prompt"[{index}]'
        if not isinstance(message, dict):
            raise _LineError(f"{where} must be an object with role and content, got {_type_name(message)}")
        role = message.get("role")
        if role not in ROLES:
            raise _LineError(f"{where}: role must be one of {', '.join(ROLES)}, got {json.dumps(role)}")
        if not isinstance(message.get("content"), str):
            raise _LineError(f"{where}: content must be a string, got {_type_name(message.get('content'))}")
        _check_text(message["content"], f"{where} content")
        messages.append(dict(message))
    if sum(len(m["content"]) for m in messages) > MAX_PROMPT_CHARS:
        raise _LineError(f'"prompt" messages hold more than {MAX_PROMPT_CHARS:,} characters in all')
    return tuple(messages)


def _parse_task(record: Any, seen: dict[str, int], line: int) -> Task:
    """Build a Task from one decoded JSONL record, or raise _LineError naming the problem."""
    if not isinstance(record, dict):
        raise _LineError(f"expected a JSON object, got {_type_name(record)}")
    _check_unicode(record)
    unknown = [key for key in record if key not in FIELDS]
    if unknown:
        names = ", ".join(json.dumps(key, ensure_ascii=False) for key in unknown)
        raise _LineError(f"unknown field(s) {names} (allowed: {', '.join(FIELDS)})")

    if "id" not in record:
        raise _LineError('missing "id"')
    task_id = record["id"]
    if not isinstance(task_id, str) or not task_id.strip():
        shown = "an empty string" if isinstance(task_id, str) else _type_name(task_id)
        raise _LineError(f'"id" must be a non-empty string, got {shown}')
    if task_id in seen:
        raise _LineError(f"duplicate id {json.dumps(task_id, ensure_ascii=False)} (first used on line {seen[task_id]})")

    if "prompt" not in record:
        raise _LineError('missing "prompt"')
    prompt = _parse_prompt(record["prompt"])

    if "verifier" not in record:
        raise _LineError('missing "verifier"')
    verifier = record["verifier"]
    if not isinstance(verifier, dict):
        raise _LineError(f'"verifier" must be an object, got {_type_name(verifier)}')
    try:
        validate_spec(verifier)
    except VerifierSpecError as exc:
        raise _LineError(f"invalid verifier: {exc}") from None

    split = record.get("split", "train")
    if split not in SPLITS:
        raise _LineError(f'"split" must be "train" or "heldout", got {json.dumps(split, ensure_ascii=False)}')

    metadata = record.get("metadata", {})
    if not isinstance(metadata, dict):
        raise _LineError(f'"metadata" must be an object, got {_type_name(metadata)}')

    tools, max_turns = _parse_tools(record, metadata)
    seen[task_id] = line
    return Task(id=task_id, prompt=prompt, verifier=verifier, split=split, metadata=metadata,
                tools=tools, max_turns=max_turns)


def _parse_tools(record: dict, metadata: dict) -> tuple[tuple[str, ...], int | None]:
    """The task's validated `tools` and `max_turns` (a turn limit needs tools to limit)."""
    try:
        tools = check_tool_refs(record["tools"], metadata) if "tools" in record else ()
        max_turns = check_max_turns(record["max_turns"]) if "max_turns" in record else None
    except ToolSpecError as exc:
        raise _LineError(str(exc)) from None
    if max_turns is not None and not tools:
        raise _LineError('"max_turns" limits tool calls, but the task has no "tools"')
    return tools, max_turns


def _parse_suite(data: bytes, name: str, source: str) -> Suite:
    """Parse JSONL bytes into a Suite, raising SuiteError at the first bad line."""
    if data[:2] == b"\x1f\x8b":
        raise SuiteError(source, None, "is gzip-compressed; decompress it first (a suite is JSONL text)")
    if b"\0" in data[:65536]:
        raise SuiteError(source, None, "is a binary file, not JSONL text (it holds NUL bytes)")
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            # utf-8-sig on the first line tolerates a BOM left by Windows editors.
            text = raw.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise SuiteError(source, number, f"not valid UTF-8: {exc}") from None
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SuiteError(source, number, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        except RecursionError:
            raise SuiteError(source, number, "invalid JSON: nested too deeply") from None
        try:
            tasks.append(_parse_task(record, seen, number))
        except _LineError as exc:
            raise SuiteError(source, number, str(exc)) from None
    if not tasks:
        raise SuiteError(source, None, "the suite has no tasks (the file is empty)")
    return Suite(name=name, source=source, tasks=tuple(tasks))


def load_suite(name_or_path: str) -> Suite:
    """Load a built-in suite by name, or a suite from a .jsonl file path; raises SuiteError."""
    text = str(name_or_path)
    looks_like_path = "/" in text or "\\" in text or text.endswith(".jsonl")
    if not looks_like_path and text in builtin_suites():
        data = (_builtin_dir() / f"{text}.jsonl").read_bytes()
        return _parse_suite(data, text, f"builtin:{text}")
    path = Path(text).expanduser()
    if not path.exists():
        available = ", ".join(builtin_suites()) or "none"
        raise SuiteError(text, None, f"no such file, and no built-in suite of that name (built-in: {available})")
    if path.is_dir():
        raise SuiteError(text, None, "is a directory, not a .jsonl file")
    source = str(path.resolve())
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SuiteError(source, None, f"cannot read the file: {exc.strerror or exc}") from None
    return _parse_suite(data, path.stem, source)
