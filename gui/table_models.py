"""Qt item models over core queries: they hold ids and fetch rows lazily, page by page."""
from __future__ import annotations

import logging

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor

from lessonlab.core import formatting

from lessonlab.core.runs import queries
from lessonlab.core.storage.workspace import Workspace

from .style import reward_color

log = logging.getLogger("lessonlab.gui.table_models")

PAGE = 200
_Index = QModelIndex | QPersistentModelIndex


class _ReadOnlyTable(QAbstractTableModel):
    """Shared read-only behaviour: headers from COLUMNS, selectable flat rows."""

    COLUMNS: list[tuple[str, str]] = []

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole:
            if orientation == Qt.Orientation.Horizontal and 0 <= section < len(self.COLUMNS):
                return self.COLUMNS[section][1]
            if orientation == Qt.Orientation.Vertical:
                return section + 1
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemNeverHasChildren


class RunsModel(_ReadOnlyTable):
    """Runs, newest first by default: all matching ids up front (cheap), row data fetched a page at a time."""

    COLUMNS = [
        ("suite", "Suite"), ("model", "Model"), ("snapshot", "Snapshot"), ("samples", "Samples"),
        ("rollouts", "Rollouts"), ("mean_reward", "Mean reward"), ("errors", "Errors"),
        ("status", "Status"), ("started", "Started"),
    ]
    SORTABLE = {"suite", "model", "snapshot", "samples", "mean_reward", "errors", "status", "started"}
    RunIdRole = Qt.ItemDataRole.UserRole + 1

    def __init__(self, ws: Workspace, parent=None):
        super().__init__(parent)
        self.ws = ws
        self._ids: list[str] = []
        self._shown = 0
        self._cache: dict[str, dict] = {}
        self._filter = ""
        self._sort = "started"
        self._descending = True
        self.reload()

    # --- loading -------------------------------------------------------------------------------

    def reload(self) -> None:
        """Re-read the matching ids (after a new run, a filter or a sort)."""
        self.beginResetModel()
        self._ids = queries.run_ids(self.ws, text=self._filter or None, sort=self._sort, descending=self._descending)
        self._shown = min(PAGE, len(self._ids))
        self._cache.clear()
        self.endResetModel()

    def set_filter(self, text: str) -> None:
        """Only runs whose suite, model, endpoint, status or id contains text."""
        self._filter = text.strip()
        self.reload()

    def total(self) -> int:
        """Number of runs matching the filter (rows may not all be fetched yet)."""
        return len(self._ids)

    def run_id(self, row: int) -> str:
        """The id of the run on row."""
        return self._ids[row]

    def has_run(self, run_id: str) -> bool:
        """Whether run_id matches the current filter (fetched or not)."""
        return run_id in self._ids

    def row_of(self, run_id: str) -> int:
        """The row showing run_id, or -1 when it is not fetched (or not matching)."""
        try:
            row = self._ids.index(run_id)
        except ValueError:
            return -1
        return row if row < self._shown else -1

    def refresh_all(self) -> None:
        """Re-read every shown run's row (another process changed their counters)."""
        self._cache.clear()
        if self._shown:
            self.dataChanged.emit(self.index(0, 0), self.index(self._shown - 1, self.columnCount() - 1))

    def refresh_run(self, run_id: str) -> None:
        """Re-read one run's row (its counters changed)."""
        self._cache.pop(run_id, None)
        row = self.row_of(run_id)
        if row >= 0:
            self.dataChanged.emit(self.index(row, 0), self.index(row, self.columnCount() - 1))

    def _row(self, row: int) -> dict | None:
        run_id = self._ids[row]
        data = self._cache.get(run_id)
        if data is None:
            start = row - row % PAGE
            page = self._ids[start:start + PAGE]
            if len(self._cache) > 20 * PAGE:
                self._cache.clear()  # bounded memory however far one scrolls
            self._cache.update(queries.runs_by_ids(self.ws, page))
            data = self._cache.get(run_id)
        return data

    # --- Qt model API --------------------------------------------------------------------------

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else self._shown

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:
        return not parent.isValid() and self._shown < len(self._ids)

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:
        if parent.isValid():
            return
        extra = min(PAGE, len(self._ids) - self._shown)
        if extra <= 0:
            return
        self.beginInsertRows(QModelIndex(), self._shown, self._shown + extra - 1)
        self._shown += extra
        self.endInsertRows()

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not (0 <= index.row() < self._shown) or not (0 <= index.column() < len(self.COLUMNS)):
            return None
        if role == self.RunIdRole:
            return self._ids[index.row()]
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.BackgroundRole,
                        Qt.ItemDataRole.ForegroundRole, Qt.ItemDataRole.TextAlignmentRole):
            return None
        run = self._row(index.row())
        if run is None:  # deleted under us; a reload will drop it
            return None
        key = self.COLUMNS[index.column()][0]
        if role == Qt.ItemDataRole.TextAlignmentRole:
            if key in ("samples", "rollouts", "mean_reward", "errors"):
                return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            return None
        if role == Qt.ItemDataRole.BackgroundRole:
            if key == "mean_reward" and run["mean_reward"] is not None:
                return QBrush(reward_color(run["mean_reward"]))
            return None
        if role == Qt.ItemDataRole.ForegroundRole:
            if key == "mean_reward" and run["mean_reward"] is not None:
                return QBrush(QColor("white"))
            if key == "errors" and run["n_errors"]:
                return QBrush(QColor("#c62828"))
            return None
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{run['id']} — endpoint {run['endpoint']}"
        return self._display(run, key)

    @staticmethod
    def _display(run: dict, key: str):
        if key == "suite":
            return f"{run['suite']} ({run['split']})"
        if key == "model":
            return run["server_model"] or run["model"] or run["endpoint"]
        if key == "snapshot":
            return run["snapshot_id"]
        if key == "samples":
            return run["samples"]
        if key == "rollouts":
            return f"{run['n_done']}/{run['n_planned']}"
        if key == "mean_reward":
            return formatting.reward(run["mean_reward"])
        if key == "errors":
            return run["n_errors"]
        if key == "status":
            return run["status"]
        if key == "started":
            return (run["created_at"] or "").replace("T", " ")[:19]
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        key = self.COLUMNS[column][0] if 0 <= column < len(self.COLUMNS) else "started"
        if key not in self.SORTABLE:
            key = "samples" if key == "rollouts" else "started"
        self._sort = key
        self._descending = order == Qt.SortOrder.DescendingOrder
        self.reload()  # the database sorts: rows not fetched yet must sort too


