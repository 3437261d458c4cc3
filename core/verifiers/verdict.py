"""The Verdict every verifier returns, and the one-line feedback it carries."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

FEEDBACK_LIMIT = 300


def one_line(text: str, limit: int = FEEDBACK_LIMIT) -> str:
    """Collapse whitespace (newlines included) and cap the length."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def quote(text: str, limit: int = 80) -> str:
    """Text as a short JSON string literal, for feedback."""
    return json.dumps(one_line(text, limit), ensure_ascii=False)


def _clamp(reward: Any) -> float:
    """A float in [0, 1]; NaN counts as 0 so it cannot poison averages."""
    value = float(reward)
    if math.isnan(value):
        return 0.0
    return min(1.0, max(0.0, value))


@dataclass(frozen=True)
class Verdict:
    """A reward in [0, 1] plus one line of feedback saying why."""

    reward: float
    feedback: str

    def __post_init__(self) -> None:
        # Normalise here so every Verdict, including ones built by user code, keeps the invariants.
        object.__setattr__(self, "reward", _clamp(self.reward))
        object.__setattr__(self, "feedback", one_line(self.feedback))
