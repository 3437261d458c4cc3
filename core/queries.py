"""Read-only queries over a workspace, returning plain dicts (used by the CLI and the GUI)."""
from __future__ import annotations

import json

from .workspace import Workspace


class NotFound(LookupError):
    """No row matches the id given."""


RUN_COLUMNS = (
    "id, kind, suite, split, endpoint, model, server_model, snapshot_id, samples, n_planned, n_done,"
    " n_errors, mean_reward, prompt_tokens, completion_tokens, status, created_at, finished_at"
)


def list_runs(ws: Workspace, *, suite: str | None = None, limit: int | None = None) -> list[dict]:
    """Runs, newest first."""
    sql = f"SELECT {RUN_COLUMNS} FROM runs"
    params: list = []
    if suite:
        sql += " WHERE suite = ?"
        params.append(suite)
    sql += " ORDER BY created_at DESC, id"
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return ws.query(sql, params)


def resolve_id(ws: Workspace, table: str, ident: str) -> str:
    """A full id from an id or a unique prefix of one."""
    if ws.one(f"SELECT id FROM {table} WHERE id = ?", (ident,)):
        return ident
    rows = ws.query(f"SELECT id FROM {table} WHERE id LIKE ? ESCAPE '\\' LIMIT 3", (_like_prefix(ident),))
    if len(rows) == 1:
        return rows[0]["id"]
    if len(rows) > 1:
        raise NotFound(f"{ident!r} matches several {table}: {', '.join(r['id'] for r in rows)}…")
    raise NotFound(f"no {table[:-1]} with id {ident!r}")


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def run_detail(ws: Workspace, run_id: str) -> dict:
    """A run with its parameters, snapshot and per-task results."""
    run = ws.one("SELECT * FROM runs WHERE id = ?", (run_id,))
    if run is None:
        raise NotFound(f"no run with id {run_id!r}")
    run["params"] = json.loads(run.pop("params_json"))
    run.pop("reward_sum", None)
    tasks = ws.query(
        """
        SELECT t.id AS task_id, t.name AS task, t.split,
               COUNT(r.id) AS rollouts,
               SUM(r.status = 'error') AS errors,
               AVG(r.reward) AS mean_reward,
               json_group_array(r.reward) AS rewards
        FROM run_tasks rt
        JOIN tasks t ON t.id = rt.task_id
        LEFT JOIN rollouts r ON r.run_id = rt.run_id AND r.task_id = rt.task_id
        WHERE rt.run_id = ?
        GROUP BY rt.position ORDER BY rt.position
        """,
        (run_id,),
    )
    for task in tasks:
        task["rewards"] = [x for x in json.loads(task["rewards"])] if task["rollouts"] else []
        task["errors"] = task["errors"] or 0
    run["tasks"] = tasks
    return run


def run_rollouts(ws: Workspace, run_id: str) -> list[dict]:
    """Summary rows of a run's rollouts in task order."""
    return ws.query(
        """
        SELECT r.id, t.name AS task, r.sample_index, r.status, r.reward, r.feedback, r.error,
               r.prompt_tokens, r.completion_tokens, r.latency_ms, r.model
        FROM rollouts r JOIN tasks t ON t.id = r.task_id
        JOIN run_tasks rt ON rt.run_id = r.run_id AND rt.task_id = r.task_id
        WHERE r.run_id = ? ORDER BY rt.position, r.sample_index
        """,
        (run_id,),
    )


def rollout_detail(ws: Workspace, rollout_id: str) -> dict:
    """A rollout with its messages, output, verdict, task and the exact system prompt it saw."""
    row = ws.one(
        """
        SELECT r.*, x.messages_json, x.output, t.suite, t.name AS task, t.split,
               t.verifier_json, t.metadata_json, s.system_prompt
        FROM rollouts r
        JOIN rollout_texts x ON x.rollout_id = r.id
        JOIN tasks t ON t.id = r.task_id
        JOIN snapshots s ON s.id = r.snapshot_id
        WHERE r.id = ?
        """,
        (rollout_id,),
    )
    if row is None:
        raise NotFound(f"no rollout with id {rollout_id!r}")
    row["messages"] = json.loads(row.pop("messages_json"))
    row["verifier"] = json.loads(row.pop("verifier_json"))
    row["metadata"] = json.loads(row.pop("metadata_json"))
    return row
