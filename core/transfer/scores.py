"""Score values from other tools as rewards in [0, 1], and the scorer whose value becomes a rollout's reward."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

# Inspect AI's letter grades: correct, incorrect, partial, no answer.
LETTERS = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0}
WORDS = {"yes": 1.0, "true": 1.0, "correct": 1.0, "no": 0.0, "false": 0.0, "incorrect": 0.0}


@dataclass
class Score:
    """One scorer's result on one rollout, kept as it was given."""

    scorer: str
    value: Any
    answer: str | None = None
    explanation: str | None = None
    metadata: dict | None = None
    reward: float | None = None      # the value as a reward; None when it has none (NaN, null, unreadable)


@dataclass
class Conversion:
    """A value as a reward, and what to warn about (clamped, unreadable, averaged)."""

    reward: float | None
    warning: str | None = None


def value_to_reward(value: Any) -> Conversion:
    """C=1, I=0, P=0.5, N=0, booleans, numbers (clamped to [0, 1]); NaN and null are unscored."""
    if value is None:
        return Conversion(None)
    if isinstance(value, bool):
        return Conversion(1.0 if value else 0.0)
    if isinstance(value, (int, float)):
        number = float(value)
        if math.isnan(number):
            return Conversion(None)
        if number < 0.0 or number > 1.0:
            clamped = min(1.0, max(0.0, number))
            return Conversion(clamped, f"value {_show(value)} is outside [0, 1]; clamped to {clamped:g}")
        return Conversion(number)
    if isinstance(value, str):
        text = value.strip()
        if text in LETTERS:
            return Conversion(LETTERS[text])
        if text.lower() in WORDS:
            return Conversion(WORDS[text.lower()])
        try:
            number = float(text)
        except ValueError:
            return Conversion(None, f"value {_show(value)} is not a grade or a number; left unscored")
        return value_to_reward(number)
    if isinstance(value, (list, dict)):
        items = value.values() if isinstance(value, dict) else value
        parts = [value_to_reward(item) for item in items]
        rewards = [part.reward for part in parts if part.reward is not None]
        if not rewards:
            return Conversion(None, f"value {_show(value)} has no readable entry; left unscored")
        mean = sum(rewards) / len(rewards)
        return Conversion(mean, f"value {_show(value)} has several entries; the reward is their mean {mean:g}")
    return Conversion(None, f"value {_show(value)} is not a grade or a number; left unscored")


def _show(value: Any) -> str:
    text = json.dumps(value, default=str, allow_nan=True)
    return text if len(text) <= 60 else text[:59] + "…"


@dataclass
class Warnings:
    """Warnings of one import, counted by kind with the first few examples kept."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, kind: str, example: str) -> None:
        """Count one warning of `kind` (keeping the first three examples)."""
        self.counts[kind] = self.counts.get(kind, 0) + 1
        kept = self.examples.setdefault(kind, [])
        if len(kept) < 3:
            kept.append(example)

    def lines(self) -> list[str]:
        """One line per kind: how many, and the first examples."""
        return [f"{self.counts[kind]} {kind} (e.g. {'; '.join(self.examples[kind])})" for kind in self.counts]


def choose_reward(scores: list[Score], score_name: str | None) -> tuple[Score | None, float | None]:
    """The score that gives the reward (the first one, or the one named) and its reward."""
    if not scores:
        return None, None
    if score_name is None:
        chosen = scores[0]
    else:
        chosen = next((score for score in scores if score.scorer == score_name), None)
        if chosen is None:
            return None, None
    return chosen, chosen.reward


def feedback_of(score: Score | None) -> str | None:
    """The verdict feedback of an imported score: its explanation, else what was graded."""
    if score is None:
        return None
    if score.explanation not in (None, ""):
        return str(score.explanation)
    shown = _show(score.value)
    return f"{score.scorer}: {shown}" + (f" (answer: {score.answer})" if score.answer not in (None, "") else "")


def finite(value: Any) -> Any:
    """The value with every NaN or infinity replaced by None (so stored JSON stays standard JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value
