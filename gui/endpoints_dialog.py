"""Endpoints dialog: add, edit, remove and test endpoint profiles. A key is named, never stored.

Saving or removing a profile sends the "endpoints" change, so every page's endpoint choosers follow.
"""
from __future__ import annotations

import logging

from PySide6.QtWidgets import (
    QDialog, QDialogButtonBox, QDoubleSpinBox, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
    QPushButton, QSpinBox, QVBoxLayout,
)

from lessonlab.core.models.llm_client import ProbeResult
from lessonlab.core.settings import Endpoint, Settings, load_settings, save_settings

from .changes import Changes
from .errors import show_error
from .operations import probe_endpoint
from .perform import perform
from .workers import start_job

log = logging.getLogger("lessonlab.gui.endpoints")


class EndpointsDialog(QDialog):
    """List of profiles on the left, the selected one's fields on the right."""

    def __init__(self, parent=None, local_controller=None, changes: Changes | None = None):
        super().__init__(parent)
        self.setWindowTitle("Endpoints")
        self.local_controller = local_controller
        self.changes = changes if changes is not None else Changes(self)
        self.settings = load_settings()
        self.list = QListWidget()
        self.list.currentTextChanged.connect(self._show)
        self.name = QLineEdit()
        self.base_url = QLineEdit()
        self.base_url.setPlaceholderText("http://localhost:8000/v1")
        self.model = QLineEdit()
        self.key_env = QLineEdit()
        self.key_env.setPlaceholderText("e.g. OPENAI_API_KEY — the variable's NAME, not the key")
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(-0.1, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setSpecialValueText("server default")
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(0, 1_000_000)
        self.max_tokens.setSpecialValueText("server default")
        self.timeout = QDoubleSpinBox()
        self.timeout.setRange(1, 3600)
        self.timeout.setSuffix(" s")
        form = QFormLayout()
        form.addRow("Name", self.name)
        form.addRow("Base URL", self.base_url)
        form.addRow("Model", self.model)
        form.addRow("Key from env var", self.key_env)
        form.addRow("Temperature", self.temperature)
        form.addRow("Max tokens", self.max_tokens)
        form.addRow("Timeout", self.timeout)
        self.note = QLabel("Keys are never stored: lessonlab reads the key from the named environment variable.")
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color:#555")
        self.status = QLabel()
        self.status.setWordWrap(True)
        new = QPushButton("New")
        new.clicked.connect(self._new)
        self.save_button = QPushButton("Save")
        self.save_button.clicked.connect(self.save_current)
        self.remove_button = QPushButton("Remove")
        self.remove_button.clicked.connect(self.remove_current)
        self.test_button = QPushButton("Test")
        self.test_button.clicked.connect(self.test_current)
        buttons = QHBoxLayout()
        for b in (new, self.save_button, self.remove_button, self.test_button):
            buttons.addWidget(b)
        right = QVBoxLayout()
        right.addLayout(form)
        right.addWidget(self.note)
        right.addLayout(buttons)
        right.addWidget(self.status)
        right.addStretch(1)
        body = QHBoxLayout()
        body.addWidget(self.list, 1)
        body.addLayout(right, 2)
        close = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        close.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(body)
        layout.addWidget(close)
        self._reload()

    def _reload(self, select: str | None = None) -> None:
        self.list.clear()
        names = list(self.settings.all_endpoints())
        self.list.addItems(names)
        target = select if select in names else names[0]
        self.list.setCurrentRow(names.index(target))

    def _show(self, name: str) -> None:
        endpoint = self.settings.all_endpoints().get(name)
        if endpoint is None:
            return
        builtin = endpoint.builtin
        self.name.setText(endpoint.name)
        self.base_url.setText(endpoint.base_url or "(embedded: started on demand on 127.0.0.1)")
        self.model.setText(endpoint.model)
        self.key_env.setText(endpoint.key_env or "")
        self.temperature.setValue(endpoint.params.get("temperature", -0.1))
        self.max_tokens.setValue(endpoint.params.get("max_tokens", 0) or 0)
        self.timeout.setValue(endpoint.timeout)
        for widget in (self.name, self.base_url, self.model, self.key_env, self.temperature, self.max_tokens,
                       self.timeout):
            widget.setEnabled(not builtin)
        self.save_button.setEnabled(not builtin)
        self.remove_button.setEnabled(not builtin)
        default = " (default)" if name == self.settings.default_endpoint else ""
        self.status.setText(("Built-in embedded model; cannot be edited." if builtin else "") + default)

    def _new(self) -> None:
        self.list.clearSelection()
        for widget in (self.name, self.base_url, self.model, self.key_env, self.temperature, self.max_tokens,
                       self.timeout):
            widget.setEnabled(True)
        self.name.setText("")
        self.base_url.setText("")
        self.model.setText("")
        self.key_env.setText("")
        self.temperature.setValue(-0.1)
        self.max_tokens.setValue(0)
        self.timeout.setValue(60)
        self.save_button.setEnabled(True)
        self.remove_button.setEnabled(False)
        self.status.setText("New endpoint: fill in the fields and Save.")
        self.name.setFocus()

    def form_endpoint(self) -> Endpoint:
        """The profile described by the form."""
        params = {}
        if self.temperature.value() >= 0:
            params["temperature"] = round(self.temperature.value(), 2)
        if self.max_tokens.value() > 0:
            params["max_tokens"] = self.max_tokens.value()
        return Endpoint(name=self.name.text().strip(), base_url=self.base_url.text().strip().rstrip("/"),
                        model=self.model.text().strip(), key_env=self.key_env.text().strip() or None,
                        params=params, timeout=self.timeout.value())

    def save_current(self) -> bool:
        """Validate and save the form as a profile."""
        endpoint = None

        def save() -> Settings:
            nonlocal endpoint
            endpoint = self.form_endpoint()
            self.settings.add_endpoint(endpoint)
            save_settings(self.settings)
            return self.settings

        if perform(self, self.changes, "Cannot save the endpoint", save) is None:
            self.settings = load_settings()
            return False
        self._reload(endpoint.name)
        self.status.setText(f"Saved {endpoint.name}.")
        return True

    def remove_current(self) -> None:
        """Remove the selected profile (built-in ones cannot be removed)."""
        name = self.list.currentItem().text() if self.list.currentItem() else None
        if not name:
            return
        def remove() -> Settings:
            self.settings.remove_endpoint(name)
            save_settings(self.settings)
            return self.settings

        if perform(self, self.changes, "Cannot remove the endpoint", remove) is not None:
            self._reload()

    def test_current(self) -> None:
        """Send one tiny request in the background and show the latency or the error."""
        name = self.list.currentItem().text() if self.list.currentItem() else None
        endpoint = self.settings.all_endpoints().get(name) if name else None
        if endpoint is None:
            show_error(self, "Nothing to test", "Save the endpoint first.")
            return
        self.status.setText(f"Testing {name}…" + (" (starting the embedded model)" if endpoint.is_local else ""))
        self.test_button.setEnabled(False)

        def done(result: ProbeResult):
            self.test_button.setEnabled(True)
            if result.ok:
                self.status.setText(f"{name}: ok in {result.latency_ms:.0f} ms, model {result.server_model}: "
                                    f"{result.reply!r}")
            else:
                self.status.setText(f"{name}: FAILED: {result.error}")
                show_error(self, f"Endpoint {name} failed", result.error or "no reply")

        def failed(exc, details):
            self.test_button.setEnabled(True)
            self.status.setText(f"{name}: FAILED: {exc}")
            show_error(self, f"Endpoint {name} failed", str(exc), details)

        start_job("test endpoint", probe_endpoint, endpoint, self.local_controller, owner=self, on_done=done,
                  on_error=failed)
