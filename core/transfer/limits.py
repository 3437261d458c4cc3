"""What a file from a stranger may hold: sizes, nesting, numbers and text that lessonlab can store.

Readers call these while streaming, so a hostile file (a zip bomb, a line without end, JSON nested a
thousand deep, a 400-digit token count, a lone UTF-16 surrogate) is refused with one line naming the
file and the entry or line, before anything is held in memory whole or written.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

# A zip member (one Inspect sample) is read whole; real samples with attachments stay well below this.
MAX_MEMBER_BYTES = 256 * 1024 * 1024
# One chat JSONL line is parsed whole.
MAX_LINE_BYTES = 64 * 1024 * 1024
# Deeper JSON than this is no chat log; Python's own parser and serialiser recurse and give up near 1,000.
MAX_DEPTH = 100
# SQLite integers are signed 64-bit.
MAX_INTEGER = 2 ** 63 - 1

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class RecordError(ValueError):
    """One record (a line, a sample) breaks a rule; the reader adds the file and where."""


def require_regular_file(path: Path) -> None:
    """RecordError unless path is a regular file (a FIFO would block, /dev/zero never ends)."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise RecordError(f"cannot read the file: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise RecordError("is a directory, not a log file")
    if not stat.S_ISREG(mode):
        raise RecordError("is not a regular file (a pipe, a device or a socket); save it to a file first")


def may_hold_surrogates(raw: bytes) -> bool:
    """Whether JSON text escapes a UTF-16 surrogate (only then can a parsed string hold a lone one)."""
    return _SURROGATE_ESCAPE.search(raw) is not None


def check_json_value(value: Any, *, check_text: bool = True) -> None:
    """RecordError when a parsed JSON value is nested too deeply, has an integer SQLite cannot hold,
    or (with check_text) a string that is not valid Unicode (a lone surrogate such as \\ud800)."""
    if not _fits(value, check_text):
        _find_fault(value, check_text)  # only on failure: walk again, naming where


def _fits(value: Any, check_text: bool) -> bool:
    """The fast walk every record takes: no paths are built."""
    stack = [(value, 0)]
    pop, push = stack.pop, stack.append
    while stack:
        item, depth = pop()
        kind = type(item)
        if kind is dict:
            if depth >= MAX_DEPTH:
                return False
            for key, child in item.items():
                if check_text and not _encodes(key):
                    return False
                push((child, depth + 1))
        elif kind is list:
            if depth >= MAX_DEPTH:
                return False
            for child in item:
                push((child, depth + 1))
        elif kind is int:
            if not -MAX_INTEGER - 1 <= item <= MAX_INTEGER:
                return False
        elif kind is str and check_text and not _encodes(item):
            return False
    return True


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _find_fault(value: Any, check_text: bool) -> None:
    """Raise RecordError naming the first place that breaks a rule."""
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    while stack:
        item, depth, path = stack.pop()
        if isinstance(item, dict):
            if depth >= MAX_DEPTH:
                raise RecordError(f"JSON nested more than {MAX_DEPTH} levels deep (at {_at(path)})")
            for key, child in item.items():
                if check_text:
                    _check_text(key, f"{path}.{_short(key)}")
                stack.append((child, depth + 1, f"{path}.{_short(key)}" if path else _short(key)))
        elif isinstance(item, list):
            if depth >= MAX_DEPTH:
                raise RecordError(f"JSON nested more than {MAX_DEPTH} levels deep (at {_at(path)})")
            stack.extend((child, depth + 1, f"{path}[{index}]") for index, child in enumerate(item))
        elif isinstance(item, bool) or item is None or isinstance(item, float):
            continue
        elif isinstance(item, int):
            if not -MAX_INTEGER - 1 <= item <= MAX_INTEGER:
                raise RecordError(f"the number at {_at(path)} is too large ({len(str(abs(item)))} digits)")
        elif check_text and isinstance(item, str):
            _check_text(item, path)


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordError(f"the text at {_at(path)} is not valid Unicode "
                          f"(a lone surrogate {text[exc.start]!a})") from None


def _at(path: str) -> str:
    """Where in a record, cut to a readable length."""
    if not path:
        return "the top"
    return path if len(path) <= 60 else path[:30] + "…" + path[-29:]


def _short(key: Any) -> str:
    text = str(key)
    return text if len(text) <= 40 else text[:39] + "…"


def size_text(count: int) -> str:
    """A byte count for messages: 256 MB, 64 MB."""
    return f"{count / (1024 * 1024):,.0f} MB" if count >= 1024 * 1024 else f"{count:,} bytes"
