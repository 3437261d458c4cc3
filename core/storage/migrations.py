"""Ordered schema migrations, recorded in the `_migrations` table; old ones are never edited."""
from __future__ import annotations

import datetime as _dt
import sqlite3
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # migrations use only `db.conn`; sqlite_utils is imported where a Database is made
    import sqlite_utils

MIGRATIONS: list[Callable[[sqlite_utils.Database], None]] = []


class NewerWorkspaceError(RuntimeError):
    """The workspace has migrations this version does not know."""


def migration(fn: Callable[[sqlite_utils.Database], None]):
    """Register fn as the next migration."""
    MIGRATIONS.append(fn)
    return fn


def run_script(db: sqlite_utils.Database, script: str) -> None:
    """Execute statements one by one (executescript would commit the open transaction)."""
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            db.conn.execute(buffer)
            buffer = ""
    if buffer.strip():
        raise ValueError(f"incomplete SQL statement in migration: {buffer.strip()[:80]}")


def pending(db: sqlite_utils.Database) -> list[str]:
    """Names of the migrations this workspace still needs (without applying them); NewerWorkspaceError if newer."""
    tables = {row[0] for row in db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    done = {row[0] for row in db.conn.execute("SELECT name FROM _migrations")} if "_migrations" in tables else set()
    unknown = done - {fn.__name__ for fn in MIGRATIONS}
    if unknown:
        raise NewerWorkspaceError(
            f"workspace was written by a newer lessonlab (unknown migrations: {', '.join(sorted(unknown))})"
        )
    return [fn.__name__ for fn in MIGRATIONS if fn.__name__ not in done]


def migrate(db: sqlite_utils.Database) -> list[str]:
    """Apply the migrations not yet recorded, each in its own transaction; return their names."""
    db.conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done = {row[0] for row in db.conn.execute("SELECT name FROM _migrations")}
    known = {fn.__name__ for fn in MIGRATIONS}
    unknown = done - known
    if unknown:
        raise NewerWorkspaceError(
            f"workspace was written by a newer lessonlab (unknown migrations: {', '.join(sorted(unknown))})"
        )
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        db.conn.execute("BEGIN IMMEDIATE")
        if db.conn.execute("SELECT 1 FROM _migrations WHERE name = ?", (fn.__name__,)).fetchone():
            db.conn.execute("ROLLBACK")  # another process opening the workspace at the same time applied it
            continue
        try:
            fn(db)
            db.conn.execute(
                "INSERT INTO _migrations (name, applied_at) VALUES (?, ?)",
                (fn.__name__, _dt.datetime.now(_dt.timezone.utc).isoformat()),
            )
        except BaseException:
            db.conn.execute("ROLLBACK")
            raise
        db.conn.execute("COMMIT")
        applied.append(fn.__name__)
    return applied


@migration
def m001_spine(db: sqlite_utils.Database) -> None:
    """Tasks, snapshots, runs, rollouts (summary columns) and rollout texts (heavy columns)."""
    run_script(
        db,
        """
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,           -- t_ + content hash prefix, so a changed task is a new row
            suite TEXT NOT NULL,
            name TEXT NOT NULL,            -- the id given in the suite file
            split TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            prompt_json TEXT NOT NULL,
            verifier_json TEXT NOT NULL,
            metadata_json TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE INDEX idx_tasks_suite ON tasks (suite, name);

        CREATE TABLE snapshots (
            id TEXT PRIMARY KEY,           -- snap_ + hash prefix of system_prompt
            hash TEXT NOT NULL UNIQUE,     -- sha256 of system_prompt
            system_prompt TEXT NOT NULL,
            base_prompt TEXT NOT NULL,
            lesson_count INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL
        );

        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL DEFAULT 'run',      -- run | ablation | import ...
            source TEXT,                           -- where the run came from (suite source, import file)
            suite TEXT NOT NULL,
            split TEXT NOT NULL,
            task_limit INTEGER,
            samples INTEGER NOT NULL,
            endpoint TEXT NOT NULL,
            base_url TEXT,
            model TEXT,                            -- model name requested
            server_model TEXT,                     -- model name the server reported
            snapshot_id TEXT NOT NULL REFERENCES snapshots(id),
            params_json TEXT NOT NULL DEFAULT '{}',
            concurrency INTEGER NOT NULL DEFAULT 4,
            seed INTEGER,
            status TEXT NOT NULL,                  -- pending | running | completed | interrupted | failed
            n_planned INTEGER NOT NULL DEFAULT 0,
            n_done INTEGER NOT NULL DEFAULT 0,
            n_errors INTEGER NOT NULL DEFAULT 0,
            reward_sum REAL NOT NULL DEFAULT 0,
            mean_reward REAL,
            prompt_tokens INTEGER NOT NULL DEFAULT 0,
            completion_tokens INTEGER NOT NULL DEFAULT 0,
            trust_verifiers INTEGER NOT NULL DEFAULT 0,
            note TEXT,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT
        );
        CREATE INDEX idx_runs_suite ON runs (suite, created_at);
        CREATE INDEX idx_runs_created ON runs (created_at);

        CREATE TABLE run_tasks (
            run_id TEXT NOT NULL REFERENCES runs(id),
            position INTEGER NOT NULL,
            task_id TEXT NOT NULL REFERENCES tasks(id),
            PRIMARY KEY (run_id, position)
        );

        CREATE TABLE rollouts (
            id TEXT PRIMARY KEY,
            run_id TEXT NOT NULL REFERENCES runs(id),
            task_id TEXT NOT NULL REFERENCES tasks(id),
            sample_index INTEGER NOT NULL,
            snapshot_id TEXT NOT NULL REFERENCES snapshots(id),
            seed INTEGER,
            status TEXT NOT NULL,          -- ok | error
            reward REAL,                   -- NULL when the call failed
            feedback TEXT,
            error TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            latency_ms REAL,
            attempts INTEGER NOT NULL DEFAULT 1,
            model TEXT,                    -- model name reported by the server
            finish_reason TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (run_id, task_id, sample_index)
        );
        CREATE INDEX idx_rollouts_task ON rollouts (task_id, snapshot_id);
        CREATE INDEX idx_rollouts_snapshot ON rollouts (snapshot_id);

        CREATE TABLE rollout_texts (
            rollout_id TEXT PRIMARY KEY REFERENCES rollouts(id),
            messages_json TEXT NOT NULL,   -- the full request messages
            output TEXT                    -- the assistant reply
        );
        """
    )
    # Full-text search over replies, kept in step by triggers (external-content FTS5).
    run_script(
        db,
        """
        CREATE VIRTUAL TABLE rollout_texts_fts USING fts5(
            output, content='rollout_texts', content_rowid='rowid', tokenize='porter'
        );
        CREATE TRIGGER rollout_texts_ai AFTER INSERT ON rollout_texts BEGIN
            INSERT INTO rollout_texts_fts (rowid, output) VALUES (new.rowid, new.output);
        END;
        CREATE TRIGGER rollout_texts_ad AFTER DELETE ON rollout_texts BEGIN
            INSERT INTO rollout_texts_fts (rollout_texts_fts, rowid, output) VALUES ('delete', old.rowid, old.output);
        END;
        CREATE TRIGGER rollout_texts_au AFTER UPDATE ON rollout_texts BEGIN
            INSERT INTO rollout_texts_fts (rollout_texts_fts, rowid, output) VALUES ('delete', old.rowid, old.output);
            INSERT INTO rollout_texts_fts (rowid, output) VALUES (new.rowid, new.output);
        END;
        """,
    )


@migration
def m002_lessons(db: sqlite_utils.Database) -> None:
    """Lessons with versions and events, which lesson versions each snapshot holds, reflections and proposals."""
    run_script(
        db,
        """
        CREATE TABLE lessons (
            id TEXT PRIMARY KEY,                   -- les_xxxxxxxx
            status TEXT NOT NULL,                  -- proposed | active | retired | rejected
            scope_json TEXT,                       -- NULL: every suite; else a JSON list of suite names
            origin TEXT NOT NULL,                  -- human | reflection
            reflection_id TEXT,                    -- the reflection it came from (origin = reflection)
            current_version_id TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        );
        CREATE INDEX idx_lessons_status ON lessons (status, created_at);

        CREATE TABLE lesson_versions (
            id TEXT PRIMARY KEY,                   -- lv_xxxxxxxx
            lesson_id TEXT NOT NULL REFERENCES lessons(id),
            version INTEGER NOT NULL,              -- 1, 2, ...
            text TEXT NOT NULL,
            tokens_est INTEGER NOT NULL,           -- ceil(len(text) / 4)
            author TEXT NOT NULL,                  -- 'human' or the reflection id
            reason TEXT,
            parents_json TEXT,                     -- for merges: the version ids merged into this one
            created_at TEXT NOT NULL,
            UNIQUE (lesson_id, version)
        );

        CREATE TABLE lesson_events (
            id TEXT PRIMARY KEY,
            lesson_id TEXT NOT NULL REFERENCES lessons(id),
            kind TEXT NOT NULL,                    -- created | edited | accepted | retired | restored | rejected | merged
            from_status TEXT,
            to_status TEXT,
            version_id TEXT,
            author TEXT NOT NULL,
            reason TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX idx_lesson_events_lesson ON lesson_events (lesson_id, created_at);

        CREATE TABLE snapshot_lessons (
            snapshot_id TEXT NOT NULL REFERENCES snapshots(id),
            position INTEGER NOT NULL,
            lesson_id TEXT NOT NULL REFERENCES lessons(id),
            version_id TEXT NOT NULL REFERENCES lesson_versions(id),
            PRIMARY KEY (snapshot_id, position)
        );
        CREATE INDEX idx_snapshot_lessons_lesson ON snapshot_lessons (lesson_id, version_id);

        CREATE TABLE reflections (
            id TEXT PRIMARY KEY,                   -- ref_xxxxxxxx
            kind TEXT NOT NULL,                    -- reflect | distill
            endpoint TEXT NOT NULL,
            model TEXT,
            server_model TEXT,
            prompt_name TEXT NOT NULL,
            prompt_hash TEXT NOT NULL,             -- sha256 of the meta-prompt text used
            request_json TEXT NOT NULL,            -- the full request body
            raw_reply TEXT,                        -- the reply verbatim, parsed or not
            analysis TEXT,
            status TEXT NOT NULL,                  -- running | ok | failed
            error TEXT,
            context_json TEXT NOT NULL DEFAULT '{}',  -- what was included / left out and why
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE INDEX idx_reflections_created ON reflections (created_at);

        CREATE TABLE reflection_rollouts (
            reflection_id TEXT NOT NULL REFERENCES reflections(id),
            rollout_id TEXT NOT NULL REFERENCES rollouts(id),
            included INTEGER NOT NULL,
            reason TEXT,
            PRIMARY KEY (reflection_id, rollout_id)
        );
        CREATE INDEX idx_reflection_rollouts_rollout ON reflection_rollouts (rollout_id);

        CREATE TABLE proposals (
            id TEXT PRIMARY KEY,                   -- prop_xxxxxxxx
            reflection_id TEXT NOT NULL REFERENCES reflections(id),
            op TEXT NOT NULL,                      -- add | edit | merge | retire
            status TEXT NOT NULL,                  -- pending | accepted | rejected | invalid
            text TEXT,
            rationale TEXT,
            lesson_ids_json TEXT NOT NULL DEFAULT '[]',
            evidence_json TEXT NOT NULL DEFAULT '[]',
            invalid_reason TEXT,
            leakage_json TEXT,                     -- NULL or a list of findings
            decided_at TEXT,
            decided_by TEXT,
            decision_reason TEXT,
            result_lesson_id TEXT,
            created_at TEXT NOT NULL
        );
        CREATE INDEX idx_proposals_status ON proposals (status, created_at);
        CREATE INDEX idx_proposals_reflection ON proposals (reflection_id);
        """
    )
    run_script(
        db,
        """
        CREATE VIRTUAL TABLE lesson_versions_fts USING fts5(
            text, content='lesson_versions', content_rowid='rowid', tokenize='porter'
        );
        CREATE TRIGGER lesson_versions_ai AFTER INSERT ON lesson_versions BEGIN
            INSERT INTO lesson_versions_fts (rowid, text) VALUES (new.rowid, new.text);
        END;
        CREATE TRIGGER lesson_versions_ad AFTER DELETE ON lesson_versions BEGIN
            INSERT INTO lesson_versions_fts (lesson_versions_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
        END;
        """,
    )


@migration
def m003_impact(db: sqlite_utils.Database) -> None:
    """Ablation pairs, and a covering index for the impact aggregate (task, model, snapshot, reward)."""
    run_script(
        db,
        """
        CREATE TABLE ablations (
            id TEXT PRIMARY KEY,                   -- abl_xxxxxxxxxx
            lesson_id TEXT NOT NULL REFERENCES lessons(id),
            version_id TEXT NOT NULL,              -- the lesson version that was in the "with" arm
            suite TEXT NOT NULL,
            split TEXT NOT NULL,
            samples INTEGER NOT NULL,
            endpoint TEXT NOT NULL,
            seed INTEGER,
            run_with TEXT NOT NULL REFERENCES runs(id),
            run_without TEXT NOT NULL REFERENCES runs(id),
            status TEXT NOT NULL,                  -- running | completed | interrupted | failed
            lift REAL,
            ci_low REAL,
            ci_high REAL,
            n_tasks INTEGER,
            n_with INTEGER,
            n_without INTEGER,
            created_at TEXT NOT NULL,
            finished_at TEXT
        );
        CREATE INDEX idx_ablations_lesson ON ablations (lesson_id, created_at);

        -- Scored rollouts summed per (task, model, snapshot), kept in step by triggers: impact
        -- questions are answered from these few thousand cells instead of millions of rollouts.
        CREATE TABLE rollout_cells (
            task_id TEXT NOT NULL,
            model TEXT NOT NULL,                   -- '' when the server reported none
            snapshot_id TEXT NOT NULL,
            n INTEGER NOT NULL,
            reward_sum REAL NOT NULL,
            PRIMARY KEY (task_id, model, snapshot_id)
        ) WITHOUT ROWID;
        CREATE INDEX idx_rollout_cells_snapshot ON rollout_cells (snapshot_id);

        INSERT INTO rollout_cells (task_id, model, snapshot_id, n, reward_sum)
            SELECT task_id, COALESCE(model, ''), snapshot_id, COUNT(*), SUM(reward)
            FROM rollouts WHERE reward IS NOT NULL GROUP BY 1, 2, 3;

        CREATE TRIGGER rollouts_cells_ai AFTER INSERT ON rollouts WHEN new.reward IS NOT NULL BEGIN
            INSERT INTO rollout_cells (task_id, model, snapshot_id, n, reward_sum)
                VALUES (new.task_id, COALESCE(new.model, ''), new.snapshot_id, 1, new.reward)
                ON CONFLICT (task_id, model, snapshot_id)
                DO UPDATE SET n = n + 1, reward_sum = reward_sum + excluded.reward_sum;
        END;
        CREATE TRIGGER rollouts_cells_ad AFTER DELETE ON rollouts WHEN old.reward IS NOT NULL BEGIN
            UPDATE rollout_cells SET n = n - 1, reward_sum = reward_sum - old.reward
                WHERE task_id = old.task_id AND model = COALESCE(old.model, '') AND snapshot_id = old.snapshot_id;
            DELETE FROM rollout_cells WHERE task_id = old.task_id AND model = COALESCE(old.model, '')
                AND snapshot_id = old.snapshot_id AND n <= 0;
        END;
        """,
    )


@migration
def m004_imports(db: sqlite_utils.Database) -> None:
    """Imported runs: the file format of a run, a stable source key per rollout, and every score it came with."""
    run_script(
        db,
        """
        ALTER TABLE runs ADD COLUMN source_format TEXT;        -- inspect | openai-jsonl (kind = 'import')

        -- Where an imported rollout came from (format, log or line identity); re-importing skips known keys.
        ALTER TABLE rollouts ADD COLUMN source_key TEXT;
        CREATE UNIQUE INDEX idx_rollouts_source_key ON rollouts (source_key) WHERE source_key IS NOT NULL;

        -- Every scorer's result on an imported rollout (the reward comes from one of them).
        CREATE TABLE rollout_scores (
            rollout_id TEXT NOT NULL REFERENCES rollouts(id),
            position INTEGER NOT NULL,             -- order in the source
            scorer TEXT NOT NULL,
            value_json TEXT,                       -- the value as given (C/I/P/N, number, bool, list, object)
            reward REAL,                           -- the value as a reward in [0, 1]; NULL when it has none
            answer TEXT,
            explanation TEXT,
            metadata_json TEXT,
            PRIMARY KEY (rollout_id, scorer)
        ) WITHOUT ROWID;
        """,
    )


@migration
def m005_run_owner(db: sqlite_utils.Database) -> None:
    """Which process executes a running run (pid, host, process start), and a note on rollouts whose text was repaired to be stored."""
    run_script(
        db,
        """
        ALTER TABLE runs ADD COLUMN owner_pid INTEGER;      -- the process executing the run (status running)
        ALTER TABLE runs ADD COLUMN owner_host TEXT;        -- its host name
        ALTER TABLE runs ADD COLUMN owner_started TEXT;     -- its start time as the OS reports it (pid reuse check)
        ALTER TABLE rollouts ADD COLUMN note TEXT;          -- e.g. characters replaced so the text could be stored
        """,
    )


@migration
def m006_reflection_modes(db: sqlite_utils.Database) -> None:
    """Which structured-reply mode each endpoint accepted, the mode each reflection used, notes on proposals."""
    run_script(
        db,
        """
        CREATE TABLE reflection_modes (
            endpoint TEXT NOT NULL,                -- endpoint profile name
            base_url TEXT NOT NULL,                -- the profile's base URL ('' for the embedded model)
            model TEXT NOT NULL,
            mode TEXT NOT NULL,                    -- json_schema | json_object_schema | text
            note TEXT,                             -- why (e.g. which mode was rejected)
            updated_at TEXT NOT NULL,
            PRIMARY KEY (endpoint, base_url, model)
        );
        ALTER TABLE reflections ADD COLUMN response_mode TEXT;  -- the mode of the request that was answered
        ALTER TABLE proposals ADD COLUMN note TEXT;             -- e.g. evidence ids dropped, why the gate held it
        """,
    )


@migration
def m007_reflection_owner(db: sqlite_utils.Database) -> None:
    """Which process a running reflection belongs to, so one whose process died reads as interrupted."""
    run_script(
        db,
        """
        ALTER TABLE reflections ADD COLUMN owner_pid INTEGER;
        ALTER TABLE reflections ADD COLUMN owner_host TEXT;
        ALTER TABLE reflections ADD COLUMN owner_started TEXT;
        """,
    )


@migration
def m008_trajectories(db: sqlite_utils.Database) -> None:
    """Multi-step rollouts: per-step figures (latency, tokens, cut tool results), step count, tool-call mode.

    The steps themselves are the messages: `rollout_texts.messages_json` holds every message before the
    final reply (assistant messages with their `tool_calls`, then the `tool` messages answering them),
    and `output` the final reply, the same shape imports already store. `steps_json` adds what messages
    cannot say, one entry per model call in order (see `lessonlab.core.runs.trajectory`).
    """
    run_script(
        db,
        """
        ALTER TABLE rollouts ADD COLUMN n_steps INTEGER;          -- model calls in the rollout (NULL: one, or unknown)
        ALTER TABLE rollouts ADD COLUMN tool_mode TEXT;           -- native | hermes | NULL (no tools)
        ALTER TABLE rollout_texts ADD COLUMN steps_json TEXT;     -- per-step figures, NULL for one-call rollouts
        """,
    )


@migration
def m009_tool_modes(db: sqlite_utils.Database) -> None:
    """Which tool-call protocol each endpoint accepted for agent loops (native | hermes)."""
    run_script(
        db,
        """
        CREATE TABLE tool_modes (
            endpoint TEXT NOT NULL,                -- endpoint profile name
            base_url TEXT NOT NULL,                -- the profile's base URL ('' for the embedded model)
            model TEXT NOT NULL,
            mode TEXT NOT NULL,                    -- native | hermes
            note TEXT,                             -- why (e.g. how the endpoint rejected `tools`)
            updated_at TEXT NOT NULL,
            PRIMARY KEY (endpoint, base_url, model)
        );
        """,
    )


@migration
def m010_tools(db: sqlite_utils.Database) -> None:
    """Tasks with tools: the suite line's `"tools"` (JSON list of names) and `"max_turns"`, NULL when not given."""
    run_script(
        db,
        """
        ALTER TABLE tasks ADD COLUMN tools_json TEXT;     -- ["letters.spell", "calc"]; NULL: a one-call task
        ALTER TABLE tasks ADD COLUMN max_turns INTEGER;   -- as the suite wrote it; NULL: the default (10) with tools
        """,
    )


@migration
def m011_serve(db: sqlite_utils.Database) -> None:
    """Rollouts scored after they were written (the proxy's, scored by hand) keep the impact cells in step.

    `rollout_cells` was kept by insert and delete triggers only; a reward given or changed later
    (`lessonlab score`) moves the rollout's cell contribution, as does a continued proxy rollout.
    `rollout_texts.request_json` keeps what a proxied request sent besides its messages (tools, sampling).
    """
    run_script(
        db,
        """
        ALTER TABLE rollout_texts ADD COLUMN request_json TEXT;   -- request fields besides messages (serve)
        CREATE TRIGGER rollouts_cells_au AFTER UPDATE OF reward, model, task_id, snapshot_id ON rollouts BEGIN
            UPDATE rollout_cells SET n = n - 1, reward_sum = reward_sum - old.reward
                WHERE old.reward IS NOT NULL AND task_id = old.task_id AND model = COALESCE(old.model, '')
                AND snapshot_id = old.snapshot_id;
            DELETE FROM rollout_cells WHERE old.reward IS NOT NULL AND task_id = old.task_id
                AND model = COALESCE(old.model, '') AND snapshot_id = old.snapshot_id AND n <= 0;
            INSERT INTO rollout_cells (task_id, model, snapshot_id, n, reward_sum)
                SELECT new.task_id, COALESCE(new.model, ''), new.snapshot_id, 1, new.reward
                WHERE new.reward IS NOT NULL
                ON CONFLICT (task_id, model, snapshot_id)
                DO UPDATE SET n = n + 1, reward_sum = reward_sum + excluded.reward_sum;
        END;
        """,
    )


@migration
def m012_reflection_steps(db: sqlite_utils.Database) -> None:
    """Step citations and tool schemas for trajectories.

    `proposals.evidence_steps_json` holds the steps a proposal cites as `ro_x#N` (its rollouts stay in
    `evidence_json`, so readers of rollout ids are unchanged); `rollout_texts.tools_json` the OpenAI `tools`
    list a rollout was sent with, where it is known (imports without schemas leave it NULL).
    """
    run_script(
        db,
        """
        ALTER TABLE proposals ADD COLUMN evidence_steps_json TEXT;   -- ["ro_x#4", ...] or NULL
        ALTER TABLE rollout_texts ADD COLUMN tools_json TEXT;        -- OpenAI tools list, NULL: none or unknown
        """,
    )


@migration
def m013_import_integrity(db: sqlite_utils.Database) -> None:
    """An imported run's own times kept apart from the time it was imported (created_at is the source's start)."""
    run_script(
        db,
        """
        ALTER TABLE runs ADD COLUMN imported_at TEXT;   -- when `import` wrote the run (NULL: not imported)
        UPDATE runs SET imported_at = created_at,
                        created_at = COALESCE(started_at, finished_at, created_at)
         WHERE kind = 'import' AND finished_at IS NOT NULL AND finished_at < created_at;
        """,
    )


@migration
def m014_export_index(db: sqlite_utils.Database) -> None:
    """Find a task's place in a run by (run, task): exports join each rollout to it, which scanned the run's tasks."""
    run_script(
        db,
        """
        CREATE INDEX idx_run_tasks_task ON run_tasks (run_id, task_id, position);
        """,
    )
