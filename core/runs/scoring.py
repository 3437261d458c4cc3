"""Scoring by hand: a reward (and a line of feedback) given to a rollout after it was written.

The proxy's rollouts arrive unscored (reward NULL); a person scores them from the CLI, the proxy's
rewards route or the app, all through `score_rollout`. A run's summary columns are recomputed from
its rollouts, so means always count scored rollouts only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from lessonlab.core.errors import BadInput, NotFound
from lessonlab.core.formatting import storable
from lessonlab.core.ids import resolve_id
from lessonlab.core.storage.workspace import Workspace

MAX_FEEDBACK_CHARS = 2000


@dataclass(frozen=True)
class Scored:
    """What scoring changed: the rollout, its run, the reward before and after, and the run's new mean."""

    rollout_id: str
    run_id: str
    previous: float | None
    reward: float
    feedback: str | None
    run_mean: float | None


def check_reward(value) -> float:
    """A reward as a float in [0, 1]; BadInput naming the value otherwise."""
    try:
        reward = float(value)
    except (TypeError, ValueError):
        raise BadInput(f"reward {value!r} is not a number (give one from 0 to 1)") from None
    if isinstance(value, bool) or not math.isfinite(reward) or not 0.0 <= reward <= 1.0:
        raise BadInput(f"reward {value!r} must be a number from 0 to 1")
    return reward


def check_feedback(text) -> str | None:
    """Feedback as one stored line of text (None for none); BadInput when it is not text or too long."""
    if text is None:
        return None
    if not isinstance(text, str):
        raise BadInput("feedback must be text")
    text = text.strip()
    if len(text) > MAX_FEEDBACK_CHARS:
        raise BadInput(f"feedback is {len(text):,} characters; at most {MAX_FEEDBACK_CHARS:,}")
    return storable(text)[0] or None


def score_rollout(ws: Workspace, rollout: str, reward, feedback: str | None = None) -> Scored:
    """Give a rollout (id or unique prefix) its reward and feedback; one transaction, run summary refreshed."""
    value = check_reward(reward)
    note = check_feedback(feedback)
    ws.require_writable()
    rollout_id = resolve_id(ws, "rollouts", rollout, "rollout")
    with ws.transaction():
        row = ws.one("SELECT run_id, status, reward FROM rollouts WHERE id = ?", (rollout_id,))
        if row is None:
            raise NotFound(f"no rollout with id {rollout!r}")
        if row["status"] != "ok":
            raise BadInput(f"rollout {rollout_id} failed (no reply to score)")
        ws.conn.execute("UPDATE rollouts SET reward = ?, feedback = ? WHERE id = ?", (value, note, rollout_id))
        refresh_run_summary(ws, row["run_id"])
        mean = ws.one("SELECT mean_reward FROM runs WHERE id = ?", (row["run_id"],))["mean_reward"]
    return Scored(rollout_id, row["run_id"], row["reward"], value, note, mean)


def refresh_run_summary(ws: Workspace, run_id: str) -> None:
    """Recompute a run's counts, reward sum and mean (over scored rollouts only) and tokens from its rollouts."""
    ws.conn.execute(
        """
        UPDATE runs SET
            n_done = agg.n, n_errors = agg.errors, reward_sum = agg.reward_sum, mean_reward = agg.mean_reward,
            prompt_tokens = agg.pt, completion_tokens = agg.ct
        FROM (SELECT COUNT(*) AS n, COALESCE(SUM(status = 'error'), 0) AS errors,
                     COALESCE(SUM(reward), 0) AS reward_sum, AVG(reward) AS mean_reward,
                     COALESCE(SUM(prompt_tokens), 0) AS pt, COALESCE(SUM(completion_tokens), 0) AS ct
              FROM rollouts WHERE run_id = :id) AS agg
        WHERE runs.id = :id
        """,
        {"id": run_id},
    )
