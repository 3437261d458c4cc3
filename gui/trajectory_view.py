"""A trajectory drawn as steps: text, tool calls with highlighted arguments, results folded until opened.

Steps are built a batch at a time from ready HTML (see trajectory_display), so a long trajectory never
holds the GUI thread; a result's text is laid out only when its block is expanded. The Compare page lines
steps up across columns (`natural_heights` / `set_row_heights`) and marks where two columns part.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, QUrl, Signal
from PySide6.QtWidgets import (
    QFrame, QLabel, QPlainTextEdit, QSizePolicy, QTextBrowser, QToolButton, QVBoxLayout, QWidget,
)

from .highlight import escape_text
from .style import ROLE_COLORS
from .trajectory_display import ResultDisplay, StepDisplay, TrajectoryDisplay, result_html

STEPS_PER_BATCH = 20          # steps built per turn of the event loop
RESULT_MAX_HEIGHT = 260       # an opened result scrolls inside its block past this
PARTING_COLOR = "#ef6c00"


class SafeTextBrowser(QTextBrowser):
    """A read-only rich text view that never follows links nor loads any resource."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setOpenLinks(False)
        self.setOpenExternalLinks(False)

    def loadResource(self, type_: int, name: QUrl):  # noqa: N802 - Qt override
        return None  # images, stylesheets, anything: never fetched


def rich_label(html: str, object_name: str = "") -> QLabel:
    """A word-wrapped label of our own safe HTML (model text in it is escaped) that never opens links."""
    label = QLabel()
    label.setTextFormat(Qt.TextFormat.RichText)
    label.setWordWrap(True)
    label.setOpenExternalLinks(False)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)  # never wider than the column
    if object_name:
        label.setObjectName(object_name)
    label.setText(html)
    return label


def role_badge(role: str) -> str:
    """A role as a coloured badge (HTML)."""
    color = ROLE_COLORS.get(role, "#c62828")
    return f'<span style="color:white;background:{color};font-weight:bold">&nbsp;{escape_text(role)}&nbsp;</span>'


class ResultBlock(QFrame):
    """A tool result folded to one line (whose result, its size); its text is laid out on first opening."""

    toggled = Signal(bool)

    def __init__(self, result: ResultDisplay, parent=None):
        super().__init__(parent)
        self.result = result
        self.setObjectName("resultBlock")
        self.body: QWidget | None = None   # built on first expansion
        self.button = QToolButton()
        self.button.setObjectName("resultToggle")
        self.button.setCheckable(True)
        self.button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.button.setArrowType(Qt.ArrowType.RightArrow)
        self.button.setText(result.title)
        self.button.setAutoRaise(True)
        self.button.setToolTip("Show or hide this result")
        self.button.toggled.connect(self.set_expanded)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.button, 0, Qt.AlignmentFlag.AlignLeft)

    def is_expanded(self) -> bool:
        """Whether the result's text is showing."""
        return self.button.isChecked()

    def set_expanded(self, on: bool) -> None:
        """Open or fold the result (building its view the first time it opens)."""
        if self.button.isChecked() != on:
            self.button.setChecked(on)   # comes back here through toggled
            return
        self.button.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        if on and self.body is None:
            self.body = self._build_body()
            self.layout().addWidget(self.body)
        if self.body is not None:
            self.body.setVisible(on)
        self.toggled.emit(on)

    def _build_body(self) -> QWidget:
        html = result_html(self.result)
        if html is None:   # too large to highlight: plain text lays out fast at any size
            view = QPlainTextEdit()
            view.setReadOnly(True)
            view.setPlainText(self.result.content)
            view.setFixedHeight(RESULT_MAX_HEIGHT)
        else:
            view = SafeTextBrowser()
            view.setHtml(html)
            view.document().setTextWidth(max(200, self.width() - 30))
            view.setFixedHeight(min(RESULT_MAX_HEIGHT, int(view.document().size().height()) + 8))
        view.setObjectName("resultText")
        view.setStyleSheet("background:#fbfaf8;border:1px solid #e0dcd5")
        return view


