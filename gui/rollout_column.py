"""One column of the Compare page: a rollout's reward, run, lessons and feedback over its transcript or its steps.

A one-call rollout shows as a transcript (one rich text view, its reply word-diffed on demand); a rollout
with tool calls shows as a `TrajectoryView` whose step rows the page lines up across columns.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QFrame, QHBoxLayout, QLabel, QPlainTextEdit, QVBoxLayout, QWidget

from lessonlab.core import formatting
from lessonlab.core.text_diff import word_diff

from .compare_lessons import LessonsList
from .highlight import diff_ops_to_html, text_to_html
from .scoring import is_unscored
from .style import reward_color
from .trajectory_display import parts_html
from .common_widgets import SafeTextBrowser
from .trajectory_view import TrajectoryView, error_html, role_badge
from .workers import start_job

COLUMN_WIDTH = 400


def transcript_html(rollout: dict, *, diff_ops: list[tuple[str, str]] | None = None) -> str:
    """The rollout's messages and output as safe HTML, roles coloured; the output marked by a word diff when given."""
    parts = []
    for message in rollout["messages"]:
        role = str(message.get("role", "?"))
        if role == "system":
            continue  # shown on demand with its lessons, above the transcript
        # parts that are not text (images, files) become placeholders naming type and size, never a repr
        parts.append(_message_block(role, parts_html(message.get("content"))))
    if rollout["status"] == "ok":
        output = rollout["output"] or ""
        body = diff_ops_to_html(diff_ops, show_deleted=False) if diff_ops is not None else text_to_html(output)
        parts.append(_message_block("assistant", body or "<i>(empty reply)</i>"))
    else:
        parts.append(_message_block("error", error_html(rollout["error"] or "")))
    return "".join(parts)


def diffed_transcript_html(job, rollout: dict, reference_output: str) -> str:
    """Background job: the transcript with the output word-diffed against reference_output."""
    return transcript_html(rollout, diff_ops=word_diff(reference_output, rollout["output"] or ""))


def _message_block(role: str, body_html: str) -> str:
    return f'<p style="margin:6px 0 2px 0">{role_badge(role)}</p><div>{body_html}</div>'


