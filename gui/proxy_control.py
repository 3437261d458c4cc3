"""Run → Proxy: start and stop a `lessonlab serve` child process for a chosen endpoint and show its URL to copy."""
from __future__ import annotations

import re
import sys
from pathlib import Path

from PySide6.QtCore import QObject, QProcess, Signal
from PySide6.QtWidgets import (
    QApplication, QComboBox, QDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox,
    QVBoxLayout,
)

from lessonlab.core.settings import load_settings

READY_LINE = re.compile(r"^serving (\S+) → ")


class ProxyController(QObject):
    """One proxy child process at a time; `url` is set once it prints its ready line."""

    started = Signal(str)        # the URL clients use
    stopped = Signal(int, str)   # exit code, the last lines it wrote on stderr

    def __init__(self, parent=None):
        super().__init__(parent)
        self.process: QProcess | None = None
        self.url: str | None = None
        self._stdout = b""
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop)

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.state() != QProcess.ProcessState.NotRunning

    def command(self, workspace_path: Path, endpoint: str, port: int, suite: str | None) -> list[str]:
        """The serve command line (arguments after the program)."""
        args = ["-m", "lessonlab", "serve", "--endpoint", endpoint, "--port", str(port), "-w", str(workspace_path)]
        return args + (["--suite", suite] if suite else [])

    def start(self, workspace_path: Path, endpoint: str, port: int = 0, suite: str | None = None) -> None:
        """Start the proxy (stopping one already running)."""
        self.stop()
        self.url, self._stdout = None, b""
        process = QProcess(self)
        process.readyReadStandardOutput.connect(self._read_stdout)
        process.finished.connect(self._finished)
        self.process = process
        process.start(sys.executable, self.command(workspace_path, endpoint, port, suite))

    def stop(self, wait_ms: int = 15000) -> None:
        """SIGTERM the proxy and wait for it to record what is in flight."""
        if self.running:
            self.process.terminate()
            self.process.waitForFinished(wait_ms)

    def _read_stdout(self) -> None:
        self._stdout += bytes(self.process.readAllStandardOutput())
        if self.url is None:
            match = READY_LINE.match(self._stdout.decode("utf-8", "replace"))
            if match:
                self.url = match.group(1)
                self.started.emit(self.url)

    def _finished(self, code: int, _status) -> None:
        process = self.process
        tail = bytes(process.readAllStandardError()).decode("utf-8", "replace").strip().splitlines()[-3:]
        self.url = None
        self.process = None
        process.deleteLater()
        self.stopped.emit(code, "\n".join(tail))


class ProxyDialog(QDialog):
    """Endpoint, port and suite scope; Start / Stop; the URL to point an agent at, with Copy."""

    def __init__(self, controller: ProxyController, workspace_path: Path, parent=None):
        super().__init__(parent)
        self.setObjectName("proxyDialog")
        self.setWindowTitle("Proxy (lessonlab serve)")
        self.setMinimumWidth(560)
        self.controller, self.workspace_path = controller, workspace_path
        settings = load_settings()
        self.endpoint = QComboBox()
        for name, endpoint in settings.all_endpoints().items():
            self.endpoint.addItem(f"{name} — {endpoint.model}", name)
        self.endpoint.setCurrentIndex(max(0, self.endpoint.findData(settings.default_endpoint)))
        self.port = QSpinBox()
        self.port.setRange(0, 65535)
        self.port.setValue(8765)
        self.port.setSpecialValueText("any free port")
        self.suite = QLineEdit()
        self.suite.setPlaceholderText("lessons for every suite")
        form = QFormLayout()
        form.addRow("Endpoint", self.endpoint)
        form.addRow("Port", self.port)
        form.addRow("Lessons of suite", self.suite)
        self.url = QLineEdit()
        self.url.setObjectName("proxyUrl")
        self.url.setReadOnly(True)
        self.url.setPlaceholderText("not running")
        self.copy = QPushButton("Copy")
        self.copy.clicked.connect(lambda: QApplication.clipboard().setText(self.url.text()))
        url_row = QHBoxLayout()
        url_row.addWidget(self.url, 1)
        url_row.addWidget(self.copy)
        form.addRow("Base URL", url_row)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.toggle = QPushButton()
        self.toggle.clicked.connect(self._toggle)
        close = QPushButton("Close")
        close.clicked.connect(self.accept)
        buttons = QHBoxLayout()
        buttons.addWidget(self.toggle)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.status)
        layout.addLayout(buttons)
        controller.started.connect(self._started)
        controller.stopped.connect(self._stopped)
        self._show_state()

    def _toggle(self) -> None:
        if self.controller.running:
            self.controller.stop()
            return
        self.controller.start(self.workspace_path, self.endpoint.currentData(), self.port.value(),
                              self.suite.text().strip() or None)
        self.status.setText("starting…")
        self._show_state()

    def _show_state(self) -> None:
        running = self.controller.running
        self.toggle.setText("Stop proxy" if running else "Start proxy")
        for widget in (self.endpoint, self.port, self.suite):
            widget.setEnabled(not running)
        self.url.setText(self.controller.url or "")
        self.copy.setEnabled(bool(self.controller.url))
        if running and self.controller.url:
            self.status.setText("Point your agent's OpenAI base URL here; its exchanges appear on the Runs page "
                                "as a serve run, unscored until you score them.")

    def _started(self, _url: str) -> None:
        self._show_state()

    def _stopped(self, code: int, tail: str) -> None:
        self.status.setText("stopped; every exchange is recorded" if code == 0 else
                            f"the proxy exited with code {code}: {tail or 'no message'}")
        self._show_state()
