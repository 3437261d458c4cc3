"""A trajectory drawn as steps in one rich text view: text, calls with highlighted arguments, results folded.

One document per column, not a widget per step: Qt lays out a 200-step document far faster than hundreds
of labels. Steps are appended a batch at a time, from HTML prepared off the GUI thread (trajectory_display), as they
come into view, so a long trajectory opens at once and never holds the GUI thread; a result's text enters
the document only when its line is clicked. The view is as tall as its document (the page scrolls), and the Compare page lines steps up across
columns by padding the end of each step (`step_heights` / `pad_steps`).
"""
from __future__ import annotations

from PySide6.QtCore import Qt, QUrl, Signal
from PySide6.QtGui import QColor, QTextBlock, QTextBlockFormat, QTextCursor
from PySide6.QtWidgets import QFrame

from .common_widgets import SafeTextBrowser
from .highlight import escape_text
from .style import ROLE_COLORS
from .trajectory_display import ResultDisplay, TrajectoryDisplay, result_html

FIRST_BATCH = 4               # the first batch, small: the page shows at once, more follow turn by turn
STEPS_PER_BATCH = 6           # steps appended per turn of the event loop as more come into view (~20 ms)
PARTING_COLOR = "#ef6c00"
STEP_GAP = 10                 # pixels above each step


RESULT_FORMAT = QTextBlockFormat()
RESULT_FORMAT.setLeftMargin(14)
RESULT_FORMAT.setBackground(QColor("#f6f3ee"))


def role_badge(role: str) -> str:
    """A role as a coloured badge (HTML)."""
    color = ROLE_COLORS.get(role, "#c62828")
    return f'<span style="color:white;background:{color};font-weight:bold">&nbsp;{escape_text(role)}&nbsp;</span>'


def error_html(error: str) -> str:
    """A rollout's error as red text (HTML), shown under an `error` badge."""
    return f'<span style="color:#c62828">{escape_text(error)}</span>'


def header_html(index: int, title: str, *, final: bool, parting_note: str | None) -> str:
    """A step's title line (anchored `step-N`, so the view finds it); the parting step's in orange with its note."""
    color = PARTING_COLOR if parting_note else "#2e7d32" if final else "#455a64"
    html = (f'<a name="step-{index}"><span style="color:white;background:{color};font-weight:bold">'
            f'&nbsp;{escape_text(title)}&nbsp;</span></a>')
    if parting_note:
        html += f' <b style="color:{PARTING_COLOR}">◆ {escape_text(parting_note)}</b>'
    return html


def result_link_html(result: ResultDisplay, key: str, expanded: bool) -> str:
    """The link standing for a result: arrow, whose result, its size."""
    arrow = "▾" if expanded else "▸"
    return (f'<a href="result:{key}" style="color:#5d4037;text-decoration:none">{arrow} '
            f'{escape_text(result.title)}</a>')


def result_line_html(result: ResultDisplay, key: str, expanded: bool) -> str:
    """The clickable line (a paragraph of its own, indented) standing for a result."""
    return f'<p style="margin-left:12px">{result_link_html(result, key, expanded)}</p>'


def _select_block(block: QTextBlock) -> QTextCursor:
    """A cursor selecting the block's text (to write it anew)."""
    cursor = QTextCursor(block)
    cursor.movePosition(QTextCursor.MoveOperation.EndOfBlock, QTextCursor.MoveMode.KeepAnchor)
    return cursor


