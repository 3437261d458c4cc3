"""The main window: sidebar of pages, menus, status bar, workspace switching and navigation between pages.

Pages do not call each other: what changed reaches them through the one `changes` notification,
and a page's request to show something elsewhere ("compare this task") comes here to be routed.
"""
from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QMainWindow, QStackedWidget,
    QWidget,
)

from lessonlab.core.errors import damaged_error
from lessonlab.core.paths import config_dir, default_workspace_path
from lessonlab.core.settings import load_settings
from lessonlab.core.storage.integrity import noted_damage
from lessonlab.core.storage.workspace import Workspace, open_workspace

from . import changes as changed
from .changes import Change, Changes
from .endpoints_dialog import EndpointsDialog
from .errors import damage_message, set_workspace_path, show_error, show_exception
from .importing import Importer
from .importing import summary as import_summary
from .local_server import LocalModelController
from .page_registry import PAGES, find_page
from .pages import Navigation, Page, PageContext
from .proxy_control import ProxyController, ProxyDialog
from .recent import add_recent, load_recent
from .workers import cancel_all_and_wait

log = logging.getLogger("lessonlab.gui.window")

# The page classes, imported with this module as a direct import would: not while a window is being
# built or a workspace opened (pyqtgraph alone takes a while), so the first paint waits for no import.
PAGE_CLASSES: dict[str, type[Page]] = {entry.name: entry.load() for entry in PAGES}


def window_settings() -> QSettings:
    """QSettings (window geometry only) in lessonlab's config dir, beside settings.json."""
    return QSettings(str(config_dir() / "window.ini"), QSettings.Format.IniFormat)


