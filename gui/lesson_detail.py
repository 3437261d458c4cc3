"""The Lessons page's detail pane: one lesson's text, actions, provenance and version history with diffs."""
from __future__ import annotations

import html
import logging

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox, QHBoxLayout, QLabel, QListWidget, QPlainTextEdit, QProgressBar, QPushButton, QSplitter, QVBoxLayout,
    QWidget,
)

from lessonlab.core import formatting
from lessonlab.core import lessons as L
from lessonlab.core.impact import AblationResult
from lessonlab.core.storage.workspace import Workspace

from .changes import Changes
from .diff_view import DiffView
from .errors import show_error
from .lesson_dialogs import AblateDialog, LessonEditorDialog
from .operations import AblationRequest, ServerStarting, ablate, load_lesson_detail
from .perform import perform, perform_in_background, start_with_request
from .reply_dialog import ReflectionReplyDialog, open_reflection_dialog
from .workers import Job, start_job

log = logging.getLogger("lessonlab.gui.lessons")


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _wrap_without_sideways_scroll(view: QListWidget) -> None:
    view.setWordWrap(True)  # reasons can be long: wrap rather than scroll sideways
    view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)


class LessonDetail(QWidget):
    """Everything about the selected lesson; edit / retire / restore / ablate act on it."""

    compare_rollouts_requested = Signal(list)   # evidence rollouts to show side by side
    loaded = Signal(str)                        # the lesson id now shown

    def __init__(self, ws: Workspace, local_controller=None, changes: Changes | None = None, parent=None):
        super().__init__(parent)
        self.ws = ws
        self.workspace_path = ws.path
        self.local_controller = local_controller
        self.changes = changes if changes is not None else Changes(self)
        self.lesson_id: str | None = None
        self.history: dict | None = None
        self.suite_hint: str | None = None   # the page's scope filter: the ablation dialog starts on it
        self.ablation_job: Job | None = None
        self._generation = 0
        self._dialogs: list[QWidget] = []

        # Side by side under the table: what the lesson is and did on the left, its versions on the right.
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self._build_about())
        split.addWidget(self._build_history())
        split.setSizes([560, 560])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 0)
        layout.addWidget(split)

    def _build_about(self) -> QWidget:
        """Left: the lesson's text, its actions, an ablation's progress, its provenance and events."""
        self.header = QLabel("Select a lesson")
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        self.header.setWordWrap(True)
        self.header.setStyleSheet("font-weight: bold; font-size: 13px")
        self.text = QPlainTextEdit()
        self.text.setObjectName("lessonFullText")
        self.text.setReadOnly(True)
        self.text.setMaximumHeight(90)
        self.provenance = QLabel()
        self.provenance.setObjectName("provenance")
        self.provenance.setTextFormat(Qt.TextFormat.RichText)  # built from escaped values only
        self.provenance.setWordWrap(True)
        self.provenance.linkActivated.connect(self._link)
        self.events = QListWidget()
        self.events.setObjectName("eventList")
        _wrap_without_sideways_scroll(self.events)
        about = QWidget()
        al = QVBoxLayout(about)
        al.setContentsMargins(0, 0, 0, 0)
        al.addWidget(self.header)
        al.addWidget(self.text)
        al.addLayout(self._build_actions())
        al.addLayout(self._build_ablation_row())
        al.addWidget(self.provenance)
        al.addWidget(QLabel("<b>Events</b>"))
        al.addWidget(self.events, 1)
        return about

    def _build_actions(self) -> QHBoxLayout:
        self.buttons: dict[str, QPushButton] = {}
        actions = QHBoxLayout()
        for name, label, tip in (("edit", "Edit…", "Write a new version (the old one stays in the history)"),
                                 ("retire", "Retire", "Take it out of the system prompt; it stays here"),
                                 ("restore", "Restore", "Make a retired or rejected lesson active again"),
                                 ("ablate", "Ablate…", "Rerun tasks with and without it to measure its effect")):
            button = QPushButton(label)
            button.setObjectName(f"{name}LessonButton")
            button.setToolTip(tip)
            button.setEnabled(False)
            button.clicked.connect(getattr(self, name))
            actions.addWidget(button)
            self.buttons[name] = button
        actions.addStretch(1)
        return actions

    def _build_ablation_row(self) -> QHBoxLayout:
        """An ablation's progress with Cancel, hidden until one starts."""
        self.ablation_bar = QProgressBar()
        self.ablation_bar.setObjectName("ablationProgress")
        self.ablation_label = QLabel()
        self.ablation_label.setTextFormat(Qt.TextFormat.PlainText)
        self.ablation_label.setWordWrap(True)
        self.ablation_cancel = QPushButton("Cancel")
        self.ablation_cancel.clicked.connect(self.cancel_ablation)
        ablation_row = QHBoxLayout()
        ablation_row.addWidget(self.ablation_label, 1)
        ablation_row.addWidget(self.ablation_bar)
        ablation_row.addWidget(self.ablation_cancel)
        self.ablation_bar.hide()
        self.ablation_cancel.hide()
        return ablation_row

    def _build_history(self) -> QWidget:
        """Right: the versions and a word diff between any two of them."""
        self.versions = QListWidget()
        self.versions.setObjectName("versionList")
        self.versions.currentRowChanged.connect(self._version_clicked)
        self.from_version = QComboBox()
        self.to_version = QComboBox()
        for combo in (self.from_version, self.to_version):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.currentIndexChanged.connect(lambda _i: self._diff_versions())
        self.diff = DiffView()
        self.diff.setObjectName("historyDiff")
        _wrap_without_sideways_scroll(self.versions)
        picker = QHBoxLayout()
        picker.addWidget(QLabel("Diff"))
        picker.addWidget(self.from_version)
        picker.addWidget(QLabel("→"))
        picker.addWidget(self.to_version)
        picker.addStretch(1)
        history = QWidget()
        hl = QVBoxLayout(history)
        hl.setContentsMargins(0, 0, 0, 0)
        hl.addWidget(QLabel("<b>Versions</b>"))
        hl.addWidget(self.versions, 1)
        hl.addLayout(picker)
        hl.addWidget(self.diff, 2)
        return history

    # --- showing -------------------------------------------------------------------------------------------

    def show_lesson(self, lesson_id: str | None) -> Job | None:
        """Load lesson_id's history in the background and show it (None: clear)."""
        self._generation += 1
        self.lesson_id = lesson_id
        for button in self.buttons.values():
            button.setEnabled(False)  # until the lesson asked for is on screen: never act on the previous one
        if lesson_id is None:
            self.history = None
            self.header.setText("Select a lesson")
            self.text.clear()
            self.provenance.clear()
            self.versions.clear()
            self.events.clear()
            self.diff.show_text("")
            return None
        return start_job("lesson history", load_lesson_detail, self.workspace_path, lesson_id, owner=self,
                         on_done=lambda data, g=self._generation: self._loaded(g, data),
                         error_title="Cannot load the lesson")

    def _loaded(self, generation: int, history: dict) -> None:
        if generation != self._generation:
            return
        self.history = history
        lesson = history["lesson"]
        origin = (f"from reflection {lesson['reflection_id']}" if lesson["origin"] == "reflection"
                  else "written by hand")
        self.header.setText(f"{lesson['id']}  [{lesson['status']}]  v{lesson['version']} · ~{lesson['tokens']} tokens · "
                            f"{formatting.scope(lesson['scope'], long=True)} · {origin}")
        self.text.setPlainText(lesson["text"])
        status = lesson["status"]
        self.buttons["edit"].setEnabled(status != "rejected")
        self.buttons["retire"].setEnabled(status in ("active", "proposed"))
        self.buttons["restore"].setEnabled(status in ("retired", "rejected"))
        self.buttons["ablate"].setEnabled(status == "active" and self.ablation_job is None)
        self.provenance.setText(self._provenance_html(history))
        self.versions.blockSignals(True)
        self.versions.clear()
        for combo in (self.from_version, self.to_version):
            combo.blockSignals(True)
            combo.clear()
        self.from_version.addItem("(nothing)", -1)
        for i, v in enumerate(history["versions"]):
            parents = f" · merged from {', '.join(v['parents'])}" if v["parents"] else ""
            self.versions.addItem(f"v{v['version']}  {v['created_at'].replace('T', ' ')[:19]}  by {v['author']}"
                                  f"  ~{v['tokens_est']} tokens{parents}" + (f"\n    {v['reason']}" if v["reason"] else ""))
            self.from_version.addItem(f"v{v['version']}", i)
            self.to_version.addItem(f"v{v['version']}", i)
        last = len(history["versions"]) - 1
        self.to_version.setCurrentIndex(last)
        self.from_version.setCurrentIndex(last)  # index 0 is "(nothing)": v(last-1), or nothing for a lesson at v1
        self.versions.setCurrentRow(last)
        self.versions.blockSignals(False)
        for combo in (self.from_version, self.to_version):
            combo.blockSignals(False)
        self._diff_versions()
        self.events.clear()
        for e in history["events"]:
            move = f"{e['from_status'] or '—'} → {e['to_status']}" if e["to_status"] else ""
            self.events.addItem(f"{e['created_at'].replace('T', ' ')[:19]}  {e['kind']}  {move}  by {e['author']}"
                                + (f": {e['reason']}" if e["reason"] else ""))
        self.loaded.emit(lesson["id"])

    def _provenance_html(self, history: dict) -> str:
        lesson = history["lesson"]
        parts = []
        if lesson["origin"] == "reflection" and lesson["reflection_id"]:
            ref = history["reflection"] or {}
            parts.append(f'Came from reflection <a href="reflection:{_esc(lesson["reflection_id"])}">'
                         f'{_esc(lesson["reflection_id"])}</a> ({_esc(ref.get("kind", "?"))} by '
                         f'{_esc(ref.get("server_model") or ref.get("model") or "?")} on {_esc(ref.get("endpoint", "?"))}, '
                         f'{_esc((ref.get("created_at") or "?")[:19].replace("T", " "))})')
        else:
            parts.append("Written by hand")
        briefs = history.get("evidence", {})
        for p in history["proposals"]:
            line = (f'Proposal {_esc(p["id"])} ({_esc(p["op"])}, {_esc(p["status"])}'
                    f'{" by " + _esc(p["decided_by"]) if p["decided_by"] else ""}): {_esc(p["rationale"] or "")}')
            if p["evidence"]:
                cited = ", ".join(
                    f'{_esc(briefs[r]["task"])} {_esc(formatting.short_reward(briefs[r]["reward"]))}'
                    if r in briefs else _esc(r) for r in p["evidence"])
                line += (f' — evidence: <a href="compare:{_esc(",".join(p["evidence"]))}">{len(p["evidence"])} '
                         f'rollout(s)</a> ({cited})')
            parts.append(line)
        used = history["used_in"]
        parts.append(f"In {used['snapshots']} snapshot(s), seen by {used['rollouts']} rollout(s)")
        return "<br>".join(parts)

    def _link(self, link: str) -> None:
        kind, _, value = link.partition(":")
        if kind == "compare":
            self.compare_rollouts_requested.emit([v for v in value.split(",") if v])
        elif kind == "reflection":
            self.show_reflection(value)

    def show_reflection(self, reflection_id: str) -> ReflectionReplyDialog | None:
        """The reflection a lesson came from: analysis and raw reply, in a window of its own."""
        return open_reflection_dialog(self, self.ws, reflection_id, self._dialogs)

    def _version_clicked(self, row: int) -> None:
        if self.history is None or row < 0:
            return
        self.to_version.setCurrentIndex(row)
        self.from_version.setCurrentIndex(row)  # "(nothing)" shifts the from list by one: the version before

    def _diff_versions(self) -> None:
        if not self.history:
            return
        versions = self.history["versions"]
        i, j = self.from_version.currentData(), self.to_version.currentData()
        if j is None or i is None:
            return
        old = versions[i]["text"] if i >= 0 else ""
        self.diff.show_diff(old, versions[j]["text"])

    # --- actions --------------------------------------------------------------------------------------------

    def _lesson(self) -> dict | None:
        """The lesson on screen, once the one asked for has loaded."""
        if not self.history or self.history["lesson"]["id"] != self.lesson_id:
            return None
        return self.history["lesson"]

    def _apply(self, what: str, fn, *args, **kwargs) -> bool:
        return perform(self, self.changes, f"Cannot {what}", fn, self.ws, *args, **kwargs) is not None

    def edit(self) -> LessonEditorDialog | None:
        """Open the editor on the lesson's text and scope; Save writes a new version."""
        lesson = self._lesson()
        if lesson is None:
            return None
        dialog = LessonEditorDialog(self, title=f"Edit {lesson['id']}", text=lesson["text"], scope=lesson["scope"],
                                    suites=L.scope_names(self.ws))
        dialog.accepted.connect(lambda: self._save_edit(lesson, dialog.values()))
        self._dialogs = [d for d in self._dialogs if d.isVisible()] + [dialog]
        dialog.open()
        return dialog

    def _save_edit(self, lesson: dict, values: dict) -> None:
        scope = "unchanged" if values["scope"] == lesson["scope"] else values["scope"]
        if self._apply("edit the lesson", L.edit_lesson, lesson["id"], values["text"], reason=values["reason"],
                       scope=scope):
            self.show_lesson(lesson["id"])

    def retire(self) -> bool:
        """Take the lesson out of the system prompt (it stays in the database)."""
        lesson = self._lesson()
        return lesson is not None and self._apply("retire the lesson", L.retire_lesson, lesson["id"])

    def restore(self) -> bool:
        """Make a retired or rejected lesson active again."""
        lesson = self._lesson()
        return lesson is not None and self._apply("restore the lesson", L.restore_lesson, lesson["id"])

    def ablate(self) -> AblateDialog | None:
        """Ask which tasks to rerun with and without the lesson, then run the ablation in the background."""
        lesson = self._lesson()
        if lesson is None:
            return None
        suites = L.scope_names(self.ws)
        dialog = AblateDialog(lesson["id"], self, suites=suites,
                              suite=self.suite_hint or (lesson["scope"] or [None])[0])
        dialog.accepted.connect(lambda: self._ablate_from(dialog))
        self._dialogs = [d for d in self._dialogs if d.isVisible()] + [dialog]
        dialog.open()
        return dialog

    def _ablate_from(self, dialog: AblateDialog) -> None:
        start_with_request(self, "Cannot ablate", dialog.request, self.start_ablation)

    def start_ablation(self, request: AblationRequest) -> Job | None:
        """Run core.impact.run_ablation in the background with progress and Cancel."""
        if self.ablation_job is not None:
            show_error(self, "An ablation is in progress", "Wait for it to finish or cancel it first.")
            return None
        self.buttons["ablate"].setEnabled(False)
        self.ablation_bar.setRange(0, 0)
        self.ablation_bar.show()
        self.ablation_cancel.show()
        self.ablation_cancel.setEnabled(True)
        self.ablation_label.setText(f"Ablating {request.lesson_id} on {request.suite} ({request.split}) "
                                    f"with {request.endpoint.name}…")
        self.ablation_job = perform_in_background(
            self, self.changes, "ablation", ablate, self.workspace_path, request, self.local_controller,
            on_progress=self._ablation_progress, on_done=self._ablation_done, on_failed=self._ablation_failed,
            error_title="Ablation failed")
        return self.ablation_job

    def cancel_ablation(self) -> None:
        """Stop the ablation; finished rollouts are kept and the ablation is marked interrupted."""
        if self.ablation_job is not None:
            self.ablation_job.cancel.set()
            self.ablation_cancel.setEnabled(False)
            self.ablation_label.setText("Cancelling the ablation…")

    def _ablation_progress(self, message) -> None:
        if isinstance(message, ServerStarting):
            self.ablation_label.setText("Starting the embedded model…")
            return
        if isinstance(message, dict) and message:
            done = sum(p.done for p in message.values())
            total = sum(p.total for p in message.values())
            self.ablation_bar.setRange(0, max(total, 1))
            self.ablation_bar.setValue(done)
            self.ablation_label.setText("Ablation: " + "  ".join(
                f"{arm} {p.done}/{p.total} (mean {formatting.reward(p.mean_reward)})" for arm, p in sorted(message.items())))

    def _ablation_finished(self) -> None:
        self.ablation_job = None
        self.ablation_bar.hide()
        self.ablation_cancel.hide()
        lesson = self._lesson()
        self.buttons["ablate"].setEnabled(bool(lesson) and lesson["status"] == "active")

    def _ablation_done(self, result: AblationResult) -> None:
        self._ablation_finished()
        self.ablation_label.setText(f"Ablation {result.ablation_id} of {result.lesson_id} {result.status}: lift "
                                    f"{result.lift.describe()} (runs {result.run_with} vs {result.run_without})")

    def _ablation_failed(self, exc: BaseException) -> None:
        self._ablation_finished()
        self.ablation_label.setText(f"Ablation failed: {exc}")
