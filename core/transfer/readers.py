"""The import formats by name: each reader module registers one ImportFormat; `import --format` lists them.

A format says whether it claims a file (`sniff`, from the name and the first bytes) and opens it for
reading (`read`, giving an ImportSource). A file that no format claims is refused, never guessed.
A new import format is one module that calls `register` plus one import line in `transfer/__init__.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Protocol

from lessonlab.core.transfer.errors import MalformedFile, TransferError
from lessonlab.core.transfer.imported import ImportedRollout, RunInfo
from lessonlab.core.transfer.limits import RecordError, require_regular_file
from lessonlab.core.transfer.scores import Warnings

AUTO = "auto"
HEAD_BYTES = 1 << 16


class ImportSource(Protocol):
    """One open file being imported: what it says about its run, and its rollouts as a stream."""

    info: RunInfo
    total_bytes: int
    warnings: Warnings
    scorers: list[str]
    # Optional: True when no two rollouts of the file can share a source key (the importer then skips
    # its check for a sample given twice).
    keys_unique: bool

    def has_samples(self) -> bool:
        """Whether the file holds any rollout at all."""

    def rollouts(self) -> Iterator[tuple[ImportedRollout, int]]:
        """Each rollout with the bytes of the file read so far (every failure a MalformedFile)."""

    def close(self) -> None:
        """Release the file."""


@dataclass(frozen=True)
class ImportFormat:
    """One import format: its name, a one-line description, how it claims a file and how it reads one."""

    name: str
    description: str
    sniff: Callable[[Path], bool]
    read: Callable[[Path], ImportSource]


_FORMATS: dict[str, ImportFormat] = {}


def register(fmt: ImportFormat) -> None:
    """Make an import format available under its name (sniffed in registration order)."""
    if fmt.name in _FORMATS or fmt.name == AUTO:
        raise ValueError(f"import format {fmt.name!r} is already registered")
    _FORMATS[fmt.name] = fmt


def format_names() -> tuple[str, ...]:
    """"auto" and the registered formats, in registration order (the choices of `import --format`)."""
    return (AUTO, *_FORMATS)


def import_formats() -> tuple[ImportFormat, ...]:
    """The registered formats, in registration order."""
    return tuple(_FORMATS.values())


def head(path: Path) -> bytes:
    """The first bytes of a file, for sniffing."""
    with open(path, "rb") as handle:
        return handle.read(HEAD_BYTES)


def checked_path(path: Path) -> Path:
    """The path, if it is a regular file that can be read; else MalformedFile naming the cause."""
    try:
        require_regular_file(path)
    except RecordError as exc:
        if not path.exists():
            raise TransferError(f"{path}: no such file") from None
        raise MalformedFile(str(path), None, str(exc)) from None
    return path


def format_of(path: Path, requested: str = AUTO) -> ImportFormat:
    """The format asked for, else the first registered format that claims the file; never a guess."""
    if requested != AUTO:
        if requested not in _FORMATS:
            raise TransferError(f"unknown format {requested!r} (use {', '.join(format_names())})")
        return _FORMATS[requested]
    checked_path(path)
    for fmt in _FORMATS.values():
        try:
            if fmt.sniff(path):
                return fmt
        except OSError as exc:
            raise MalformedFile(str(path), None, f"cannot read the file: {exc.strerror or exc}") from None
    names = " or ".join(f"--format {name}" for name in _FORMATS)
    raise TransferError(f"{path}: no import format recognises this file; if you know what it is, pass {names}")


def open_source(path: Path, requested: str = AUTO) -> ImportSource:
    """The file opened by its format's reader (a regular file only: a pipe or a device is refused)."""
    fmt = format_of(path, requested)
    return fmt.read(checked_path(path))
