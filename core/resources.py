"""Reading packaged resources (prompts, suites) with importlib.resources."""
from __future__ import annotations

import hashlib
from importlib.resources import files


def read_prompt(name: str) -> str:
    """Text of resources/prompts/<name>."""
    return (files("lessonlab.resources") / "prompts" / name).read_text(encoding="utf-8")


def sha256(text: str) -> str:
    """Hex sha256 of a string (UTF-8)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
