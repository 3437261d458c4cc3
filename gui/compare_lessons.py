"""Which lessons each rollout on the Compare page saw, and grouping a task's rollouts with and without one lesson."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QFrame, QLabel, QListWidget, QListWidgetItem, QVBoxLayout

from lessonlab.core import formatting

from .style import reward_color

HEADER_WIDTH = 130
ROWS_SHOWN = 4           # a column's lessons list shows this many lines, then scrolls
WITH_COLOR = "#1565c0"
WITHOUT_COLOR = "#757575"


def lesson_label(lesson: dict) -> str:
    """'les_ab12 v2 · Spell the word…' (id, version, short text)."""
    return f"{lesson['lesson_id']} v{lesson['version']} · {formatting.one_line(lesson['text'], 48)}"


class LessonsList(QListWidget):
    """The lessons in one rollout's prompt, in prompt order: id, version and short text; the full text on hover."""

    def __init__(self, lessons: list[dict], parent=None):
        super().__init__(parent)
        self.setObjectName("columnLessons")
        self.lesson_ids = [lesson["lesson_id"] for lesson in lessons]
        self.setSelectionMode(QListWidget.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        # Long lines are cut with an ellipsis (the full text is on hover): a horizontal scroll bar
        # would cover the one row a column has room for.
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setStyleSheet("QListWidget { background:#f5f8fc; border:1px solid #d5deea; font-size:11px; }")
        for lesson in lessons:
            item = QListWidgetItem(lesson_label(lesson))
            item.setData(Qt.ItemDataRole.UserRole, lesson["lesson_id"])
            item.setToolTip(f"{lesson['lesson_id']} version {lesson['version']} ({lesson.get('status', '?')} now)\n\n"
                            f"{lesson['text']}")
            self.addItem(item)
        if not lessons:
            item = QListWidgetItem("no lessons in its prompt")
            item.setForeground(QBrush(QColor("#888")))
            self.addItem(item)
        rows = max(1, min(ROWS_SHOWN, len(lessons)))
        self.setFixedHeight(rows * (self.fontMetrics().height() + 4) + 6)

    def texts(self) -> list[str]:
        """The lines shown (for tests and screenshots)."""
        return [self.item(i).text() for i in range(self.count())]


def lesson_choices(rollouts: list[dict]) -> list[dict]:
    """The lessons any of these rollouts saw (latest version seen), in order of first appearance."""
    seen: dict[str, dict] = {}
    for rollout in rollouts:
        for lesson in rollout.get("lessons") or []:
            if lesson["lesson_id"] not in seen or lesson["version"] > seen[lesson["lesson_id"]]["version"]:
                seen[lesson["lesson_id"]] = lesson
    return list(seen.values())


class GroupHeader(QFrame):
    """The head of one group of columns: with or without a lesson, how many rollouts and their mean reward."""

    def __init__(self, lesson_id: str, has_lesson: bool, rewards: list[float | None], parent=None):
        super().__init__(parent)
        self.setObjectName("lessonGroupHeader")
        self.has_lesson = has_lesson
        self.setFixedWidth(HEADER_WIDTH)
        color = WITH_COLOR if has_lesson else WITHOUT_COLOR
        self.setStyleSheet(f"#lessonGroupHeader {{ border-left: 5px solid {color}; background: #fafafa; }}")
        scored = [r for r in rewards if r is not None]
        mean = sum(scored) / len(scored) if scored else None
        title = QLabel(("With " if has_lesson else "Without ") + lesson_id)
        title.setWordWrap(True)
        title.setStyleSheet(f"font-weight:bold;color:{color}")
        count = len(rewards)
        body = QLabel(f"{count} rollout{'s' if count != 1 else ''}" if count else "no rollouts of this task")
        self.mean_label = QLabel(f"mean reward\n{formatting.reward(mean)}" if mean is not None else "")
        self.mean_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        if mean is not None:
            self.mean_label.setStyleSheet(f"background:{reward_color(mean).name()};color:white;font-weight:bold;"
                                          "border-radius:4px;padding:4px")
        self.mean = mean
        self.count = count
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 6, 6)
        layout.addWidget(title)
        layout.addWidget(body)
        layout.addWidget(self.mean_label)
        layout.addStretch(1)
