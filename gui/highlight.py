"""Model text → safe HTML: everything escaped; fenced code blocks and JSON highlighted with Pygments.

Model output is never rendered as HTML: any markup in it comes out as literal text,
and nothing in it can make the view fetch a resource.
"""
from __future__ import annotations

import html
import json
import re
from functools import lru_cache

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import JsonLexer, get_lexer_by_name
from pygments.util import ClassNotFound


_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_FORMATTER = HtmlFormatter(nowrap=True, noclasses=True, style="friendly")
CODE_STYLE = "background:#f4f6f8;border:1px solid #dde2e6;padding:4px;font-family:monospace;white-space:pre-wrap"


def escape_text(text: str) -> str:
    """Plain text as HTML that shows exactly the characters (line breaks kept)."""
    return html.escape(text, quote=True).replace("\n", "<br>")


@lru_cache(maxsize=64)
def _lexer(name: str):
    try:
        return get_lexer_by_name(name or "text")
    except ClassNotFound:
        return get_lexer_by_name("text")


def highlight_code(code: str, language: str = "") -> str:
    """Pygments HTML (inline styles) for one code block; Pygments escapes the code itself."""
    body = highlight(code, _lexer(language.lower()), _FORMATTER)
    return f'<pre style="{CODE_STYLE}">{body}</pre>'


def _as_json(text: str) -> str | None:
    stripped = text.strip()
    if not stripped or stripped[0] not in "[{":
        return None
    try:
        value = json.loads(stripped)
    except ValueError:
        return None
    return json.dumps(value, indent=2, ensure_ascii=False)


def text_to_html(text: str | None) -> str:
    """A message as safe HTML: JSON and ``` fenced blocks highlighted, the rest escaped."""
    if not text:
        return ""
    pretty = _as_json(text)
    if pretty is not None:
        return f'<pre style="{CODE_STYLE}">{highlight(pretty, JsonLexer(), _FORMATTER)}</pre>'
    parts, pos = [], 0
    for match in _FENCE.finditer(text):
        parts.append(escape_text(text[pos:match.start()]))
        language, code = match.group(1), match.group(2)
        if not language and _as_json(code) is not None:
            language = "json"
        parts.append(highlight_code(code.rstrip("\n"), language))
        pos = match.end()
    parts.append(escape_text(text[pos:]))
    return "".join(parts)


INSERTED_STYLE = "background:#fff176"
DIFF_STYLES = {
    "insert": "background:#c8e6c9;color:#1b5e20",
    "delete": "background:#ffcdd2;color:#b71c1c;text-decoration:line-through",
}


def diff_ops_to_html(ops: list[tuple[str, str]], *, show_deleted: bool = True) -> str:
    """A word diff (core.text_diff.word_diff) as safe HTML: old → new, or only the new text's changes marked."""
    # show_deleted: deleted words struck through in red and inserted ones in green (old → new text);
    # otherwise only the new text, its changed words in yellow and a red mark where words went missing.
    out = []
    for k, (op, text) in enumerate(ops):
        chunk = escape_text(text)
        if op == "equal":
            out.append(chunk)
        elif show_deleted:
            out.append(f'<span style="{DIFF_STYLES[op]}">{chunk}</span>')
        elif op == "insert":
            out.append(f'<span style="{INSERTED_STYLE}">{chunk}</span>')
        elif k + 1 >= len(ops) or ops[k + 1][0] != "insert":
            # words of the reference are missing here (a replacement shows as the yellow words instead)
            out.append('<span style="color:#c62828;font-weight:bold">⌫</span>')
    return "".join(out)

