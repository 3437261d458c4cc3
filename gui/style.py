"""Shared look: reward colours and role colours (number formats come from lessonlab.core.formatting)."""
from __future__ import annotations

from PySide6.QtGui import QColor


def reward_color(reward: float | None) -> QColor:
    """Red (0) through amber to green (1); grey for no reward (an error)."""
    if reward is None:
        return QColor("#9e9e9e")
    r = max(0.0, min(1.0, float(reward)))
    # hue 0 (red) → 120 (green); keep saturation/lightness readable under white text
    return QColor.fromHsl(int(120 * r), 170, 105)


ROLE_COLORS = {
    "system": "#6a5acd",
    "user": "#1565c0",
    "assistant": "#2e7d32",
    "tool": "#8d6e63",
}