class StepBlock(QFrame):
    """One step: its title and figures, what the model said, each call with its result."""

    def __init__(self, step: StepDisplay, parent=None):
        super().__init__(parent)
        self.step = step
        self.parting = False
        self.setObjectName("stepBlock")
        self.results: list[ResultBlock] = []
        self.header = QLabel()
        self.header.setObjectName("stepHeader")
        self.header.setTextFormat(Qt.TextFormat.PlainText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 4)
        layout.setSpacing(3)
        layout.addWidget(self.header)
        if step.text_html:
            layout.addWidget(rich_label(step.text_html, "stepText"))
        for call in step.calls:
            arguments = call.arguments_html.replace('<pre style="', '<pre style="margin:1px 0 0 0;', 1)
            label = rich_label(f'<b style="color:#5d4037">→ {escape_text(call.name)}</b>{arguments}', "toolCall")
            label.setToolTip(call.signature)
            layout.addWidget(label)
            if call.result is not None:
                self._add_result(call.result)
            elif call.unanswered:
                layout.addWidget(rich_label("<i>not run: the rollout stopped at its turn limit</i>"))
        for result in step.other_results:
            self._add_result(result)
        layout.addStretch(1)   # a step made taller to line up with its neighbour keeps its content on top
        self.set_parting(False)

    def _add_result(self, result: ResultDisplay) -> None:
        block = ResultBlock(result)
        self.results.append(block)
        self.layout().addWidget(block)

    def set_parting(self, on: bool, note: str = "") -> None:
        """Mark (or unmark) this step as the first where this trajectory parts from another."""
        self.parting = on
        self.header.setText(self.step.title + (f"   ◆ {note}" if on else ""))
        self.header.setToolTip(note if on else "")
        border = f"2px solid {PARTING_COLOR}" if on else "1px solid #dcdcdc"
        background = "#fff3e0" if on else ("#f1f8e9" if self.step.final else "#ffffff")
        self.setStyleSheet(f"QFrame#stepBlock {{ border:{border}; border-radius:4px; background:{background}; }}"
                           f"QLabel#stepHeader {{ font-weight:bold; color:{PARTING_COLOR if on else '#455a64'}; }}")


class TrajectoryView(QWidget):
    """The prompt, then the steps of one rollout, built a batch at a time; `grown` when its heights change."""

    grown = Signal()

    def __init__(self, trajectory: TrajectoryDisplay, width: int, parent=None):
        super().__init__(parent)
        self.trajectory = trajectory
        self.setObjectName("trajectoryView")
        self.setFixedWidth(width)
        self.steps: list[StepBlock] = []
        self.parting_at: int | None = None
        self.parting_note = ""
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._layout.setSpacing(4)
        self.prompt = rich_label("".join(f"<p style='margin:2px 0'>{role_badge(role)}</p><div>{html}</div>"
                                         for role, html in trajectory.prompt), "trajectoryPrompt")
        self._layout.addWidget(self.prompt)
        self.error: QLabel | None = None
        self._layout.addStretch(1)
        self.build_more()

    def is_complete(self) -> bool:
        """Whether every step has its block."""
        return len(self.steps) == len(self.trajectory.steps)

    def build_more(self) -> None:
        """Build the next batch of step blocks, and schedule the one after (the GUI stays responsive)."""
        start = len(self.steps)
        for display in self.trajectory.steps[start:start + STEPS_PER_BATCH]:
            block = StepBlock(display)
            for result in block.results:
                result.toggled.connect(lambda _on: self.grown.emit())
            if display.index == self.parting_at:
                block.set_parting(True, self.parting_note)
            self.steps.append(block)
            self._layout.insertWidget(self._layout.count() - 1, block)
        if self.is_complete():
            self._add_error()
        else:
            QTimer.singleShot(0, self.build_more)
        self.grown.emit()

    def _add_error(self) -> None:
        if self.trajectory.error is None or self.error is not None:
            return
        self.error = rich_label(f'{role_badge("error")}<br><span style="color:#c62828">'
                                f'{escape_text(self.trajectory.error)}</span>', "trajectoryError")
        self._layout.insertWidget(self._layout.count() - 1, self.error)

    def mark_parting(self, index: int | None, note: str = "") -> None:
        """Mark step `index` (1-based) as where this trajectory parts from another; None clears the mark."""
        self.parting_at, self.parting_note = index, note
        for block in self.steps:
            block.set_parting(block.step.index == index, note)

    def parting_block(self) -> StepBlock | None:
        """The step block marked as the parting one, if built."""
        return next((b for b in self.steps if b.parting), None)

    def natural_heights(self) -> list[int]:
        """The height each row (the prompt, then each built step) needs at this width."""
        width = self.width()
        return [self.prompt.heightForWidth(width)] + [block.heightForWidth(width) for block in self.steps]

    def set_row_heights(self, heights: list[int]) -> None:
        """Give the prompt and the built steps these heights at least (to line up with other columns)."""
        for widget, height in zip([self.prompt, *self.steps], heights):
            widget.setMinimumHeight(height)
