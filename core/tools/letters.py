"""The `letters` tool set: `spell(word)`, the word one letter per line (counting letters is then reading)."""
from __future__ import annotations

from lessonlab.core.tools.registry import ToolError, ToolSet, register, tool

MAX_WORD_CHARS = 200


def spell(word: str) -> str:
    """Spell a word: returns the word one letter per line, in order, so that letters can be counted reliably."""
    if not word:
        raise ToolError("spell needs a non-empty word")
    if len(word) > MAX_WORD_CHARS:
        raise ToolError(f"spell takes a word of at most {MAX_WORD_CHARS} characters, got {len(word)}")
    return "\n".join(word)


LETTERS = ToolSet("letters", (tool(spell, {"word": ("string", "the word to spell")}),))
register(LETTERS)