class RolloutsModel(_ReadOnlyTable):
    """The rollouts of one run in the order they finished; keyset pages, new ones appended while it runs."""

    COLUMNS = [("task", "Task"), ("sample_index", "Sample"), ("reward", "Reward"), ("status", "Status"),
               ("verdict", "Feedback / error"), ("completion_tokens", "Tokens"), ("latency_ms", "Latency")]
    RolloutIdRole = Qt.ItemDataRole.UserRole + 1
    TaskIdRole = Qt.ItemDataRole.UserRole + 2

    def __init__(self, ws: Workspace, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.run_id: str | None = None
        self._rows: list[dict] = []
        self._maybe_more = False

    def set_run(self, run_id: str | None) -> None:
        """Show the rollouts of run_id (None: empty)."""
        self.beginResetModel()
        self.run_id = run_id
        self._rows = []
        self._maybe_more = run_id is not None
        self.endResetModel()
        if run_id is not None:
            self.fetchMore()

    def _next_page(self) -> list[dict]:
        after = self._rows[-1]["rowid"] if self._rows else 0
        return queries.run_rollout_page(self.ws, self.run_id, after_rowid=after, limit=PAGE)

    def poll_new(self) -> int:
        """Append rollouts stored since the last fetch (live runs); return how many arrived."""
        if self.run_id is None or self._maybe_more:
            return 0  # not at the end yet: fetchMore will reach them as the user scrolls
        page = self._next_page()
        self._append(page)
        return len(page)

    def row_data(self, row: int) -> dict | None:
        """The summary row shown at `row` (id, task, status, reward, …), or None."""
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def refresh_loaded(self, limit: int = 2000) -> None:
        """Re-read the rows loaded so far (a reward given, a proxied conversation that grew); small runs only."""
        if self.run_id is None or not self._rows or len(self._rows) > limit:
            return
        fresh = {r["id"]: r for r in queries.run_rollout_page(self.ws, self.run_id, after_rowid=0,
                                                                limit=len(self._rows))}
        self._rows = [fresh.get(r["id"], r) for r in self._rows]
        self.dataChanged.emit(self.index(0, 0), self.index(len(self._rows) - 1, len(self.COLUMNS) - 1))

    def _append(self, page: list[dict]) -> None:
        if page:
            self.beginInsertRows(QModelIndex(), len(self._rows), len(self._rows) + len(page) - 1)
            self._rows.extend(page)
            self.endInsertRows()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.COLUMNS)

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:
        return not parent.isValid() and self._maybe_more

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:
        if parent.isValid() or not self._maybe_more:
            return
        page = self._next_page()
        self._maybe_more = len(page) == PAGE
        self._append(page)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or not (0 <= index.row() < len(self._rows)) or not (0 <= index.column() < len(self.COLUMNS)):
            return None
        row = self._rows[index.row()]
        key = self.COLUMNS[index.column()][0]
        if role == self.RolloutIdRole:
            return row["id"]
        if role == self.TaskIdRole:
            return row["task_id"]
        if role == Qt.ItemDataRole.BackgroundRole:
            return QBrush(reward_color(row["reward"])) if key == "reward" else None
        if role == Qt.ItemDataRole.ForegroundRole:
            return QBrush(QColor("white")) if key == "reward" else None
        if role not in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole):
            return None
        if key == "reward":
            return formatting.reward_label(row["reward"], row["status"])
        if key == "verdict":
            text = row["feedback"] if row["status"] == "ok" else f"ERROR: {row['error']}"
            return (text or "").replace("\n", " ")[:300]
        if key == "latency_ms":
            return formatting.seconds(row["latency_ms"])
        value = row[key]
        return "" if value is None else value
