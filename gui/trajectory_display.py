"""A rollout's steps made ready to draw, off the GUI thread: calls highlighted, results measured but not rendered.

`prepare_trajectory` runs in the Compare page's loading job, so the GUI thread only builds widgets from
ready HTML; a tool result stays plain text until someone expands it (`result_html`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

from lessonlab.core.runs import trajectory_text as tt
from lessonlab.core.runs.trajectory import Step, ToolResult, prompt_length

from .highlight import escape_text, highlight_code, text_to_html

# A result up to this size is highlighted when expanded; a larger one is shown as plain text (fast to lay out).
HIGHLIGHT_RESULT_BYTES = 64 * 1024
PLACEHOLDER_STYLE = "color:#555;background:#eceff1;font-style:italic"


@dataclass
class ResultDisplay:
    """One tool result: its title (whose result, its size, a stored cut) and its text, rendered only when opened."""

    title: str
    content: str
    size: int


@dataclass
class CallDisplay:
    """One tool call: its name and its arguments as highlighted, pretty-printed JSON."""

    name: str
    arguments_html: str
    result: ResultDisplay | None = None
    unanswered: bool = False     # asked for in the last reply of a rollout stopped at its turn limit


@dataclass
class StepDisplay:
    """One step ready to draw."""

    index: int
    final: bool
    title: str
    text_html: str
    calls: list[CallDisplay] = field(default_factory=list)
    other_results: list[ResultDisplay] = field(default_factory=list)   # results answering no call (Hermes replies)


@dataclass
class TrajectoryDisplay:
    """A rollout's prompt (without the system prompt) and its steps, ready to draw."""

    prompt: list[tuple[str, str]]          # (role, html) of each message before the first step
    steps: list[StepDisplay]
    error: str | None = None
    signatures: list[list[tuple[str, str]]] = field(default_factory=list)   # each step's calls, to find partings


def parts_html(content) -> str:
    """A message's content as safe HTML; parts that are not text as a grey placeholder naming type and size."""
    out = []
    for part in tt.content_parts(content):
        out.append(text_to_html(part.text) if part.is_text
                   else f'<span style="{PLACEHOLDER_STYLE}">&nbsp;{escape_text(part.text)}&nbsp;</span>')
    return "<br>".join(out)


def result_display(result: ToolResult, call_name: str | None = None) -> ResultDisplay:
    """A result's title and text: 'search result · 5.1 KB' (with the stored cut when there was one)."""
    size = tt.text_size(result.content)
    whose = f"{call_name} result" if call_name else f"{result.name or 'tool'} message"
    title = f"{whose} · {tt.size_text(size)}"
    if result.cut_bytes:
        title += f" (cut when stored, from {tt.size_text(result.cut_bytes)})"
    return ResultDisplay(title=title, content=result.content, size=size)


def result_html(result: ResultDisplay) -> str | None:
    """The result highlighted as HTML, or None when it is too large and should be shown as plain text."""
    if result.size > HIGHLIGHT_RESULT_BYTES:
        return None
    return text_to_html(result.content) or "<i>(empty result)</i>"


def step_display(step: Step) -> StepDisplay:
    """One step: its title with figures, its text, each call with its own result beside it."""
    figures = tt.figures_text(step.figures)
    title = f"Step {step.index}" + (" · final reply" if step.final else "") + (f" · {figures}" if figures else "")
    by_call = {r.tool_call_id: r for r in step.results if r.tool_call_id}
    call_ids = {c.id for c in step.tool_calls if c.id}
    calls = []
    for call in step.tool_calls:
        answer = by_call.get(call.id) if call.id else None
        calls.append(CallDisplay(
            name=call.name or "?",
            arguments_html=highlight_code(tt.pretty_arguments(call), "json" if call.parsed_arguments() is not None else ""),
            result=result_display(answer, call.name) if answer is not None else None,
            unanswered=step.final))
    others = [result_display(r) for r in step.results if not r.tool_call_id or r.tool_call_id not in call_ids]
    return StepDisplay(index=step.index, final=step.final, title=title, text_html=text_to_html(step.content),
                       calls=calls, other_results=others)


def _yielding(items, every_s: float = 0.001):
    """Pass items through, letting go of Python's lock at least every `every_s` seconds.

    The job and the GUI thread share that lock; left to the interpreter's 5 ms switching, every callback the
    GUI thread runs queues behind the job's highlighting, and a 200-step pair held the window 25–55 ms.
    Letting go after every item instead slows the job when the machine is busy (each hand-back waits).
    """
    last = time.perf_counter()
    for item in items:
        yield item
        if time.perf_counter() - last >= every_s:
            time.sleep(0)
            last = time.perf_counter()


def prepare_trajectory(rollout: dict) -> TrajectoryDisplay | None:
    """What Compare draws for a multi-step rollout (None: a one-call rollout, drawn as a transcript)."""
    steps: list[Step] = rollout.get("steps") or []
    if not tt.is_trajectory(steps):
        return None
    messages = rollout["messages"]
    first = prompt_length(messages)
    prompt = [(str(m.get("role", "?")), parts_html(m.get("content"))) for m in messages[:first]
              if m.get("role") != "system"]   # the system prompt is shown on demand, with its lessons
    error = rollout["error"] if rollout.get("status") != "ok" else None
    return TrajectoryDisplay(prompt=prompt, steps=list(_yielding(step_display(s) for s in steps)), error=error,
                             signatures=[tt.step_signature(s) for s in steps])
