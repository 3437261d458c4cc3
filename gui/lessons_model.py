"""The Lessons page's table model: lesson ids up front, rows fetched a page at a time, impact filled in later."""
from __future__ import annotations

from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from lessonlab.core import formatting
from lessonlab.core import lessons as L
from lessonlab.core.storage.workspace import Workspace

from .table_models import PAGE, _Index, _ReadOnlyTable

STATUS_COLORS = {"active": "#2e7d32", "proposed": "#ef6c00", "retired": "#757575", "rejected": "#c62828"}
PENDING = "…"   # shown until the impact figures arrive from their background job


class LessonsModel(_ReadOnlyTable):
    """Lessons in prompt order, filtered by status and scope; uses and impact come from `set_impacts`."""

    COLUMNS = [("text", "Lesson"), ("status", "Status"), ("scope", "Scope"), ("origin", "Origin"),
               ("tokens", "Tokens"), ("uses", "Used in"), ("impact", "Impact (lift ± 95% CI)"),
               ("ablation", "Last ablation")]
    NUMERIC = {"tokens", "uses"}
    LessonIdRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, ws: Workspace, parent=None):
        super().__init__(parent)
        self.ws = ws
        self._ids: list[str] = []
        self._shown = 0
        self._cache: dict[str, L.Lesson] = {}
        self.impacts: dict | None = None     # lesson id -> core.impact.LessonImpact, once loaded
        self.statuses: tuple[str, ...] | None = ("active", "proposed")
        self.suite: str | None = None
        self.unscoped_only = False
        self._busy = False   # a reset or an insertion is being announced: no nested fetching
        self.reload()

    # --- loading -------------------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the matching ids (after a change or a new filter)."""
        self.beginResetModel()
        self._ids = L.lesson_ids(self.ws, statuses=self.statuses, suite=self.suite, unscoped_only=self.unscoped_only)
        self._shown = min(PAGE, len(self._ids))
        self._cache.clear()
        # Views (and the model tester) react to modelReset by fetching more while the signal is still
        # being delivered; rows inserted then would nest inside the reset, so none are until it is over.
        self._busy = True
        try:
            self.endResetModel()
        finally:
            self._busy = False

    def set_filter(self, statuses: tuple[str, ...] | None, suite: str | None = None, unscoped_only: bool = False) -> None:
        """Only lessons with these statuses (None: all) that a run of suite sees (or only unscoped ones)."""
        self.statuses, self.suite, self.unscoped_only = statuses, suite, unscoped_only
        self.reload()

    def set_impacts(self, impacts: dict | None) -> None:
        """Use these impact figures (None: not loaded yet) for the uses, impact and ablation columns."""
        self.impacts = impacts
        if self._shown:
            first = [key for key, _ in self.COLUMNS].index("uses")
            self.dataChanged.emit(self.index(0, first), self.index(self._shown - 1, len(self.COLUMNS) - 1))

    def total(self) -> int:
        """How many lessons match the filter (rows may not all be fetched yet)."""
        return len(self._ids)

    def lesson_id(self, row: int) -> str:
        """The id of the lesson on row."""
        return self._ids[row]

    def row_of(self, lesson_id: str) -> int:
        """The row of lesson_id, fetching rows up to it; -1 when it does not match the filter."""
        try:
            row = self._ids.index(lesson_id)
        except ValueError:
            return -1
        while row >= self._shown and self.canFetchMore():
            self.fetchMore()
        return row

    def lesson(self, row: int) -> L.Lesson | None:
        """The lesson on row (fetched with its page)."""
        lesson_id = self._ids[row]
        lesson = self._cache.get(lesson_id)
        if lesson is None:
            start = row - row % PAGE
            if len(self._cache) > 20 * PAGE:
                self._cache.clear()  # bounded memory however far one scrolls
            self._cache.update(L.lessons_by_ids(self.ws, self._ids[start:start + PAGE]))
            lesson = self._cache.get(lesson_id)
        return lesson

    # --- Qt model API ----------------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else self._shown

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:
        return not parent.isValid() and not self._busy and self._shown < len(self._ids)

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:
        if parent.isValid() or self._busy:
            return
        extra = min(PAGE, len(self._ids) - self._shown)
        if extra <= 0:
            return
        self._busy = True  # listeners of rowsAboutToBeInserted may ask for more: not until these are in
        try:
            self.beginInsertRows(QModelIndex(), self._shown, self._shown + extra - 1)
            self._shown += extra
            self.endInsertRows()
        finally:
            self._busy = False

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not (0 <= index.row() < self._shown) or not (0 <= index.column() < len(self.COLUMNS)):
            return None
        if role == self.LessonIdRole:
            return self._ids[index.row()]
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.ForegroundRole,
                        Qt.ItemDataRole.TextAlignmentRole):
            return None
        key = self.COLUMNS[index.column()][0]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter) if key in self.NUMERIC else None
        lesson = self.lesson(index.row())
        if lesson is None:  # deleted under us; a reload will drop it
            return None
        impact = self.impacts.get(lesson.id) if self.impacts is not None else None
        if role == Qt.ItemDataRole.ForegroundRole:
            if key == "status":
                return QBrush(QColor(STATUS_COLORS.get(lesson.status, "#333")))
            if key == "impact" and impact is not None and impact.observational.enough_data:
                lift = impact.observational
                if lift.ci_low is not None and lift.ci_low > 0:
                    return QBrush(QColor("#2e7d32"))
                if lift.ci_high is not None and lift.ci_high < 0:
                    return QBrush(QColor("#c62828"))
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(lesson, key, impact)
        return self._display(lesson, key, impact)

    def _display(self, lesson: L.Lesson, key: str, impact):
        if key == "text":
            return formatting.one_line(lesson.text, 120)
        if key == "status":
            return lesson.status
        if key == "scope":
            return formatting.scope(lesson.scope)
        if key == "origin":
            return "by hand" if lesson.origin == L.HUMAN else (lesson.reflection_id or "reflection")
        if key == "tokens":
            return lesson.tokens
        if self.impacts is None:
            return PENDING
        if key == "uses":
            return impact.rollouts_with if impact else 0
        if key == "impact":
            return formatting.lift(impact.observational, confounded=bool(impact.confounded_with)) if impact else formatting.DASH
        if key == "ablation":
            return formatting.ablation(impact.latest_ablation) if impact else formatting.DASH
        return None

    @staticmethod
    def _tooltip(lesson: L.Lesson, key: str, impact) -> str:
        if key == "uses":
            return "scored rollouts whose system prompt held this lesson (any version)"
        if key == "impact" and impact is not None:
            lift = impact.observational
            note = lift.describe()
            if impact.confounded_with:
                note += "\n* confounded: came and went together with " + ", ".join(impact.confounded_with)
            return note + "\nlift = mean over (task, model) of reward with − without the lesson"
        if key == "ablation" and impact is not None and impact.latest_ablation:
            row = impact.latest_ablation
            return f"ablation {row['id']} on {row['suite']} ({row['split']}): runs {row['run_with']} vs {row['run_without']}"
        return f"{lesson.id} v{lesson.version} · ~{lesson.tokens} tokens (estimate)\n\n{lesson.text}"