class TrajectoryView(SafeTextBrowser):
    """One rollout's prompt and steps; `grown` when its height changes (steps appended, a result opened)."""

    grown = Signal()

    def __init__(self, trajectory: TrajectoryDisplay, width: int, parent=None):
        super().__init__(parent)
        self.trajectory = trajectory
        self.steps = trajectory.steps
        self.setObjectName("trajectoryView")
        self.setFixedWidth(width)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.document().setTextWidth(width)
        self.document().setDocumentMargin(2)
        self.parting_at: int | None = None
        self.parting_note = ""
        self.built = 0                                   # steps in the document so far
        # Blocks, not positions: a QTextBlock keeps pointing at its block when text is inserted before it.
        self._heads: list[QTextBlock] = []               # each step's title block
        self._result_lines: dict[str, QTextBlock] = {}   # result key -> its clickable line
        self._opened: dict[str, tuple[QTextBlock, QTextBlock]] = {}     # result key -> first, last block of its text
        self._padded: dict[int, tuple[QTextBlock, float, float]] = {}   # row -> (its last block, own margin, pad)
        self.anchorClicked.connect(self._clicked)
        cursor = QTextCursor(self.document())
        cursor.insertHtml("".join(f"<p>{role_badge(role)}</p>{html}" for role, html in trajectory.prompt) or " ")
        self._fit_height()   # the steps come a batch at a time, as the page asks (RolloutColumn.fill_to)

    # --- building ---------------------------------------------------------------------------------

    def is_complete(self) -> bool:
        """Whether every step is in the document."""
        return self.built == len(self.steps)

    def append_steps(self) -> None:
        """Append the next batch of steps (the page asks for more as they come into view)."""
        # One insertHtml per batch: Qt parses and lays out a batch at once far faster than piece by piece.
        # Padding stays: the rows built so far keep their last blocks (the last row is never padded).
        batch = self.steps[self.built:self.built + (STEPS_PER_BATCH if self.built else FIRST_BATCH)]
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        gap = QTextBlockFormat()   # the batch's first title merges into this block: it carries the step gap
        gap.setTopMargin(STEP_GAP)
        cursor.insertBlock(gap)
        first = cursor.block()
        cursor.insertHtml("".join(self._step_html(step) for step in batch))
        self._index_blocks(first)
        self.built += len(batch)
        if self.is_complete():
            self._append_error(cursor)
        self._fit_height()

    def _step_html(self, step) -> str:
        note = self.parting_note if step.index == self.parting_at else None
        head = header_html(step.index, step.title, final=step.final, parting_note=note)
        parts = [f'<p style="margin-top:{STEP_GAP}px">{head}</p>']
        if step.text_html:
            parts.append(f'<p style="margin:2px 0">{step.text_html}</p>')
        for n, call in enumerate(step.calls):
            parts.append(f'<p style="margin:2px 0"><b style="color:#5d4037">→ {escape_text(call.name)}</b></p>'
                         f'{call.arguments_html}')
            if call.result is not None:
                parts.append(result_line_html(call.result, f"{step.index}:{n}", expanded=False))
            elif call.unanswered:
                parts.append("<p><i>not run: the rollout stopped at its turn limit</i></p>")
        for n, result in enumerate(step.other_results, start=len(step.calls)):
            parts.append(result_line_html(result, f"{step.index}:{n}", expanded=False))
        return "".join(parts)

    def _index_blocks(self, block: QTextBlock) -> None:
        """Find the new steps' title blocks and result lines by the anchors their HTML put on them."""
        while block.isValid():
            cursor = QTextCursor(block)
            cursor.movePosition(QTextCursor.MoveOperation.NextCharacter)
            fmt = cursor.charFormat()
            href = fmt.anchorHref()
            if href.startswith("result:"):
                self._result_lines[href.removeprefix("result:")] = block
            elif any(name.startswith("step-") for name in fmt.anchorNames()):
                self._heads.append(block)
            block = block.next()

    def _append_error(self, cursor: QTextCursor) -> None:
        if self.trajectory.error is None:
            return
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertBlock()
        cursor.insertHtml(f'<p>{role_badge("error")}</p>{error_html(self.trajectory.error)}')

    def _fit_height(self) -> None:
        self.setFixedHeight(int(self.document().size().height()) + 4)
        self.grown.emit()

    # --- results ----------------------------------------------------------------------------------

    def result_keys(self) -> list[str]:
        """The keys ('step:n') of the results in the document so far, in order."""
        return list(self._result_lines)

    def result_of(self, key: str) -> ResultDisplay:
        """The result a key stands for."""
        index, n = (int(part) for part in key.split(":"))
        step = self.steps[index - 1]
        return step.calls[n].result if n < len(step.calls) else step.other_results[n - len(step.calls)]

    def is_expanded(self, key: str) -> bool:
        """Whether the result's text is showing."""
        return key in self._opened

    def set_expanded(self, key: str, on: bool) -> None:
        """Open a result (its text enters the document below its line) or fold it again."""
        if on == self.is_expanded(key):
            return
        self.clear_padding(int(key.split(":")[0]))   # the step's last block may change; the page pads it again
        line = _select_block(self._result_lines[key])
        result = self.result_of(key)
        line.insertHtml(result_link_html(result, key, expanded=on))
        if on:
            line.insertBlock(QTextBlockFormat())
            first = line.block()
            html = result_html(result)
            if html is None:   # too large to highlight: plain text, which lays out fast
                line.insertText(result.content)
            else:
                line.insertHtml(html)
            shown = QTextCursor(first)   # indented and shaded, so it reads as the result of the line above
            shown.setPosition(line.position(), QTextCursor.MoveMode.KeepAnchor)
            shown.mergeBlockFormat(RESULT_FORMAT)
            self._opened[key] = (first, line.block())
        else:
            first, last = self._opened.pop(key)
            cut = QTextCursor(self.document())
            cut.setPosition(first.position() - 1)   # from the end of the result's line
            cut.setPosition(last.position() + last.length() - 1, QTextCursor.MoveMode.KeepAnchor)
            cut.removeSelectedText()
        self._fit_height()

    def _clicked(self, url: QUrl) -> None:
        text = url.toString()
        if text.startswith("result:"):
            key = text.removeprefix("result:")
            self.set_expanded(key, not self.is_expanded(key))

    # --- lining up and marking --------------------------------------------------------------------

    def mark_parting(self, index: int | None, note: str = "") -> None:
        """Mark step `index` (1-based) as where this trajectory parts from another; None clears the mark."""
        previous, self.parting_at, self.parting_note = self.parting_at, index, note
        for step_index in {previous, index} - {None}:
            if step_index <= self.built:
                self._rewrite_header(step_index)

    def _rewrite_header(self, index: int) -> None:
        step = self.steps[index - 1]
        cursor = _select_block(self._heads[index - 1])
        note = self.parting_note if index == self.parting_at else None
        cursor.insertHtml(header_html(index, step.title, final=step.final, parting_note=note))

    def header_text(self, index: int) -> str:
        """The title line of step `index` as plain text."""
        return self._heads[index - 1].text()

    def step_tops(self) -> list[float]:
        """The y of each built step's title in the view."""
        layout = self.document().documentLayout()
        return [layout.blockBoundingRect(head).y() for head in self._heads]

    def _row_last_block(self, row: int):
        """The last block of a row: row 0 is the prompt, row i the i-th step."""
        if row < len(self._heads):
            return self._heads[row].previous()
        return self.document().lastBlock()

    def step_heights(self) -> list[float]:
        """Each row's own height (the prompt, then each built step), padding added for lining up left out."""
        tops = [0.0] + self.step_tops()
        ends = tops[1:] + [self.document().size().height()]
        return [end - top - self._padded.get(row, (None, 0.0, 0.0))[2]
                for row, (top, end) in enumerate(zip(tops, ends))]

    def pad_rows(self, rows: list[float]) -> None:
        """Pad the end of the prompt and of each built step so each row is at least as tall as `rows`."""
        changed = False
        # The last row is left alone: nothing below it needs lining up (and Qt leaves its margin out of the height).
        for row, (want, own) in enumerate(zip(rows, self.step_heights()[:len(self._heads)])):
            need = max(0.0, want - own)
            block, base, pad = self._padded.get(row, (None, 0.0, 0.0))
            if abs(need - pad) < 0.5:
                continue
            if block is None:
                block = self._row_last_block(row)
                base = block.blockFormat().bottomMargin()
            self._set_bottom(block, base + need)
            self._padded[row] = (block, base, need)
            changed = True
        if changed:
            self._fit_height()

    def clear_padding(self, row: int | None = None) -> None:
        """Take out the padding of one row (or of every row) before its blocks change."""
        for padded in list(self._padded) if row is None else [row]:
            if padded in self._padded:
                block, base, _pad = self._padded.pop(padded)
                self._set_bottom(block, base)

    @staticmethod
    def _set_bottom(block: QTextBlock, margin: float) -> None:
        fmt = QTextBlockFormat()
        fmt.setBottomMargin(margin)
        QTextCursor(block).mergeBlockFormat(fmt)
