"""The Review page: the queue of pending proposals, keyboard first as in Anki's reviewer.

A accept · E edit, then accept · R reject (optional reason) · J / K next / previous · Space evidence.
Decisions go through `lessonlab.core.review` — the functions `lessonlab accept` / `reject` call — and
end with the one "changed" notification. Failed reflections are listed below the queue with their
error and raw reply, and can be retried over the same rollouts in the background.
"""
from __future__ import annotations

import logging

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (
    QFrame, QHBoxLayout, QLabel, QLineEdit, QListWidget, QListWidgetItem, QPlainTextEdit, QPushButton, QSplitter,
    QStackedWidget, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget,
)

from lessonlab.core import formatting, reflection

from lessonlab.core.lessons import review


from . import changes as changed
from .changes import Change
from .diff_view import DiffView
from .errors import show_exception
from .failed_reflections import FailedReflectionPane
from .reply_dialog import ReflectionReplyDialog, open_reflection_dialog
from .pages import Page, PageContext
from .perform import perform
from .workers import Job

log = logging.getLogger("lessonlab.gui.review")

ItemRole = Qt.ItemDataRole.UserRole + 1
OP_COLORS = {"add": "#2e7d32", "edit": "#1565c0", "merge": "#6a1b9a", "retire": "#8d6e63"}
KEYS = {"accept": "A", "edit": "E", "reject": "R", "next": "J", "previous": "K", "evidence": "Space"}


def _plain_label(text: str = "", *, wrap: bool = True, style: str = "") -> QLabel:
    label = QLabel(text)
    label.setTextFormat(Qt.TextFormat.PlainText)  # proposal texts come from a model: never rendered
    label.setWordWrap(wrap)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    if style:
        label.setStyleSheet(style)
    return label


