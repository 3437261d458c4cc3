"""Scoring by hand from the keyboard: `1` / `0` (or `.` to type a number) on an unscored rollout opens a
line with the reward and a line of feedback; Enter scores it through the core's `score_rollout`."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from PySide6.QtCore import QEvent, QObject, Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QLineEdit, QPushButton, QWidget

from lessonlab.core.runs.scoring import check_reward

from . import operations
from .changes import Changes
from .errors import show_exception
from .perform import perform_in_background

# Keys that start scoring, and the reward text each puts in the line.
START_KEYS = {Qt.Key.Key_1: "1", Qt.Key.Key_0: "0", Qt.Key.Key_Period: "0."}


class ScoreBar(QFrame):
    """Reward and feedback for one rollout; Enter scores, Esc closes. Hidden until a key opens it."""

    scored = Signal(object)   # Scored

    def __init__(self, workspace_path: Path, changes: Changes, parent=None):
        super().__init__(parent)
        self.workspace_path, self.changes = workspace_path, changes
        self.rollout_id: str | None = None
        self.return_focus: QWidget | None = None
        self.setObjectName("scoreBar")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet("#scoreBar { background: #fff8e1; }")
        self.title = QLabel()
        self.reward = QLineEdit()
        self.reward.setObjectName("scoreReward")
        self.reward.setPlaceholderText("0 to 1")
        self.reward.setFixedWidth(70)
        self.feedback = QLineEdit()
        self.feedback.setObjectName("scoreFeedback")
        self.feedback.setPlaceholderText("Feedback (optional): why this reward")
        save = QPushButton("Score")
        save.clicked.connect(self.submit)
        hint = QLabel("Enter scores · Esc cancels")
        hint.setStyleSheet("color: #777")
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 3, 6, 3)
        for widget, stretch in ((self.title, 0), (QLabel("reward"), 0), (self.reward, 0), (self.feedback, 1),
                                (save, 0), (hint, 0)):
            row.addWidget(widget, stretch)
        for line in (self.reward, self.feedback):
            line.returnPressed.connect(self.submit)
            line.installEventFilter(self)
        self.hide()

    def begin(self, rollout_id: str, reward_text: str = "", return_focus: QWidget | None = None) -> None:
        """Open the line for rollout_id with the reward typed so far; the cursor goes where typing continues."""
        self.rollout_id, self.return_focus = rollout_id, return_focus
        self.title.setText(f"Score {rollout_id}:")
        self.reward.setText(reward_text)
        self.feedback.clear()
        self.show()
        target = self.feedback if reward_text in ("0", "1") else self.reward
        target.setFocus()
        target.end(False)

    def cancel(self) -> None:
        """Close without scoring."""
        self.hide()
        if self.return_focus is not None:
            self.return_focus.setFocus()

    def submit(self):
        """Score the rollout in the background; a bad reward is a dialog and the line stays open."""
        if self.rollout_id is None:
            return None
        try:
            reward = check_reward(self.reward.text().strip())
        except Exception as exc:  # noqa: BLE001 - the one error path (BadInput: a dialog)
            show_exception(self, "Cannot score this rollout", exc)
            return None
        rollout_id, feedback = self.rollout_id, self.feedback.text().strip() or None
        self.cancel()
        return perform_in_background(self, self.changes, "score", operations.score, self.workspace_path, rollout_id,
                                     reward, feedback, on_done=self.scored.emit,
                                     error_title="Cannot score this rollout")

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape:
            self.cancel()
            return True
        return super().eventFilter(watched, event)


class ScoreKeys(QObject):
    """Watches a widget for the scoring keys; `target()` names the unscored rollout they apply to (or None)."""

    def __init__(self, watched: QWidget, bar: ScoreBar, target: Callable[[], str | None]):
        super().__init__(watched)
        self.watched, self.bar, self.target = watched, bar, target
        watched.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt override
        if event.type() != QEvent.Type.KeyPress or event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            return False
        text = START_KEYS.get(Qt.Key(event.key()))
        if text is None:
            return False
        rollout_id = self.target()
        if rollout_id is None:
            return False
        self.bar.begin(rollout_id, text, return_focus=self.watched)
        return True


def is_unscored(row: dict) -> bool:
    """An answered rollout without a reward (the proxy's, until someone scores it)."""
    return row.get("status") == "ok" and row.get("reward") is None


def column_target(columns: list, focus: QWidget | None) -> str | None:
    """In Compare: the unscored rollout whose column holds the focus, else (focus elsewhere) the first unscored one."""
    for column in columns:
        if focus is not None and (column is focus or column.isAncestorOf(focus)):
            return column.rollout["id"] if is_unscored(column.rollout) else None
    return next((c.rollout["id"] for c in columns if is_unscored(c.rollout)), None)
