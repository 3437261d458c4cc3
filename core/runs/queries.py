"""Read-only queries over a workspace, returning plain dicts (used by the CLI and the GUI)."""
from __future__ import annotations

import json

from lessonlab.core.errors import NotFound
from lessonlab.core.ids import resolve_id as _resolve_id
from lessonlab.core.runs.owner import effective_status
from lessonlab.core.runs.trajectory import read_trajectory
from lessonlab.core.storage.workspace import Workspace

__all__ = ["NotFound"]


RUN_COLUMNS = (
    "id, kind, suite, split, endpoint, model, server_model, snapshot_id, samples, n_planned, n_done,"
    " n_errors, mean_reward, prompt_tokens, completion_tokens, status, created_at, finished_at,"
    " owner_pid, owner_host, owner_started"
)
_OWNER_COLUMNS = ("owner_pid", "owner_host", "owner_started")


def _settled(row: dict) -> dict:
    """A runs row with its real status (a run whose process is gone reads 'interrupted'), owner columns dropped."""
    row["status"] = effective_status(row)
    for column in _OWNER_COLUMNS:
        row.pop(column, None)
    return row


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
    return [_settled(row) for row in ws.query(sql, params)]


def last_run_suite(ws: Workspace) -> str | None:
    """The suite of the newest ordinary run as `load_suite` takes it (a built-in name or a file path), or None."""
    row = ws.one("SELECT suite, source FROM runs WHERE kind = 'run' ORDER BY created_at DESC, rowid DESC LIMIT 1")
    if row is None:
        return None
    source = row["source"] or ""
    if source.startswith("builtin:"):
        return source.removeprefix("builtin:")
    return source or row["suite"]


def resolve_id(ws: Workspace, table: str, ident: str) -> str:
    """A full id from an id or a unique prefix of one."""
    return _resolve_id(ws, table, ident)


def run_detail(ws: Workspace, run_id: str) -> dict:
    """A run with its parameters, snapshot and per-task results."""
    run = ws.one("SELECT * FROM runs WHERE id = ?", (run_id,))
    if run is None:
        raise NotFound(f"no run with id {run_id!r}")
    run["params"] = json.loads(run.pop("params_json"))
    run.pop("reward_sum", None)
    _settled(run)
    tasks = ws.query(
        """
        SELECT t.id AS task_id, t.name AS task, t.split,
               COUNT(r.id) AS rollouts,
               SUM(r.status = 'error') AS errors,
               AVG(r.reward) AS mean_reward,
               json_group_array(r.reward) FILTER (WHERE r.status IS NOT 'ok' OR r.reward IS NOT NULL) AS rewards,
               SUM(r.status = 'ok' AND r.reward IS NULL) AS unscored
        FROM run_tasks rt
        JOIN tasks t ON t.id = rt.task_id
        LEFT JOIN rollouts r ON r.run_id = rt.run_id AND r.task_id = rt.task_id
        WHERE rt.run_id = ?
        GROUP BY rt.position ORDER BY rt.position
        """,
        (run_id,),
    )
    for task in tasks:
        task["rewards"] = json.loads(task["rewards"]) if task["rollouts"] else []
        task["errors"] = task["errors"] or 0
        task["unscored"] = task["unscored"] or 0   # answered, no reward yet (the proxy's): not in `rewards`
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


def _with_steps(row: dict) -> dict:
    """A row with `messages` parsed and `steps` (trajectory `Step`s, the final reply last) read from them."""
    row["messages"] = json.loads(row.pop("messages_json"))
    row["steps"] = read_trajectory(row["messages"], row["output"] if row["status"] == "ok" else None,
                                   row.pop("steps_json", None))[1]
    return row


def rollout_scores(ws: Workspace, rollout_id: str) -> list[dict]:
    """Every score an imported rollout came with, in source order (value as given, reward, answer, explanation)."""
    rows = ws.query("SELECT scorer, value_json, reward, answer, explanation, metadata_json FROM rollout_scores"
                    " WHERE rollout_id = ? ORDER BY position", (rollout_id,))
    for row in rows:
        row["value"] = json.loads(row.pop("value_json")) if row["value_json"] is not None else None
        row["metadata"] = json.loads(row.pop("metadata_json")) if row["metadata_json"] else None
    return rows