class ReviewPage(Page):
    """Pending proposals grouped by reflection (newest first), one at a time in the pane on the right."""

    def __init__(self, context: PageContext, parent=None):
        super().__init__(context, parent)
        self._items: list[QTreeWidgetItem] = []     # the proposals and failed reflections, in queue order
        self._select_row: int | None = None         # after a decision: select what moved into its place
        self._dialogs: list[QWidget] = []

        self.summary = QLabel()
        self.summary.setObjectName("reviewSummary")
        self.summary.setStyleSheet("font-size: 14px; font-weight: bold")
        self.queue = QTreeWidget()
        self.queue.setObjectName("reviewQueue")
        self.queue.setHeaderHidden(True)
        self.queue.setMinimumWidth(300)
        self.queue.setIndentation(14)
        self.queue.currentItemChanged.connect(lambda item, _old: self._show(item))

        self.stack = QStackedWidget()
        self.empty = _plain_label("Nothing to review.\n\nProposals appear here after a reflection: select rollouts "
                                  "on the Compare page and “Reflect on these”, or run `lessonlab reflect`.",
                                  style="color:#555; font-size: 13px")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self._build_proposal_pane())
        self.failed = FailedReflectionPane(self.ws, self.local_controller, self.changes)
        self.stack.addWidget(self.failed)

        self.status = _plain_label(style="color:#444")
        self.status.setObjectName("reviewStatus")
        self.failed.status.connect(self.status.setText)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        ll.addWidget(self.summary)
        ll.addWidget(self.queue, 1)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(self.stack)
        splitter.setSizes([400, 780])
        splitter.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(self.status)
        self._build_keys()
        self.reload()

    # --- building ---------------------------------------------------------------------------------------

    def _build_proposal_pane(self) -> QWidget:
        self.op_badge = QLabel()
        self.op_badge.setObjectName("opBadge")
        self.op_badge.setFixedWidth(70)
        self.op_badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.title = _plain_label(style="font-weight: bold")
        self.leak = _plain_label(style="background:#ffebee;color:#b71c1c;border:1px solid #ef9a9a;padding:4px")
        self.leak.setObjectName("leakageFlag")
        self.targets = QLabel()
        self.targets.setTextFormat(Qt.TextFormat.RichText)  # built from escaped ids and texts only
        self.targets.setWordWrap(True)
        self.targets.linkActivated.connect(
            lambda link: self.context.navigation.show_lesson.emit(link.removeprefix("lesson:")))
        head = QHBoxLayout()
        head.addWidget(self.op_badge)
        head.addWidget(self.title, 1)
        self.diff_caption = _plain_label(style="color:#555")
        self.diff = DiffView()
        self.diff.setMinimumHeight(90)
        self.diff.setMaximumHeight(240)  # lessons are short; the rest of the height goes to the reflection
        self.diff.setStyleSheet("font-size: 15px")  # the lesson text is what is being judged
        self.diff.ready.connect(self._diff_ready)
        self.rationale = _plain_label()
        self.rationale.setObjectName("rationale")
        self.evidence = QListWidget()
        self.evidence.setObjectName("evidenceList")
        self.evidence.setMaximumHeight(110)
        self.evidence.itemActivated.connect(lambda _i: self.open_evidence())
        self.evidence.itemClicked.connect(lambda _i: self.open_evidence())
        self.evidence_caption = _plain_label(style="color:#555")
        self._build_inline_editors()
        pane = QWidget()
        layout = QVBoxLayout(pane)
        layout.setContentsMargins(8, 0, 0, 0)
        layout.addLayout(head)
        layout.addWidget(self.leak)
        layout.addWidget(self.targets)
        layout.addWidget(self.diff_caption)
        layout.addWidget(self.diff)
        layout.addWidget(self.editor_hint)
        layout.addWidget(self.editor)
        layout.addWidget(self.reason)
        layout.addWidget(QLabel("<b>Why</b>"))
        layout.addWidget(self.rationale)
        layout.addWidget(self.evidence_caption)
        layout.addWidget(self.evidence)
        layout.addWidget(self._build_cited_steps())
        layout.addWidget(self._build_reflection_box(), 1)
        layout.addLayout(self._build_buttons())
        self._cancel_inline()
        return pane

    def _build_inline_editors(self) -> None:
        """The inline editor (E) and reason (R): keyboard all the way, no modal dialog."""
        self.editor = QPlainTextEdit()
        self.editor.setObjectName("proposalEditor")
        self.editor.setMaximumHeight(120)
        self.editor_hint = _plain_label("Edit the text, then Ctrl+Enter accepts it · Esc cancels", style="color:#555")
        self.reason = QLineEdit()
        self.reason.setObjectName("rejectReason")
        self.reason.setPlaceholderText("Why reject it? (optional) — Enter rejects · Esc cancels")
        self.reason.returnPressed.connect(self._confirm_reject)
        for widget, slot in ((self.editor, self._cancel_inline), (self.reason, self._cancel_inline)):
            esc = QAction(widget, shortcut=QKeySequence(Qt.Key.Key_Escape))
            esc.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            esc.triggered.connect(slot)
            widget.addAction(esc)
        for key in ("Ctrl+Return", "Ctrl+Enter"):
            done = QAction(self.editor, shortcut=QKeySequence(key))
            done.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            done.triggered.connect(self._confirm_edit)
            self.editor.addAction(done)

    def _build_buttons(self) -> QHBoxLayout:
        """One button per key, for the mouse; they never take the focus from the queue."""
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for name, label in (("accept", "Accept"), ("edit", "Edit…"), ("reject", "Reject"), ("previous", "Previous"),
                            ("next", "Next"), ("evidence", "Evidence")):
            button = QPushButton(f"{label}  [{KEYS[name]}]")
            button.setObjectName(f"{name}Button")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the queue
            button.clicked.connect(self._slots()[name])
            row.addWidget(button)
            self.buttons[name] = button
        row.addStretch(1)
        return row

    def _build_reflection_box(self) -> QFrame:
        """The reflection's analysis (plain text) with its raw reply one click away."""
        self.analysis = QPlainTextEdit()  # the model's words: plain text, scrollable when long
        self.analysis.setObjectName("reflectionAnalysis")
        self.analysis.setReadOnly(True)
        self.analysis.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.reply_button = QPushButton("Raw reply…")
        self.reply_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.reply_button.clicked.connect(self.show_reply)
        reflection_box = QFrame()
        reflection_box.setFrameShape(QFrame.Shape.StyledPanel)
        rb = QVBoxLayout(reflection_box)
        rb.setContentsMargins(6, 4, 6, 4)
        self.reflection_title = _plain_label(style="font-weight: bold; color:#444")
        title_row = QHBoxLayout()
        title_row.addWidget(self.reflection_title, 1)
        title_row.addWidget(self.reply_button)
        rb.addLayout(title_row)
        rb.addWidget(self.analysis)
        return reflection_box

    def _build_cited_steps(self) -> QPlainTextEdit:
        """The steps a proposal cites (`ro_x#N`): each one's call and result, read-only plain text."""
        self.cited_steps = QPlainTextEdit()
        self.cited_steps.setObjectName("citedSteps")
        self.cited_steps.setReadOnly(True)
        self.cited_steps.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the queue
        self.cited_steps.setMaximumHeight(130)
        self.cited_steps.setStyleSheet("font-family: monospace; background: #fafafa")
        return self.cited_steps

    def _show_cited_steps(self, steps: list[dict]) -> None:
        self.cited_steps.setVisible(bool(steps))
        self.cited_steps.setPlainText("\n\n".join(reflection.cited_step_text(step) for step in steps))

    def _slots(self) -> dict:
        return {"accept": self.accept, "edit": self.edit, "reject": self.reject, "next": self.select_next,
                "previous": self.select_previous, "evidence": self.open_evidence}

    def _build_keys(self) -> None:
        self.key_actions: dict[str, QAction] = {}
        for name, slot in self._slots().items():
            action = QAction(name, self, shortcut=QKeySequence(KEYS[name]))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(slot)
            self.addAction(action)
            self.key_actions[name] = action

    # --- the queue ----------------------------------------------------------------------------------------

    def page_shown(self) -> None:
        """Coming on screen: keys work at once, on the first pending proposal unless one is already chosen."""
        item = self.current_item()
        if item is None or item["kind"] == "failed":
            self.select_row(0)
        self.queue.setFocus()

    def on_changed(self, change: Change) -> None:
        """Proposals, lessons or reflections changed (here or elsewhere): rebuild the queue."""
        if {changed.PROPOSALS, changed.LESSONS, changed.REFLECTIONS, changed.WORKSPACE} & change.kinds:
            self.reload()

    def reload(self) -> None:
        """Read the queue again, keeping the current proposal selected (or what took its place)."""
        current = self.current_item()
        keep_id = current["id"] if current else None
        try:
            groups = review.review_queue(self.ws)
            failed = review.failed_reflections(self.ws)
        except Exception as exc:  # noqa: BLE001 - the one error path
            show_exception(self, "Cannot read the review queue", exc)
            return
        self.queue.blockSignals(True)
        self.queue.clear()
        self._items = []
        pending = 0
        for group in groups:
            head = self._group_item(group["title"], len(group["items"]))
            for entry in group["items"]:
                pending += 1
                entry = {**entry, "group_title": group["title"]}
                self._add(head, entry, self._proposal_text(entry), self._proposal_tip(entry))
        if failed:
            head = self._group_item("Failed reflections", len(failed), color="#b71c1c")
            for row in failed:
                entry = {**row, "reflection_kind": row["kind"], "kind": "failed"}
                self._add(head, entry, f"✗ {row['kind']} {row['id']} — {row['error'] or 'failed'}",
                          f"{row['endpoint']} · {row['created_at']} · {row['rollouts']} rollouts\n{row['error']}")
        self.queue.expandAll()
        self.queue.blockSignals(False)
        reflections = sum(1 for g in groups if g["reflection"] is not None)
        self.summary.setText(f"{pending} pending proposal{'s' if pending != 1 else ''}"
                             + (f" from {reflections} reflection{'s' if reflections != 1 else ''}" if reflections else "")
                             + (f" · {len(failed)} failed" if failed else ""))
        rows = [self._entry(i)["id"] for i in self._items]
        if self._select_row is not None:
            row, self._select_row = self._select_row, None
            left = len(self.pending_ids())
            if left:
                self.select_row(min(row, left - 1))  # what moved into the decided one's place
            else:
                self.queue.setCurrentItem(None)      # all done: the failed reflections stay listed below
                self._show(None)
        elif keep_id in rows:
            self.select_row(rows.index(keep_id))
        else:
            self.select_row(0)

    def _group_item(self, title: str, count: int, color: str = "#333") -> QTreeWidgetItem:
        head = QTreeWidgetItem(self.queue, [f"{title}  ({count})"])
        head.setFlags(Qt.ItemFlag.ItemIsEnabled)  # a heading: not selectable, keys skip it
        head.setForeground(0, QColor(color))
        font = head.font(0)
        font.setBold(True)
        head.setFont(0, font)
        return head

    def _add(self, head: QTreeWidgetItem, entry: dict, text: str, tip: str) -> None:
        item = QTreeWidgetItem(head, [text])
        item.setData(0, ItemRole, entry)
        item.setToolTip(0, tip)
        if entry["kind"] != "failed":
            item.setForeground(0, QColor(OP_COLORS.get(entry["op"], "#333")))
        self._items.append(item)

    @staticmethod
    def _proposal_text(entry: dict) -> str:
        text = " ".join((entry["new_text"] or entry["old_text"]).split())
        flag = " ⚠" if entry["leakage"] else ""
        return f"{entry['op'].upper()}{flag} · {text[:80]}{'…' if len(text) > 80 else ''}"

    @staticmethod
    def _proposal_tip(entry: dict) -> str:
        return f"{entry['id']}\n{entry['new_text'] or '(retire)'}" + ("\nLEAKAGE: " + "; ".join(
            leak["detail"] for leak in entry["leakage"]) if entry["leakage"] else "")

    @staticmethod
    def _entry(item: QTreeWidgetItem | None) -> dict | None:
        return item.data(0, ItemRole) if item is not None else None

    def current_item(self) -> dict | None:
        """The proposal (or failed reflection) shown on the right, or None."""
        return self._entry(self.queue.currentItem())

    def pending_ids(self) -> list[str]:
        """Ids of the proposals and proposed lessons in the queue, in order."""
        return [e["id"] for e in map(self._entry, self._items) if e["kind"] != "failed"]

    def select_row(self, row: int) -> None:
        """Select the row-th entry of the queue (clamped); show the empty view when there is none."""
        if not self._items:
            self.queue.setCurrentItem(None)
            self._show(None)
            return
        self.queue.setCurrentItem(self._items[max(0, min(row, len(self._items) - 1))])

    def _row(self) -> int:
        item = self.queue.currentItem()
        return self._items.index(item) if item in self._items else -1

    def select_next(self) -> None:
        """J: the next entry of the queue."""
        self.select_row(self._row() + 1)

    def select_previous(self) -> None:
        """K: the previous entry of the queue."""
        self.select_row(max(0, self._row() - 1))

    # --- showing one entry -----------------------------------------------------------------------------------

    def _show(self, item: QTreeWidgetItem | None) -> None:
        self._cancel_inline()
        entry = self._entry(item)
        if entry is None:
            self.stack.setCurrentIndex(0)
        elif entry["kind"] == "failed":
            self.stack.setCurrentIndex(2)
            self.failed.show_reflection(entry)
        else:
            self._show_proposal(entry)

    def _show_proposal(self, entry: dict) -> None:
        self.stack.setCurrentIndex(1)
        op = entry["op"]
        self.op_badge.setText(op.upper())
        self.op_badge.setStyleSheet(f"background:{OP_COLORS.get(op, '#555')};color:white;font-weight:bold;"
                                    "border-radius:4px;padding:4px")
        what = {"add": "a new lesson", "edit": "a new version of", "merge": "one lesson in place of",
                "retire": "retiring"}.get(op, op)
        source = "written by hand" if entry["kind"] == "lesson" else f"from {entry['reflection_id']}"
        self.title.setText(f"{entry['id']} · {what}{' ' + ', '.join(entry['lesson_ids']) if entry['targets'] else ''}"
                           f" · {source}")
        self.leak.setVisible(bool(entry["leakage"]))
        self.leak.setText("LEAKAGE — this text may give away a task's answer:\n" + "\n".join(
            f"• {leak['task']} ({leak['split']}): {leak['detail']}" for leak in entry["leakage"]))
        links = [f'<a href="lesson:{t["id"]}">{t["id"]}</a> v{t["version"]} [{t["status"]}]' for t in entry["targets"]]
        self.targets.setVisible(bool(links))
        self.targets.setText("Changes " + ", ".join(links))
        self.diff_caption.setText({"add": "New lesson text", "retire": "Lesson text to retire (struck out)",
                                   "merge": "Merged lessons → new text"}.get(op, "Old text → new text"))
        self.diff.show_diff(entry["old_text"], entry["new_text"])
        rationale = entry["rationale"] or "(no rationale given)"
        if entry.get("note"):
            rationale += f"\nNote: {entry['note']}"   # e.g. evidence ids that were not in the context, dropped
        self.rationale.setText(rationale)
        self.evidence.clear()
        for ev in entry["evidence"]:
            reward = formatting.reward(ev["reward"]) if ev["status"] == "ok" else ev["status"]
            row = QListWidgetItem(f"{ev['id']}   task {ev['task']}   reward {reward}")
            row.setData(Qt.ItemDataRole.UserRole, ev["id"])
            self.evidence.addItem(row)
        self.evidence.setVisible(bool(entry["evidence"]))
        steps = entry.get("steps") or []
        cited = f", {len(steps)} step(s) shown below" if steps else ""
        self.evidence_caption.setText(f"Evidence: {len(entry['evidence'])} rollout(s){cited} — Space or click opens "
                                      "them side by side in Compare" if entry["evidence"] else "Evidence: none cited")
        self._show_cited_steps(steps)
        self.buttons["evidence"].setEnabled(bool(entry["evidence"]))
        self.buttons["edit"].setEnabled(op != "retire")
        self._show_reflection(entry)

    def _show_reflection(self, entry: dict) -> None:
        self.reply_button.setVisible(bool(entry["reflection_id"]))
        if not entry["reflection_id"]:
            self.reflection_title.setText("Written by hand")
            self.analysis.setPlainText("A lesson stored as proposed (New lesson… or `lessonlab lessons add --proposed`).")
            return
        self.reflection_title.setText(f"Reflection {entry.get('group_title') or entry['reflection_id']}")
        self.analysis.setPlainText(self._analysis_of(entry["reflection_id"]))

    def _analysis_of(self, reflection_id: str) -> str:
        try:
            return review.reflection_reply(self.ws, reflection_id)["analysis"] or "(no analysis)"
        except Exception as exc:  # noqa: BLE001 - shown in place; the reply dialog reports in full
            return f"(cannot read the reflection: {exc})"

    def _diff_ready(self) -> None:
        entry = self.current_item()
        if entry and entry["kind"] != "failed" and entry["old_text"]:
            self.diff_caption.setText(self.diff_caption.text().split(" — ")[0] + " — " + self.diff.summary())

    # --- decisions ---------------------------------------------------------------------------------------------

    def _decidable(self) -> dict | None:
        entry = self.current_item()
        return entry if entry is not None and entry["kind"] != "failed" else None

    def accept(self) -> bool:
        """A: accept the proposal as it is (exactly `lessonlab accept ID`)."""
        entry = self._decidable()
        return entry is not None and self._decide(entry, "accept")

    def edit(self) -> None:
        """E: edit the proposed text inline; Ctrl+Enter accepts the edited text."""
        entry = self._decidable()
        if entry is None:
            return
        if entry["op"] == "retire":
            self.status.setText("A retirement has no text to edit: accept (A) or reject (R) it.")
            return
        self._cancel_inline()
        self.editor.setPlainText(entry["new_text"])
        self.editor.show()
        self.editor_hint.show()
        self.editor.setFocus()
        self.editor.selectAll()

    def _confirm_edit(self) -> None:
        entry = self._decidable()
        if entry is None or self.editor.isHidden():
            return
        text = self.editor.toPlainText()
        edited = text.strip() != (entry["new_text"] or "").strip()
        self._decide(entry, "accept", text=text if edited else None)

    def reject(self) -> None:
        """R: ask for an optional reason inline; Enter rejects."""
        if self._decidable() is None:
            return
        self._cancel_inline()
        self.reason.clear()
        self.reason.show()
        self.reason.setFocus()

    def _confirm_reject(self) -> None:
        entry = self._decidable()
        if entry is not None and not self.reason.isHidden():
            self._decide(entry, "reject", reason=self.reason.text().strip() or None)

    def _cancel_inline(self) -> None:
        for widget in (self.editor, self.editor_hint, self.reason):
            widget.hide()
        self.queue.setFocus()

    def _decide(self, entry: dict, verb: str, *, text: str | None = None, reason: str | None = None) -> bool:
        previous, self._select_row = self._select_row, self._row()  # where the queue reloaded by the notice lands
        if verb == "accept":
            change = perform(self, self.changes, f"Cannot accept {entry['id']}", review.accept, self.ws, entry["id"],
                             text=text)
        else:
            change = perform(self, self.changes, f"Cannot reject {entry['id']}", review.reject, self.ws, entry["id"],
                             reason=reason)
        if change is None:  # the queue stays as it was
            self._select_row = previous
            return False
        states = ", ".join(f"{lid} → {status}" for lid, status in change.statuses.items())
        done = "accepted" + (" (edited)" if text else "") if verb == "accept" else "rejected"
        self._cancel_inline()
        left = len(self.pending_ids())
        self.status.setText(f"{done.capitalize()} {entry['id']}" + (f": {states}" if states else "")
                            + f" — {left} left to review")
        return True

    # --- evidence, replies, retry -------------------------------------------------------------------------------

    def open_evidence(self) -> None:
        """Space: the evidence rollouts side by side on the Compare page."""
        entry = self._decidable()
        if entry is None:
            return
        ids = [ev["id"] for ev in entry["evidence"] if ev["status"] != "missing"]
        if not ids:
            self.status.setText("This proposal cites no evidence rollouts.")
            return
        self.context.navigation.compare_rollouts.emit(ids)

    def show_reply(self) -> ReflectionReplyDialog | None:
        """The current proposal's reflection: analysis and raw reply, in a window of its own."""
        entry = self.current_item()
        reflection_id = entry and (entry["id"] if entry["kind"] == "failed" else entry["reflection_id"])
        if not reflection_id:
            return None
        return open_reflection_dialog(self, self.ws, reflection_id, self._dialogs)

    def retry(self) -> Job | None:
        """Run the selected failed reflection again over the same rollouts, in the background."""
        entry = self.current_item()
        return self.failed.retry() if entry is not None and entry["kind"] == "failed" else None

