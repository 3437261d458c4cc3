"""File → Import…: Inspect AI logs and chat JSONL imported in the background, with progress and cancel."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QFileDialog, QProgressDialog, QWidget

from lessonlab.core.transfer import ImportOptions, ImportReport, import_files
from lessonlab.core.storage.workspace import open_workspace

from .changes import Changes
from .errors import show_error
from .operations import changes_result
from .perform import perform_in_background
from .workers import Job

FILE_FILTER = "Inspect logs and chat JSONL (*.eval *.json *.jsonl);;All files (*)"
STEPS = 1000


@changes_result(ImportReport)
def import_job(job, workspace_path: Path, paths: list[str], options: ImportOptions) -> ImportReport:
    """Import the files on a worker thread (its own connection), reporting (done, total) bytes."""
    ws = open_workspace(workspace_path)
    try:
        return import_files(ws, paths, options, progress=lambda done, total: job.progress((done, total)),
                            cancel=job.cancel)
    finally:
        ws.close()


def summary(report: ImportReport) -> str:
    """One line for the status bar: what came in."""
    new = sum(f.new for f in report.files)
    runs = {f.run_id for f in report.files if f.new}
    text = f"Imported {new} rollout(s) into {len(runs)} run(s) from {len(report.files)} file(s)"
    skipped = sum(f.existing for f in report.files)
    if skipped:
        text += f"; {skipped} were already here"
    return text + ("; cancelled, the file in progress was not imported" if report.cancelled else "")


class Importer(QObject):
    """Asks for files, imports them with a progress dialog (Cancel stops it cleanly), reports the result."""

    finished = Signal(object)   # ImportReport

    def __init__(self, parent: QWidget, changes: Changes):
        super().__init__(parent)
        self.parent_widget = parent
        self.changes = changes
        self.job: Job | None = None
        self.dialog: QProgressDialog | None = None

    def choose_and_import(self, workspace_path: Path) -> Job | None:
        """Ask for one or more files, then import them."""
        paths, _ = QFileDialog.getOpenFileNames(self.parent_widget, "Import rollouts", str(Path.home()), FILE_FILTER)
        return self.start(workspace_path, paths) if paths else None

    def start(self, workspace_path: Path, paths: list[str], options: ImportOptions | None = None) -> Job | None:
        """Import paths into the workspace in the background."""
        if self.job is not None:
            show_error(self.parent_widget, "An import is in progress", "Wait for it to finish or cancel it first.")
            return None
        self.dialog = QProgressDialog("Importing…", "Cancel", 0, STEPS, self.parent_widget)
        self.dialog.setWindowTitle("Import")
        self.dialog.setWindowModality(Qt.WindowModality.WindowModal)
        self.dialog.setMinimumDuration(300)
        self.dialog.setAutoClose(False)
        self.dialog.setAutoReset(False)
        self.job = perform_in_background(self, self.changes, "import", import_job, Path(workspace_path),
                                         [str(p) for p in paths], options or ImportOptions(),
                                         on_progress=self._progress, on_done=self._done, on_failed=self._failed)
        self.dialog.canceled.connect(self.job.cancel.set)
        return self.job

    def _progress(self, value) -> None:
        done, total = value
        if self.dialog is not None:
            self.dialog.setValue(int(STEPS * done / max(total, 1)))

    def _close_dialog(self) -> None:
        self.job = None
        if self.dialog is not None:
            self.dialog.canceled.disconnect()
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None

    def _done(self, report: ImportReport) -> None:
        self._close_dialog()
        self.finished.emit(report)

    def _failed(self, exc: BaseException) -> None:
        self._close_dialog()
