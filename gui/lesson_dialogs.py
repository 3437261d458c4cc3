"""Dialogs of the Lessons page: write or edit a lesson, ablate one, distill the set."""
from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QLineEdit, QPlainTextEdit, QSpinBox, QVBoxLayout,
)

from lessonlab.core.lessons import estimate_tokens
from lessonlab.core.settings import Settings, load_settings
from lessonlab.core.tasks.suites import builtin_suites

from .operations import AblationRequest


def endpoint_combo(settings: Settings, chosen: str | None = None) -> QComboBox:
    """The endpoint profiles (the default, or chosen, selected)."""
    combo = QComboBox()
    for name, ep in settings.all_endpoints().items():
        combo.addItem(f"{name} — {ep.model}" + (" (embedded)" if ep.is_local else ""), name)
    combo.setCurrentIndex(max(0, combo.findData(chosen or settings.default_endpoint)))
    return combo


def parse_scope(text: str) -> list[str] | None:
    """'arithmetic, game24' → ['arithmetic', 'game24']; empty → None (every suite)."""
    names = [part.strip() for part in text.replace(";", ",").split(",") if part.strip()]
    return names or None


class LessonEditorDialog(QDialog):
    """The text, scope and reason of a new lesson or a new version of one."""

    def __init__(self, parent=None, *, title: str = "New lesson", text: str = "", scope: list[str] | None = None,
                 suites: list[str] | None = None, proposed_option: bool = False):
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("lessonEditor")
        self.resize(560, 320)
        self.text = QPlainTextEdit(text)
        self.text.setObjectName("lessonText")
        self.text.setPlaceholderText("A short instruction for the system prompt, e.g. “Spell the word letter by "
                                     "letter before counting.”")
        self.tokens = QLabel()
        self.tokens.setStyleSheet("color:#555")
        self.text.textChanged.connect(self._count)
        self.scope = QLineEdit(", ".join(scope or []))
        self.scope.setPlaceholderText("every suite")
        self.scope.setToolTip("Suites this lesson applies to, separated by commas; empty: every suite"
                              + (f"\nknown suites: {', '.join(suites)}" if suites else ""))
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("why (kept in the history; optional)")
        self.status = QComboBox()
        self.status.addItem("active — in the next run's prompt", "active")
        self.status.addItem("proposed — waits in Review", "proposed")
        form = QFormLayout()
        form.addRow("Scope", self.scope)
        form.addRow("Reason", self.reason)
        if proposed_option:
            form.addRow("Status", self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.tokens)
        layout.addLayout(form)
        layout.addWidget(buttons)
        self._count()

    def _count(self) -> None:
        self.tokens.setText(f"~{estimate_tokens(self.text.toPlainText().strip())} tokens (estimate: characters / 4)")

    def values(self) -> dict:
        """text, scope (None: every suite), reason (None when empty) and status."""
        return {"text": self.text.toPlainText().strip(), "scope": parse_scope(self.scope.text()),
                "reason": self.reason.text().strip() or None, "status": self.status.currentData()}


class AblateDialog(QDialog):
    """Which tasks to rerun with and without the lesson, how often, on which endpoint."""

    def __init__(self, lesson_id: str, parent=None, *, suites: list[str] | None = None, suite: str | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Ablate {lesson_id}")
        self.lesson_id = lesson_id
        self.settings = load_settings()
        self.suite = QComboBox()
        self.suite.setEditable(True)
        names = list(dict.fromkeys([*(suites or []), *builtin_suites()]))
        self.suite.addItems(names)
        if suite:
            self.suite.setCurrentText(suite)
        self.suite.setToolTip("A built-in suite, or a path to a JSONL file of your own")
        self.split = QComboBox()
        self.split.addItems(["heldout", "train", "all"])
        self.limit = QSpinBox()
        self.limit.setRange(0, 1_000_000)
        self.limit.setSpecialValueText("all tasks")
        self.limit.setValue(10)
        self.samples = QSpinBox()
        self.samples.setRange(1, 1000)
        self.samples.setValue(2)
        self.endpoint = endpoint_combo(self.settings)
        self.concurrency = QSpinBox()
        self.concurrency.setRange(2, 1024)
        self.concurrency.setValue(4)
        note = QLabel("Both arms run side by side with the same seeds: the current prompt, and the same prompt "
                      "without this lesson.")
        note.setWordWrap(True)
        note.setStyleSheet("color:#555")
        form = QFormLayout()
        form.addRow("Suite", self.suite)
        form.addRow("Split", self.split)
        form.addRow("Limit (tasks)", self.limit)
        form.addRow("Samples per task", self.samples)
        form.addRow("Endpoint", self.endpoint)
        form.addRow("Concurrency", self.concurrency)
        lay_out_note_form_buttons(self, note, form, "Start ablation")

    def request(self) -> AblationRequest:
        """The ablation the dialog describes (raises SettingsError for an unknown endpoint)."""
        return AblationRequest(lesson_id=self.lesson_id, suite=self.suite.currentText().strip(),
                               endpoint=self.settings.endpoint(self.endpoint.currentData()),
                               split=self.split.currentText(), limit=self.limit.value() or None,
                               samples=self.samples.value(), concurrency=self.concurrency.value())


def lay_out_note_form_buttons(dialog: QDialog, note: QLabel, form: QFormLayout, ok_text: str) -> None:
    """A note, a form, then OK (labelled ok_text) and Cancel: the shape of the small request dialogs."""
    buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
    buttons.button(QDialogButtonBox.StandardButton.Ok).setText(ok_text)
    buttons.accepted.connect(dialog.accept)
    buttons.rejected.connect(dialog.reject)
    layout = QVBoxLayout(dialog)
    layout.addWidget(note)
    layout.addLayout(form)
    layout.addWidget(buttons)


class DistillDialog(QDialog):
    """The endpoint that writes the consolidation and the token budget it aims for."""

    def __init__(self, parent=None, *, tokens: int = 0):
        super().__init__(parent)
        self.setWindowTitle("Distill the lessons")
        self.settings = load_settings()
        self.endpoint = endpoint_combo(self.settings)
        self.budget = QSpinBox()
        self.budget.setRange(1, 1_000_000)
        self.budget.setValue(self.settings.lesson_token_budget)
        self.budget.setSuffix(" tokens")
        note = QLabel(f"The active lessons take ~{tokens} tokens. A model proposes merges, rewrites and "
                      "retirements that fit the budget; they wait in Review like any proposal.")
        note.setWordWrap(True)
        note.setTextFormat(Qt.TextFormat.PlainText)
        form = QFormLayout()
        form.addRow("Endpoint", self.endpoint)
        form.addRow("Budget", self.budget)
        lay_out_note_form_buttons(self, note, form, "Distill")
