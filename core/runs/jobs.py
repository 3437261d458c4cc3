"""Planning a run's execution: the rollouts it still owes, as jobs (one task × one sample each)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from lessonlab.core.lessons.snapshots import Snapshot, build_messages
from lessonlab.core.storage.workspace import Workspace
from lessonlab.core.tools import DEFAULT_MAX_TURNS


@dataclass
class RolloutJob:
    """One rollout to send: the messages under the run's snapshot, the verifier, and the task as verifiers see it."""

    task_id: str
    sample_index: int
    messages: list[dict]
    verifier: dict
    task: dict
    tools: list[str] = field(default_factory=list)   # tool names as the suite wrote them ('letters.spell', 'calc')
    max_turns: int = DEFAULT_MAX_TURNS


def rollout_seed(run_seed: int, task_id: str, sample_index: int) -> int:
    """The seed for one sample: the same task and sample index get the same seed under the same run seed."""
    digest = hashlib.sha256(f"{run_seed}:{task_id}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def pending_jobs(ws: Workspace, run: dict, snapshot: Snapshot) -> list[RolloutJob]:
    """The run's rollouts not yet stored, sample-major (a rollout is stored whole or not at all)."""
    rows = ws.query(
        "SELECT rt.position, t.* FROM run_tasks rt JOIN tasks t ON t.id = rt.task_id"
        " WHERE rt.run_id = ? ORDER BY rt.position",
        (run["id"],),
    )
    done = {
        (r["task_id"], r["sample_index"])
        for r in ws.query("SELECT task_id, sample_index FROM rollouts WHERE run_id = ?", (run["id"],))
    }
    # Sample-major order: every task gets its first sample before any gets a second,
    # so an interrupted run still covers as many tasks as possible.
    return [_job(row, sample_index, snapshot)
            for sample_index in range(run["samples"])
            for row in rows if (row["id"], sample_index) not in done]


def task_tool_fields(row: dict) -> dict:
    """`tools` and `max_turns` of a stored task row, as `toolbox_for` reads them (nothing for a one-call task)."""
    fields: dict = {}
    if row.get("tools_json"):
        fields["tools"] = json.loads(row["tools_json"])
    if row.get("max_turns") is not None:
        fields["max_turns"] = row["max_turns"]
    return fields


def _job(row: dict, sample_index: int, snapshot: Snapshot) -> RolloutJob:
    prompt = json.loads(row["prompt_json"])
    verifier = json.loads(row["verifier_json"])
    task_messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt
    tool_fields = task_tool_fields(row)
    return RolloutJob(
        task_id=row["id"],
        sample_index=sample_index,
        messages=build_messages(snapshot.system_prompt, task_messages),
        verifier=verifier,
        task={
            "id": row["name"],
            "suite": row["suite"],
            "prompt": prompt,
            "verifier": verifier,
            "metadata": json.loads(row["metadata_json"]),
            "split": row["split"],
            **tool_fields,
        },
        tools=tool_fields.get("tools", []),
        max_turns=tool_fields.get("max_turns") or DEFAULT_MAX_TURNS,
    )
