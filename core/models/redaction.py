"""Secrets out of server text: an endpoint's key (and anything shaped like one) never reaches the workspace.

Servers echo what they were sent ("Invalid API key: Bearer sk-…"); that text becomes a rollout's error,
is printed, and is exported. Every error text is redacted where it is made, in `llm_client.chat`.
"""
from __future__ import annotations

import re

REDACTED = "[redacted]"
# Shapes of bearer secrets: OpenAI-style keys (sk-…, sk-proj-…) and whatever follows "Bearer".
_KEY_SHAPED = re.compile(r"\bsk-[A-Za-z0-9_\-]{6,}|(?<=Bearer )[A-Za-z0-9._~+/=\-]{6,}", re.IGNORECASE)
# A "key" this short or this common is a placeholder (the embedded model's "not-needed"), not a secret.
_PLACEHOLDERS = {"not-needed", "none", "empty", "sk-no-key-required"}


def redact(text: str, known_secrets: tuple[str | None, ...] = ()) -> str:
    """The text with each known secret value and every key-shaped token replaced by [redacted]."""
    if not text:
        return text
    return _KEY_SHAPED.sub(REDACTED, redact_known(text, known_secrets))


def redact_known(text: str | None, known_secrets: tuple[str | None, ...]) -> str | None:
    """The text with each known secret value replaced (model replies: only the real key is taken out)."""
    if not text:
        return text
    for secret in known_secrets:
        if secret and len(secret) >= 6 and secret.lower() not in _PLACEHOLDERS and secret in text:
            text = text.replace(secret, REDACTED)
    return text
