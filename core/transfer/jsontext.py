"""JSON lines built from stored JSON text: what exports use to avoid parsing and encoding the same data again."""
from __future__ import annotations

import json
import math

_CLOSERS = {"[": "]", "{": "}", '"': '"'}


def stored_json(text: str | None, openers: str = "[{\"") -> str | None:
    """Stored JSON text fit to go into a line as it is (one line, an array/object/string); None: parse it instead."""
    if text and text[0] in openers and text[-1] == _CLOSERS[text[0]] and "\n" not in text and "\r" not in text:
        return text
    return None


# One encoder for every field: json.dumps with ensure_ascii=False builds a new encoder on each call.
_encoder = json.JSONEncoder(ensure_ascii=False)
_encode_text = json.encoder.encode_basestring  # what that encoder does with a str, without the dispatch


def encode(value) -> str:
    """`json.dumps(value, ensure_ascii=False)`, with the common scalars taken the short way."""
    kind = type(value)
    if kind is str:
        return _encode_text(value)
    if kind is int or (kind is float and math.isfinite(value)):
        return repr(value)  # what json writes for them (float.__repr__ is json's float form)
    if value is None:
        return "null"
    return _encoder.encode(value)


def with_reply(messages: str, output: str) -> str:
    """Stored messages (a JSON array's text) with the assistant's reply appended."""
    reply = f'{{"role": "assistant", "content": {encode(output)}}}'
    return f"[{reply}]" if messages == "[]" else f"{messages[:-1]}, {reply}]"
