"""Trajectories side by side on the Compare page: rows lined up step by step, the first parting step marked.

Each column's blocks (its head, its prompt, then step 1, 2, …) get the height of the tallest block of that
row in any column, so step 4 of one rollout sits beside step 4 of the next. Where a column first calls
another tool or passes other arguments than the first column, both are marked.
"""
from __future__ import annotations

from PySide6.QtCore import QObject, QTimer

from lessonlab.core.runs.trajectory_text import first_parting_of_signatures

from .rollout_column import RolloutColumn


def natural_height(widget) -> int:
    """The height a widget needs at its width (word-wrapped text included)."""
    if widget.hasHeightForWidth():
        return widget.heightForWidth(widget.width())
    return widget.sizeHint().height()


class StepAligner(QObject):
    """Keeps the shown trajectory columns lined up; re-aligns (once per event loop turn) whenever one grows."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.columns: list[RolloutColumn] = []
        self._timer = QTimer(self, singleShot=True, interval=0)
        self._timer.timeout.connect(self.align)

    def set_columns(self, columns: list[RolloutColumn]) -> None:
        """The columns shown, in order: mark where each trajectory parts from the first, and line them up."""
        self.columns = list(columns)
        self.mark_partings()
        self.schedule()

    def schedule(self) -> None:
        """Align soon (many growths in one turn of the event loop cost one pass)."""
        self._timer.start()

    def trajectory_columns(self) -> list[RolloutColumn]:
        """The shown columns that draw steps."""
        return [c for c in self.columns if c.trajectory is not None]

    def mark_partings(self) -> None:
        """Mark in each trajectory column the step where it parts from the first one, and that step in the first."""
        columns = self.trajectory_columns()
        for column in columns:
            column.set_parting(None)
        if len(columns) < 2:
            return
        reference, partings = columns[0], []
        for column in columns[1:]:
            # signatures come from the loading job: comparing them here costs no JSON work on the GUI thread
            index = first_parting_of_signatures(reference.trajectory.signatures, column.trajectory.signatures)
            if index is not None:
                column.set_parting(index, f"parts from {reference.rollout['id']} here")
                partings.append(index)
        if len(columns) == 2 and partings:
            reference.set_parting(partings[0], f"parts from {columns[1].rollout['id']} here")
        elif partings:
            first = min(partings)
            reference.set_parting(first, f"{partings.count(first)} of the other columns part from this one here")

    def align(self) -> None:
        """Give each row (head, prompt, step n) the height of its tallest block among the trajectory columns."""
        columns = [c for c in self.trajectory_columns() if c.trajectory_view is not None]
        for column in self.columns:
            column.head.setMinimumHeight(0)
        if not columns:
            return
        head = max(natural_height(c.head) for c in columns)
        rows: list[float] = []
        for column in columns:
            column.head.setMinimumHeight(head)
            for i, height in enumerate(column.trajectory_view.step_heights()):
                if i < len(rows):
                    rows[i] = max(rows[i], height)
                else:
                    rows.append(height)
        for column in columns:
            column.trajectory_view.pad_rows(rows)