class MainWindow(QMainWindow):
    """One workspace at a time; pages are rebuilt when another workspace is opened."""

    def __init__(self, workspace_path: Path | str | None = None, local_controller: LocalModelController | None = None):
        super().__init__()
        self.setWindowTitle("lessonlab")
        self.local_controller = local_controller or LocalModelController(self)
        self.local_controller.state_changed.connect(self._local_state)
        self.changes = Changes(self)
        self.changes.changed.connect(self.on_changed)
        self.navigation = self._build_navigation()
        self.ws: Workspace | None = None
        self.pages: dict[str, Page] = {}
        self._build_status_bar()
        self._build_menus()
        self.sidebar = QListWidget()
        self.sidebar.setObjectName("sidebar")
        self.sidebar.setFixedWidth(130)
        self.sidebar.setStyleSheet("QListWidget { font-size: 14px; } QListWidget::item { padding: 8px; }")
        for i, entry in enumerate(PAGES):
            item = QListWidgetItem(entry.title)
            item.setToolTip(f"{entry.title} (Ctrl+{i + 1})")
            self.sidebar.addItem(item)
        self.stack = QStackedWidget()
        self.sidebar.currentRowChanged.connect(self._page_changed)
        central = QWidget()
        layout = QHBoxLayout(central)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.sidebar)
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)
        self.resize(1280, 800)
        geometry = window_settings().value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self.open_workspace(Path(workspace_path) if workspace_path else default_workspace_path())

    # --- building -------------------------------------------------------------------------------

    def _build_navigation(self) -> Navigation:
        # Pages ask here to show something elsewhere; they never call each other.
        navigation = Navigation(self)
        navigation.go_to.connect(self.go_to)
        navigation.compare_task.connect(self.compare_task)
        navigation.compare_rollouts.connect(self.compare_rollouts)
        navigation.reflect_on_run.connect(self.reflect_on_run)
        navigation.show_run.connect(self.show_run)
        navigation.show_lesson.connect(self.show_lesson)
        return navigation

    def _build_status_bar(self) -> None:
        self.workspace_label = QLabel()
        self.endpoint_label = QLabel()
        self.local_label = QLabel("embedded model: off")
        self.local_label.setObjectName("localModelState")
        bar = self.statusBar()
        bar.addWidget(self.workspace_label, 1)
        bar.addPermanentWidget(self.endpoint_label)
        bar.addPermanentWidget(self.local_label)

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        new = QAction("&New workspace…", self, shortcut=QKeySequence.StandardKey.New)
        new.setShortcut("Ctrl+Shift+N")
        new.triggered.connect(self._new_workspace)
        opn = QAction("&Open workspace…", self, shortcut=QKeySequence.StandardKey.Open)
        opn.triggered.connect(self._open_workspace_dialog)
        file_menu.addAction(new)
        file_menu.addAction(opn)
        self.recent_menu = file_menu.addMenu("Open &recent")
        file_menu.addSeparator()
        import_action = QAction("&Import…", self, shortcut="Ctrl+I")
        import_action.setToolTip("Import Inspect AI logs or chat JSONL, one run per file")
        import_action.triggered.connect(lambda: self.importer.choose_and_import(self.ws.path))
        file_menu.addAction(import_action)
        self.importer = Importer(self, self.changes)
        self.importer.finished.connect(self._imported)
        endpoints = QAction("&Endpoints…", self, shortcut="Ctrl+E")
        endpoints.triggered.connect(self.open_endpoints_dialog)
        file_menu.addAction(endpoints)
        file_menu.addSeparator()
        quit_action = QAction("&Quit", self, shortcut=QKeySequence.StandardKey.Quit)
        quit_action.triggered.connect(self.close)
        file_menu.addAction(quit_action)
        go_menu = self.menuBar().addMenu("&Go")
        for i, entry in enumerate(PAGES):
            action = QAction(entry.title, self, shortcut=f"Ctrl+{i + 1}")
            action.triggered.connect(lambda _c=False, n=entry.name: self.go_to(n))
            go_menu.addAction(action)
            self.addAction(action)
        run_menu = self.menuBar().addMenu("&Run")
        new_run = QAction("&New run…", self)
        new_run.triggered.connect(lambda: self.page("runs").open_new_run_dialog())
        run_menu.addAction(new_run)
        cancel = QAction("&Cancel run", self)
        cancel.triggered.connect(lambda: self.page("runs").cancel_run())
        run_menu.addAction(cancel)
        run_menu.addSeparator()
        proxy = QAction("&Proxy (lessonlab serve)…", self)
        proxy.setToolTip("Start or stop a recording proxy that gives your own agent the lessons")
        proxy.triggered.connect(self.open_proxy_dialog)
        run_menu.addAction(proxy)
        self.proxy = ProxyController(self)

    def open_proxy_dialog(self) -> ProxyDialog:
        """Start or stop the proxy for a chosen endpoint; shows the URL to copy."""
        dialog = ProxyDialog(self.proxy, self.ws.path, self)
        dialog.open()
        return dialog

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in load_recent():
            action = self.recent_menu.addAction(path)
            action.triggered.connect(lambda _c=False, p=path: self.open_workspace(Path(p)))
        self.recent_menu.setEnabled(bool(self.recent_menu.actions()))

    def open_workspace(self, path: Path) -> bool:
        """Open (or create) the workspace at path and rebuild the pages on it."""
        try:
            ws = open_workspace(path)
        except Exception as exc:  # noqa: BLE001 - the one error path
            show_exception(self, "Cannot open the workspace", exc)
            return False
        if self.ws is not None:
            busy = [reason for page in self.pages.values() if (reason := page.busy_reason())]
            if busy:
                ws.close()
                show_error(self, "Work is in progress", busy[0])
                return False
            self._close_pages()
            self.ws.close()
        self.ws = ws
        set_workspace_path(ws.path)
        self._build_pages(PageContext(ws, self.local_controller, self.changes, self.navigation))
        self.workspace_label.setText(f"Workspace: {ws.path}")
        self._update_endpoint_label()
        try:
            add_recent(ws.path)
        except OSError as exc:
            log.warning("cannot save the recent workspaces list: %s", exc)
        self._fill_recent()
        self.setWindowTitle(f"lessonlab — {ws.path.name}")
        self.sidebar.setCurrentRow(0)
        self._page_changed(0)
        self.changes.notify(changed.WORKSPACE)
        cause = noted_damage(ws.path)
        if cause:  # reads still work; say it before the first write is refused
            show_error(self, "The workspace is damaged", damage_message(damaged_error(ws.path, cause)))
        return True

    def _build_pages(self, context: PageContext) -> None:
        for entry in PAGES:
            page = PAGE_CLASSES[entry.name](context)
            self.pages[entry.name] = page
            self.stack.addWidget(page)

    def page(self, name: str) -> Page:
        """The page called (or titled) name."""
        return self.pages[find_page(name).name]

    def _close_pages(self) -> None:
        # Cancel the old pages' background work first: a reflection still streaming must not
        # reach a page that is about to be deleted (its reports are dropped from now on).
        for page in self.pages.values():
            page.close_page()
        while self.stack.count():
            page = self.stack.widget(0)
            self.stack.removeWidget(page)
            page.deleteLater()
        self.pages = {}

    def on_changed(self, change: Change) -> None:
        """Keep the status bar current (the default endpoint)."""
        if changed.ENDPOINTS in change:
            self._update_endpoint_label()

    def _update_endpoint_label(self) -> None:
        try:
            settings = load_settings()
            ep = settings.endpoint(settings.default_endpoint)
            self.endpoint_label.setText(f"Endpoint: {ep.name} ({ep.model})")
        except Exception as exc:  # noqa: BLE001 - shown in the status bar; the dialog path reports it in full
            self.endpoint_label.setText(f"Endpoint: settings problem ({exc})"[:80])

    def _local_state(self, state: str, detail: str) -> None:
        text = {"off": "embedded model: off", "starting": "embedded model: starting…",
                "running": "embedded model: running", "failed": "embedded model: failed"}[state]
        self.local_label.setText(text)
        self.local_label.setToolTip(detail)
        color = {"running": "#2e7d32", "starting": "#ef6c00", "failed": "#c62828"}.get(state, "#555")
        self.local_label.setStyleSheet(f"color:{color}")

    # --- navigation -------------------------------------------------------------------------------

    def go_to(self, name: str) -> None:
        """Show the page called name (case-insensitive)."""
        self.sidebar.setCurrentRow(PAGES.index(find_page(name)))

    def current_page_name(self) -> str:
        """The title of the page on screen."""
        return PAGES[self.stack.currentIndex()].title

    def _page_changed(self, row: int) -> None:
        if row < 0 or row >= self.stack.count():
            return
        self.stack.setCurrentIndex(row)
        self.stack.widget(row).page_shown()  # a page loads what it shows when it first comes on screen

    def compare_task(self, task_id: str, run_ids: list) -> None:
        """Open task_id's rollouts (from run_ids) on the Compare page."""
        self.go_to("Compare")
        self.page("compare").show_task(task_id, list(run_ids))

    def show_run(self, run_id: str) -> None:
        """Open run_id on the Runs page (selected, its rollouts below)."""
        self.go_to("Runs")
        self.page("runs").show_run(run_id)

    def compare_rollouts(self, rollout_ids: list) -> None:
        """Open exactly these rollouts (a proposal's evidence) side by side on the Compare page."""
        self.go_to("Compare")
        self.page("compare").show_rollouts(list(rollout_ids))

    def show_lesson(self, lesson_id: str) -> None:
        """Show one lesson (its history and provenance) on the Lessons page."""
        self.go_to("Lessons")
        self.page("lessons").select_lesson(lesson_id)

    def reflect_on_run(self, run_id: str) -> None:
        """Reflect on a whole run in the Compare page's reflection panel."""
        self.go_to("Compare")
        self.page("compare").reflect(run_id=run_id)

    def _imported(self, report) -> None:
        """Say what an import brought in (the pages have refreshed from its change notice); show the first new run."""
        self.statusBar().showMessage(import_summary(report), 15000)
        new_runs = [f.run_id for f in report.files if f.new]
        if new_runs:
            self.go_to("Runs")
            self.page("runs").select_run(new_runs[0])

    # --- dialogs ------------------------------------------------------------------------------------

    def _new_workspace(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "New workspace", str(Path.home() / "workspace.db"),
                                              "lessonlab workspaces (*.db);;All files (*)")
        if path:
            self.open_workspace(Path(path))

    def _open_workspace_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open workspace", str(Path.home()),
                                              "lessonlab workspaces (*.db);;All files (*)")
        if path:
            self.open_workspace(Path(path))

    def open_endpoints_dialog(self) -> EndpointsDialog:
        """Open the Endpoints dialog (non-blocking); what it saves reaches the pages as an "endpoints" change."""
        dialog = EndpointsDialog(self, self.local_controller, self.changes)
        dialog.open()
        return dialog

    # --- quitting -------------------------------------------------------------------------------------

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        window_settings().setValue("window/geometry", self.saveGeometry())
        self.shutdown()
        super().closeEvent(event)

    def shutdown(self) -> None:
        """Cancel background work, stop the embedded model, close the workspace."""
        if not cancel_all_and_wait(20000):
            log.warning("some background work did not stop in time")
        self.local_controller.stop()
        self.proxy.stop()
        for page in self.pages.values():
            page.close_page()   # no poll or job may reach the workspace being closed
        if self.ws is not None:
            self.ws.close()
            self.ws = None
            set_workspace_path(None)