def rollout_detail(ws: Workspace, rollout_id: str) -> dict:
    """A rollout with its messages, steps, output, verdict, task and the exact system prompt it saw."""
    row = ws.one(
        """
        SELECT r.*, x.messages_json, x.output, x.steps_json, t.suite, t.name AS task, t.split,
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
    _with_steps(row)
    row["verifier"] = json.loads(row.pop("verifier_json"))
    row["metadata"] = json.loads(row.pop("metadata_json"))
    return row


# --- read-only queries for the desktop app (paged, indexed; never touch heavy text unless asked) ---

# Columns the runs table may be sorted by, mapped to SQL expressions (never user text in SQL).
RUN_SORT_KEYS = {
    "suite": "suite",
    "model": "COALESCE(server_model, model)",
    "snapshot": "snapshot_id",
    "samples": "samples",
    "mean_reward": "mean_reward",
    "errors": "n_errors",
    "status": "status",
    "started": "created_at",
}


def run_ids(ws: Workspace, *, text: str | None = None, sort: str = "started", descending: bool = True) -> list[str]:
    """Ids of runs matching `text` (suite, model, endpoint, status or id), in the given order."""
    key = RUN_SORT_KEYS.get(sort)
    if key is None:
        raise ValueError(f"cannot sort runs by {sort!r}")
    sql = "SELECT id FROM runs"
    params: list = []
    if text:
        like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        sql += (" WHERE suite LIKE :q ESCAPE '\\' OR COALESCE(server_model, model, '') LIKE :q ESCAPE '\\'"
                " OR endpoint LIKE :q ESCAPE '\\' OR status LIKE :q ESCAPE '\\' OR id LIKE :q ESCAPE '\\'")
        params = {"q": like}  # type: ignore[assignment]
    order = "DESC" if descending else "ASC"
    sql += f" ORDER BY {key} {order}, created_at {order}, id"
    return [row[0] for row in ws.conn.execute(sql, params)]


def run_count(ws: Workspace) -> int:
    """How many runs the workspace holds."""
    return ws.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0]


def runs_by_ids(ws: Workspace, ids: list[str]) -> dict[str, dict]:
    """Summary rows of the given runs, keyed by id."""
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    return {row["id"]: _settled(row) for row in ws.query(f"SELECT {RUN_COLUMNS} FROM runs WHERE id IN ({marks})", ids)}


def data_version(ws: Workspace) -> int:
    """A number that changes when another connection (another process) commits to the workspace; cheap to poll."""
    return ws.conn.execute("PRAGMA data_version").fetchone()[0]


def run_rollout_page(ws: Workspace, run_id: str, *, after_rowid: int = 0, limit: int = 200) -> list[dict]:
    """Summary rows of a run's rollouts in the order they were stored, after `after_rowid` (keyset paging)."""
    return ws.query(
        """
        SELECT r.rowid AS rowid, r.id, r.task_id, t.name AS task, r.sample_index, r.status, r.reward,
               r.feedback, r.error, r.completion_tokens, r.latency_ms
        FROM rollouts r JOIN tasks t ON t.id = r.task_id
        WHERE r.run_id = ? AND r.rowid > ? ORDER BY r.rowid LIMIT ?
        """,
        (run_id, after_rowid, limit),
    )


def run_task_list(ws: Workspace, run_id: str) -> list[dict]:
    """The tasks of a run in plan order, with how many rollouts each has in that run."""
    return ws.query(
        """
        SELECT t.id AS task_id, t.name AS task, t.suite, t.split,
               (SELECT COUNT(*) FROM rollouts r WHERE r.run_id = rt.run_id AND r.task_id = rt.task_id) AS rollouts
        FROM run_tasks rt JOIN tasks t ON t.id = rt.task_id
        WHERE rt.run_id = ? ORDER BY rt.position
        """,
        (run_id,),
    )


def search_tasks(ws: Workspace, text: str, *, limit: int = 50) -> list[dict]:
    """Tasks whose name or suite contains `text`, with their rollout counts (all runs)."""
    like = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    rows = ws.query(
        "SELECT id AS task_id, name AS task, suite, split FROM tasks"
        " WHERE name LIKE ? ESCAPE '\\' OR suite LIKE ? ESCAPE '\\' ORDER BY suite, name LIMIT ?",
        (like, like, limit),
    )
    for row in rows:
        row["rollouts"] = ws.conn.execute(
            "SELECT COUNT(*) FROM rollouts WHERE task_id = ?", (row["task_id"],)
        ).fetchone()[0]
    return rows


def latest_task_with_rollouts(ws: Workspace) -> str | None:
    """The task of the most recently stored rollout, or None in an empty workspace."""
    row = ws.conn.execute("SELECT task_id FROM rollouts ORDER BY rowid DESC LIMIT 1").fetchone()
    return row[0] if row else None


def task_rollouts(ws: Workspace, task_id: str, *, run_ids: list[str] | None = None, limit: int = 200) -> list[dict]:
    """Every rollout of one task (optionally only from some runs) with its text, steps, run, model and snapshot."""
    sql = """
        SELECT r.id, r.run_id, r.task_id, r.sample_index, r.snapshot_id, r.status, r.reward, r.feedback,
               r.error, r.prompt_tokens, r.completion_tokens, r.latency_ms, r.model, r.created_at,
               x.messages_json, x.output, x.steps_json, t.name AS task, t.suite,
               ru.endpoint, COALESCE(ru.server_model, ru.model) AS run_model,
               s.lesson_count, s.system_prompt
        FROM rollouts r
        JOIN rollout_texts x ON x.rollout_id = r.id
        JOIN tasks t ON t.id = r.task_id
        JOIN runs ru ON ru.id = r.run_id
        JOIN snapshots s ON s.id = r.snapshot_id
        WHERE r.task_id = ?
    """
    params: list = [task_id]
    if run_ids:
        sql += f" AND r.run_id IN ({','.join('?' * len(run_ids))})"
        params += list(run_ids)
    sql += " ORDER BY r.created_at, r.run_id, r.sample_index LIMIT ?"
    params.append(limit)
    rows = ws.query(sql, params)
    for row in rows:
        _with_steps(row)
    return rows


def task_summary(ws: Workspace, task_id: str) -> dict:
    """A task's name, suite, split and prompt."""
    row = ws.one("SELECT id AS task_id, name AS task, suite, split, prompt_json FROM tasks WHERE id = ?", (task_id,))
    if row is None:
        raise NotFound(f"no task with id {task_id!r}")
    row["prompt"] = json.loads(row.pop("prompt_json"))
    return row


def snapshot_lesson_versions(ws: Workspace, snapshot_id: str) -> list[dict]:
    """The lessons (id + exact version) a snapshot's system prompt holds, in prompt order."""
    return ws.query(
        "SELECT sl.position, sl.lesson_id, sl.version_id, v.version, v.text FROM snapshot_lessons sl"
        " JOIN lesson_versions v ON v.id = sl.version_id WHERE sl.snapshot_id = ? ORDER BY sl.position",
        (snapshot_id,),
    )


def lessons_of_snapshots(ws: Workspace, snapshot_ids: list[str]) -> dict[str, list[dict]]:
    """For each snapshot, the lessons its prompt held in prompt order: lesson id, version, text, status."""
    ids = list(dict.fromkeys(snapshot_ids))
    out: dict[str, list[dict]] = {snap: [] for snap in ids}
    for start in range(0, len(ids), 500):  # stay under SQLite's parameter limit
        chunk = ids[start:start + 500]
        rows = ws.query(
            "SELECT sl.snapshot_id, sl.position, sl.lesson_id, v.version, v.text, l.status"
            " FROM snapshot_lessons sl JOIN lesson_versions v ON v.id = sl.version_id"
            " JOIN lessons l ON l.id = sl.lesson_id"
            f" WHERE sl.snapshot_id IN ({','.join('?' * len(chunk))}) ORDER BY sl.snapshot_id, sl.position",
            chunk,
        )
        for row in rows:
            out[row.pop("snapshot_id")].append(row)
    return out


def run_suites_and_models(ws: Workspace) -> list[dict]:
    """Each (suite, model) that has runs, with how many and when the latest started; newest first."""
    return ws.query(
        "SELECT suite, COALESCE(server_model, model) AS model, COUNT(*) AS runs, MAX(created_at) AS latest"
        " FROM runs GROUP BY suite, COALESCE(server_model, model) ORDER BY latest DESC"
    )


def run_row(ws: Workspace, run_id: str) -> dict:
    """The runs row itself (every column)."""
    row = ws.one("SELECT * FROM runs WHERE id = ?", (run_id,))
    if row is None:
        raise NotFound(f"no run with id {run_id!r}")
    return row


def run_uses_python_verifiers(ws: Workspace, run_id: str) -> bool:
    """Whether any task of the run is scored by a `python` verifier."""
    return ws.one(
        "SELECT 1 FROM run_tasks rt JOIN tasks t ON t.id = rt.task_id WHERE rt.run_id = ?"
        " AND json_extract(t.verifier_json, '$.kind') = 'python' LIMIT 1",
        (run_id,),
    ) is not None


def first_error(ws: Workspace, run_id: str) -> str | None:
    """The error of the run's first failed rollout, if any."""
    row = ws.one("SELECT error FROM rollouts WHERE run_id = ? AND error IS NOT NULL LIMIT 1", (run_id,))
    return row["error"] if row else None


def identify(ws: Workspace, ident: str) -> tuple[str, str]:
    """('runs' | 'rollouts', full id) for a run or rollout id or prefix."""
    tables = ("rollouts",) if ident.startswith("ro_") else ("runs",) if ident.startswith("run_") else ("runs", "rollouts")
    found = []
    for table in tables:
        try:
            found.append((table, resolve_id(ws, table, ident)))
        except NotFound as exc:
            if "ambiguous" in str(exc):
                raise
    if len(found) > 1:
        # "r" starts a run id and a rollout id alike: name both rather than pick one.
        raise NotFound(f"{ident!r} is ambiguous: it starts a run id and a rollout id ({found[0][1]}, {found[1][1]}); "
                       "give more of it")
    if found:
        return found[0]
    raise NotFound(f"no run or rollout with id {ident!r}")


def rollouts_by_ids(ws: Workspace, ids: list[str]) -> list[dict]:
    """These rollouts (whatever their tasks), shaped like `task_rollouts` rows, in the order given."""
    if not ids:
        return []
    places = ws.query(f"SELECT id, task_id, run_id FROM rollouts WHERE id IN ({','.join('?' * len(ids))})", list(ids))
    runs_per_task: dict[str, set[str]] = {}
    for place in places:
        runs_per_task.setdefault(place["task_id"], set()).add(place["run_id"])
    found: dict[str, dict] = {}
    for task_id, runs in runs_per_task.items():
        for row in task_rollouts(ws, task_id, run_ids=sorted(runs)):
            found[row["id"]] = row
    return [found[i] for i in ids if i in found]
