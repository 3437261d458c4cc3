"""Storing a reflection: the running row, a failed call, and the reply with its proposals — each in one transaction."""
from __future__ import annotations

import json

from lessonlab.core.resources import sha256
from lessonlab.core.runs.owner import this_process
from lessonlab.core.storage.workspace import Workspace, new_id, now
from lessonlab.core.reflection.leakage import check_leakage, leakage_pool
from lessonlab.core.reflection.parsing import validate_operation
from lessonlab.core.reflection.prompting import MetaPrompt, ReflectionRequest


def insert_running(ws: Workspace, request: ReflectionRequest, prompt: MetaPrompt, mode: str) -> str:
    """A new reflection in status running, with the rollouts it considered; returns its id."""
    reflection_id = new_id("ref", 4)
    owner = this_process()   # a reflection whose process dies reads as interrupted, not running forever
    context = request.context
    reasons = {o["rollout_id"]: o["reason"] for o in context.omitted}
    with ws.transaction():
        ws.db["reflections"].insert({
            "id": reflection_id, "kind": request.kind, "endpoint": request.endpoint.name,
            "model": request.endpoint.model, "server_model": None, "prompt_name": request.prompt_name,
            "prompt_hash": sha256(request.template), "request_json": json.dumps(prompt.first_request),
            "raw_reply": None, "analysis": None, "status": "running", "error": None,
            "context_json": json.dumps(prompt.context_record), "prompt_tokens": None, "completion_tokens": None,
            "created_at": now(), "response_mode": mode,
            "owner_pid": owner.pid, "owner_host": owner.host, "owner_started": owner.started,
        })
        ws.conn.executemany(
            "INSERT OR IGNORE INTO reflection_rollouts (reflection_id, rollout_id, included, reason) VALUES (?, ?, ?, ?)",
            [(reflection_id, r["id"], int(r["id"] in context.included), reasons.get(r["id"])) for r in request.rows],
        )
    return reflection_id


def store_failure(ws: Workspace, reflection_id: str, error: str, partial_reply: str | None) -> None:
    """Mark the reflection failed, keeping whatever part of the reply had arrived."""
    with ws.transaction():
        ws.conn.execute("UPDATE reflections SET status = 'failed', error = ?, raw_reply = ? WHERE id = ?",
                        (error, partial_reply, reflection_id))


def proposal_rows(ws: Workspace, request: ReflectionRequest, reflection_id: str, operations: list) -> list[dict]:
    """One proposal row per operation: pending, or invalid with the reason; leakage findings attached."""
    pool = leakage_pool(ws, request.leak_suites)
    included = set(request.context.included)
    seen: set = set()
    rows = []
    for op in operations:
        row = validate_operation(op, lessons=request.lessons, evidence_ids=included, allowed_ops=request.allowed_ops,
                                 seen_texts=seen, steps=request.context.steps)
        leaks = check_leakage(row["text"], pool) if row["text"] else []
        rows.append({
            "id": new_id("prop", 4), "reflection_id": reflection_id, "op": row["op"],
            "status": "invalid" if row["invalid_reason"] else "pending",
            "text": row["text"], "rationale": row["rationale"], "lesson_ids_json": json.dumps(row["lesson_ids"]),
            "evidence_json": json.dumps(row["evidence"]),
            "evidence_steps_json": json.dumps(row["evidence_steps"]) if row["evidence_steps"] else None,
            "invalid_reason": row["invalid_reason"],
            "leakage_json": json.dumps(leaks) if leaks else None, "decided_at": None, "decided_by": None,
            "decision_reason": None, "result_lesson_id": None, "created_at": now(), "note": row["note"],
        })
    return rows


def store_reply(ws: Workspace, reflection_id: str, *, status: str, error: str | None, reply, analysis: str | None,
                request_body: dict, context_record: dict, mode: str, proposals: list[dict]) -> None:
    """The reply verbatim, its parse outcome, the request actually answered, and the proposals, all at once."""
    with ws.transaction():
        ws.conn.execute(
            "UPDATE reflections SET status = ?, error = ?, raw_reply = ?, analysis = ?, server_model = ?,"
            " prompt_tokens = ?, completion_tokens = ?, request_json = ?, context_json = ?, response_mode = ?"
            " WHERE id = ?",
            (status, error, reply.output, analysis, reply.model, reply.prompt_tokens, reply.completion_tokens,
             json.dumps(request_body), json.dumps(context_record), mode, reflection_id),
        )
        if proposals:
            ws.db["proposals"].insert_all(proposals)
