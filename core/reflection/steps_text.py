"""A trajectory as the reflecting model reads it: numbered steps (`ro_x#N`), calls with arguments, results cut to a budget.

The steps the model most needs stay whole: the last two (where the attempt ended) and any step whose call
failed (a tool error, arguments that are not JSON). Earlier results are cut in the middle; when the whole
trajectory is still over its budget, earlier results are reduced to their size and then runs of earlier
steps to one line, so a 200-step attempt still fits without losing where it went wrong.
"""
from __future__ import annotations


from lessonlab.core.runs.trajectory import Step, ToolCall, ToolResult
from lessonlab.core.runs.trajectory_text import call_signature
from lessonlab.core.formatting import cut_middle

EARLIER_RESULT_CHARS = 400      # an earlier step's tool result is cut to this many characters
WHOLE_RESULT_CHARS = 1500       # a kept-whole step's result (and the final answer) is cut only past this
ARGUMENT_CHARS = 300            # a call's arguments as shown
ERROR_STARTS = ("error", "tool error", "exception", "traceback")


def cite(rollout_id: str, index: int) -> str:
    """The evidence id of one step: `ro_x#4`."""
    return f"{rollout_id}#{index}"


def call_text(call: ToolCall) -> str:
    """A call as `name(key="value", n=2)` (as `show` prints it), cut in the middle for the reflection budget."""
    signature = call_signature(call)
    if len(signature) <= ARGUMENT_CHARS:
        return signature
    name = call.name or "?"
    return f"{name}({cut_middle(signature[len(name) + 1:-1], ARGUMENT_CHARS)})"


def step_failed(step: Step) -> bool:
    """Whether a step went visibly wrong: a tool result that reports an error, or arguments that do not parse."""
    if any(call.parsed_arguments() is None for call in step.tool_calls):
        return True
    return any(result.content.lstrip().lower().startswith(ERROR_STARTS) for result in step.results)


def _result_line(result: ToolResult, limit: int | None) -> str:
    who = result.name or "result"
    size = f"{len(result.content):,} character{'s' if len(result.content) != 1 else ''}"
    stored_cut = f", cut when stored from {result.cut_bytes:,} bytes" if result.cut_bytes else ""
    if limit is None:
        return f"  ← {who}: [{size}{stored_cut}, not shown]"
    body = cut_middle(result.content, limit).replace("\n", "\n    ")
    return f"  ← {who} ({size}{stored_cut}): {body}"


def _step_block(rollout_id: str, step: Step, result_limit: int | None) -> str:
    """One numbered step: what the model said, each call (→) and each result (←)."""
    head = f"[{cite(rollout_id, step.index)}]"
    if step.final and not step.tool_calls:
        return f"{head} final answer:\n{cut_middle(step.content, WHOLE_RESULT_CHARS)}"
    # A kept-whole step keeps what the model said too (a Hermes-protocol call is written in that text).
    said = cut_middle(step.content, WHOLE_RESULT_CHARS if result_limit == WHOLE_RESULT_CHARS else EARLIER_RESULT_CHARS)
    lines = [f"{head} model: {said}" if step.content.strip() else head]
    not_run = " (not run: the turn limit was reached)" if step.final else ""
    lines += [f"  → {call_text(call)}{not_run}" for call in step.tool_calls]
    lines += [_result_line(result, result_limit) for result in step.results]
    return "\n".join(lines)


def _kept_whole(steps: list[Step]) -> set[int]:
    return {step.index for step in steps[-2:]} | {step.index for step in steps if step_failed(step)}


def _collapsed(rollout_id: str, steps: list[Step], whole: set[int]) -> list[str]:
    """The first step and the kept-whole ones in full; each run of other steps as one summary line."""
    blocks: list[str] = []
    skipped: list[Step] = []

    def flush() -> None:
        if skipped:
            names: dict[str, int] = {}
            for step in skipped:
                for call in step.tool_calls:
                    names[call.name] = names.get(call.name, 0) + 1
            calls = ", ".join(f"{name} ×{n}" for name, n in names.items()) or "no calls"
            blocks.append(f"[steps {skipped[0].index}–{skipped[-1].index} of {rollout_id} left out: "
                          f"{len(skipped)} step(s); {calls}]")
            skipped.clear()

    for step in steps:
        if step.index == 1 or step.index in whole:
            flush()
            blocks.append(_step_block(rollout_id, step, WHOLE_RESULT_CHARS if step.index in whole else None))
        else:
            skipped.append(step)
    flush()
    return blocks


def render_steps(rollout_id: str, steps: list[Step], budget_chars: int) -> str:
    """The numbered steps of one rollout, cut until they fit `budget_chars` (or as far as cutting goes)."""
    whole = _kept_whole(steps)
    for earlier_limit in (EARLIER_RESULT_CHARS, None):
        blocks = [_step_block(rollout_id, step, WHOLE_RESULT_CHARS if step.index in whole else earlier_limit)
                  for step in steps]
        text = "\n".join(blocks)
        if len(text) <= budget_chars:
            return text
    return "\n".join(_collapsed(rollout_id, steps, whole))