class RolloutColumn(QFrame):
    """One rollout: reward badge, run/model/lessons, verifier feedback, system prompt on demand, transcript or steps."""

    grown = Signal()   # its steps were built further, or a result opened or closed

    def __init__(self, rollout: dict, parent=None):
        super().__init__(parent)
        self.rollout = rollout
        self.trajectory = rollout.get("trajectory")   # a TrajectoryDisplay for a rollout with tool calls, else None
        self.trajectory_view: TrajectoryView | None = None
        self.parting: tuple[int | None, str] = (None, "")   # the step where it parts from another column
        self.rendered_with: object = None  # what the transcript was last rendered for (None: not yet)
        self.reference_output: str | None = None
        self._diffing: object = None  # the diff key being computed in the background
        self.setObjectName("rolloutColumn")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setFixedWidth(COLUMN_WIDTH)
        reward = rollout["reward"]
        self.badge = QLabel(formatting.reward_label(reward, "ok") if rollout["status"] == "ok" else "error")
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # a click picks the column the scoring keys apply to
        self.badge.setObjectName("rewardBadge")
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.badge.setFixedWidth(70)
        self.badge.setStyleSheet(
            f"background:{reward_color(reward).name()};color:white;font-weight:bold;border-radius:4px;padding:4px"
        )
        lessons = rollout.get("lesson_count") or 0
        self.info = QLabel()
        self.info.setTextFormat(Qt.TextFormat.PlainText)
        self.info.setText(
            f"{rollout['run_id']} · sample {rollout['sample_index']}\n"
            f"{rollout.get('model') or rollout.get('run_model') or '?'} · {lessons} lesson{'s' if lessons != 1 else ''}"
        )
        self.info.setToolTip(f"rollout {rollout['id']}\nsnapshot {rollout['snapshot_id']}\nendpoint {rollout.get('endpoint')}")
        self.select = QCheckBox("select")
        self.select.setToolTip("Include this rollout in “Reflect on these”")
        head = QHBoxLayout()
        head.addWidget(self.badge)
        head.addWidget(self.info, 1)
        head.addWidget(self.select)
        self.feedback = QLabel()
        self.feedback.setTextFormat(Qt.TextFormat.PlainText)  # feedback may quote the model's output
        self.feedback.setWordWrap(True)
        self.feedback.setStyleSheet("background:#fafafa;border:1px solid #e0e0e0;padding:3px")
        self.feedback.setText(("Not scored yet: press 1 or 0 (or . and a number) to score it"
                               if is_unscored(rollout) else "Verifier: " + (rollout["feedback"] or "—"))
                              if rollout["status"] == "ok" else "Error: " + (rollout["error"] or "?"))
        self.lessons = LessonsList(rollout.get("lessons") or [])
        self.system_prompt = QPlainTextEdit()
        self.system_prompt.setReadOnly(True)
        self.system_prompt.setMaximumHeight(140)
        self.system_prompt.setPlainText(rollout.get("system_prompt") or "")
        self.system_prompt.hide()
        self.transcript = SafeTextBrowser()
        self.transcript.setObjectName("transcript")
        # Everything above the transcript or steps, in one block the page can line up across columns.
        self.head = QWidget()
        head_layout = QVBoxLayout(self.head)
        head_layout.setContentsMargins(0, 0, 0, 0)
        head_layout.addLayout(head)
        head_layout.addWidget(self.feedback)
        head_layout.addWidget(self.lessons)
        head_layout.addWidget(self.system_prompt)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.head)
        if self.trajectory is None:
            layout.addWidget(self.transcript, 1)
        else:
            self.transcript.hide()   # steps instead, built when the column first comes into view
            layout.addStretch(1)

    @property
    def reward(self) -> float | None:
        """The rollout's reward (None for an error)."""
        return self.rollout["reward"]

    def saw(self, lesson_id: str) -> bool:
        """Whether lesson_id (any version) was in this rollout's prompt."""
        return lesson_id in self.lessons.lesson_ids

    def set_reference(self, reference_output: str | None) -> None:
        """Diff the output against reference_output (None: plain view); re-render lazily."""
        # A trajectory is compared step by step (the page marks where it parts), not by a word diff.
        self.reference_output = reference_output if self.trajectory is None else None

    def ensure_rendered(self) -> bool:
        """Highlight and show the transcript (or build the steps) if not done for the current mode; True if now."""
        if self.trajectory is not None:
            return self._build_trajectory()
        # A diff is computed in the background (long replies must not freeze the window); the column
        # shows the plain transcript until it arrives.
        key = ("diff", self.reference_output) if self.reference_output is not None else "plain"
        if self.rendered_with == key or self._diffing == key:
            return False
        if self.reference_output is None or self.rollout["status"] != "ok":
            # the plain view, or an error: it has no output to diff
            self.transcript.setHtml(transcript_html(self.rollout))
            self.rendered_with = key
            return True
        self._diffing = key
        start_job("word diff", diffed_transcript_html, self.rollout, self.reference_output, owner=self,
                  on_done=lambda html, k=key: self._diff_ready(k, html), error_title="Cannot diff the replies")
        if self.rendered_with is None:
            self.transcript.setHtml(transcript_html(self.rollout))
            self.rendered_with = "plain"
            return True
        return False

    def _build_trajectory(self) -> bool:
        if self.trajectory_view is not None:
            return False
        layout = self.layout()
        margins = layout.contentsMargins()
        self.trajectory_view = TrajectoryView(self.trajectory, COLUMN_WIDTH - margins.left() - margins.right() - 2)
        self.trajectory_view.mark_parting(*self.parting)
        self.trajectory_view.grown.connect(self.grown)
        layout.insertWidget(layout.count() - 1, self.trajectory_view)
        self.trajectory_view.show()   # now, not at the next turn of the event loop: it is measured right away
        self.grown.emit()
        self.rendered_with = "steps"
        return True

    def fill_to(self, bottom: int) -> bool:
        """Append a batch of steps if the built ones end above `bottom` (in column coordinates); True if it did."""
        view = self.trajectory_view
        if view is None or view.is_complete() or view.y() + view.height() >= bottom:
            return False
        view.append_steps()
        return True

    def set_parting(self, index: int | None, note: str = "") -> None:
        """Mark step `index` as where this trajectory parts from another column (None: no mark)."""
        self.parting = (index, note)
        if self.trajectory_view is not None:
            self.trajectory_view.mark_parting(index, note)

    def _diff_ready(self, key, html: str) -> None:
        self._diffing = None
        current = ("diff", self.reference_output) if self.reference_output is not None else "plain"
        if key != current:
            self.ensure_rendered()  # the mode changed while the diff was computed
            return
        self.transcript.setHtml(html)
        self.rendered_with = key
