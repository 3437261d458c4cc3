"""Evidence a proposal cites: rollout ids, or one step of a multi-step rollout as `ro_x#N`.

A proposal stores the rollouts it cites in `evidence_json` (as always) and the steps in
`evidence_steps_json`, so everything that reads rollout ids keeps working and Review can show the step.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from lessonlab.core.formatting import cut_middle
from lessonlab.core.runs.trajectory import read_trajectory
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.reflection.steps_text import call_text

_STEP_CITE = re.compile(r"^(?P<rollout>[^#\s]+)#(?P<step>\d+)$")


def split_cite(ref: str) -> tuple[str, int | None]:
    """`ro_x#4` → ("ro_x", 4); a plain rollout id → (id, None)."""
    match = _STEP_CITE.match(ref.strip())
    if match is None:
        return ref.strip(), None
    return match["rollout"], int(match["step"])


@dataclass
class CheckedEvidence:
    """Evidence refs sorted into kept rollouts, kept step cites, and the refs dropped."""

    rollout_ids: list[str] = field(default_factory=list)
    step_cites: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)      # refs to rollouts that were not in the context
    bad_steps: list[str] = field(default_factory=list)    # "ro_x#9 (ro_x has 4 numbered steps)"

    def note(self) -> str | None:
        """What was dropped, for the proposal's note (None: nothing)."""
        parts = []
        if self.unknown:
            parts.append(f"dropped evidence id(s) that were not in the reflection's context: {', '.join(self.unknown)}")
        if self.bad_steps:
            parts.append(f"dropped step citation(s): {', '.join(self.bad_steps)}")
        return "; ".join(parts) or None


def check_evidence(refs: list[str], included: set[str], steps: dict[str, int]) -> CheckedEvidence:
    """Keep refs to rollouts in the context, and `ro_x#N` where ro_x was shown with at least N steps."""
    checked = CheckedEvidence()
    for ref in dict.fromkeys(refs):
        rollout_id, step = split_cite(ref)
        if rollout_id not in included:
            checked.unknown.append(ref)
            continue
        if rollout_id not in checked.rollout_ids:
            checked.rollout_ids.append(rollout_id)
        if step is None:
            continue
        if 1 <= step <= steps.get(rollout_id, 0):
            checked.step_cites.append(f"{rollout_id}#{step}")
        else:
            have = steps.get(rollout_id, 0)
            checked.bad_steps.append(f"{ref} ({rollout_id} has {have} numbered step(s))" if have
                                     else f"{ref} ({rollout_id} is a single reply without numbered steps)")
    return checked


def cited_steps(ws: Workspace, cites: list[str],
                trajectories: dict[str, list | None] | None = None) -> list[dict]:
    """Each cited step as shown in Review: its call(s) and result(s), or why it cannot be shown.

    `trajectories` (rollout id -> its steps) may be shared by several calls, so a rollout that many
    proposals cite is read and parsed once."""
    out: list[dict] = []
    trajectories = {} if trajectories is None else trajectories
    for ref in cites:
        rollout_id, index = split_cite(ref)
        if rollout_id not in trajectories:
            row = ws.one("SELECT messages_json, output, steps_json FROM rollout_texts WHERE rollout_id = ?",
                         (rollout_id,))
            trajectories[rollout_id] = (read_trajectory(json.loads(row["messages_json"]), row["output"],
                                                        row["steps_json"])[1] if row else None)
        steps = trajectories[rollout_id]
        step = steps[index - 1] if steps and index and 0 < index <= len(steps) else None
        out.append(_step_detail(ref, rollout_id, index, step))
    return out


def _step_detail(ref: str, rollout_id: str, index: int | None, step) -> dict:
    detail = {"cite": ref, "rollout_id": rollout_id, "step": index, "found": step is not None,
              "content": "", "calls": [], "results": [], "final": False}
    if step is not None:
        detail.update(content=step.content, final=step.final, calls=[call_text(c) for c in step.tool_calls],
                      results=[{"name": r.name, "content": r.content, "cut_bytes": r.cut_bytes} for r in step.results])
    return detail


def cited_step_text(detail: dict, result_chars: int = 600) -> str:
    """A cited step as plain text for people: what the model said, its calls (→) and their results (←)."""
    head = f"{detail['cite']} — step {detail['step']} of {detail['rollout_id']}"
    if not detail["found"]:
        return f"{head}: no longer in the workspace"
    lines = [head + (" (the final answer)" if detail["final"] and not detail["calls"] else "")]
    if detail["content"].strip():
        lines.append(cut_middle(detail["content"].strip(), result_chars))
    lines += [f"→ {call}" for call in detail["calls"]]
    for result in detail["results"]:
        cut = f" (cut when stored from {result['cut_bytes']:,} bytes)" if result["cut_bytes"] else ""
        lines.append(f"← {result['name'] or 'result'}{cut}: {cut_middle(result['content'], result_chars)}")
    return "\n".join(lines)
