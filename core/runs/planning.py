"""Planning a run, shared by the CLI and the app: which tasks, which snapshot, which endpoint."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lessonlab.core.runs import queries
from lessonlab.core.errors import BadInput
from lessonlab.core.runs.owner import check_not_running
from lessonlab.core.runs.runner import create_run
from lessonlab.core.settings import Endpoint, Settings
from lessonlab.core.lessons.snapshots import current_snapshot
from lessonlab.core.tasks.suites import load_suite
from lessonlab.core.tools import check_tasks_trusted
from lessonlab.core.storage.workspace import Workspace


class PlanError(BadInput):
    """A run that cannot be planned or resumed as asked."""


@dataclass
class RunPlan:
    """A recorded run ready to execute."""

    run_id: str
    endpoint: Endpoint
    total: int
    trust_verifiers: bool
    untrusted_python: bool       # the suite has python verifiers that will score 0 (not trusted)
    resumed: bool = False
    notice: str | None = None    # something the person should know before it starts (e.g. a re-pointed profile)

    def describe(self, ws: Workspace) -> str:
        """'run …: suite s (train), 12 rollouts on local (model), concurrency 4'."""
        run = queries.run_row(ws, self.run_id)
        return (f"run {self.run_id}: suite {run['suite']} ({run['split']}), {run['n_planned']} rollouts "
                f"on {self.endpoint.name} ({self.endpoint.model}), concurrency {run['concurrency']}")


def plan_run(ws: Workspace, settings: Settings, *, suite: str, endpoint: Endpoint | str | None = None,
             split: str = "train", limit: int | None = None, samples: int = 1, concurrency: int = 4,
             temperature: float | None = None, max_tokens: int | None = None, seed: int | None = None,
             trust_verifiers: bool = False) -> RunPlan:
    """Load the suite, take the current snapshot and record a new run; return its plan."""
    loaded = load_suite(suite)
    tasks = loaded.select(split, limit)
    check_tasks_trusted(tasks, trust_verifiers, loaded.source)  # refused before the snapshot is written
    if not isinstance(endpoint, Endpoint):
        endpoint = settings.endpoint(endpoint or settings.default_endpoint)
    snapshot = current_snapshot(ws, settings, loaded.name)
    run_id = create_run(
        ws, loaded, tasks, endpoint=endpoint, snapshot=snapshot, samples=samples, split=split, limit=limit,
        concurrency=concurrency, params={"temperature": temperature, "max_tokens": max_tokens}, seed=seed,
        trust_verifiers=trust_verifiers,
    )
    return _plan(ws, run_id, endpoint, trust_verifiers, resumed=False)


def plan_resume(ws: Workspace, settings: Settings, run_ident: str) -> RunPlan:
    """The plan to finish an interrupted run with its own endpoint and settings."""
    run_id = queries.resolve_id(ws, "runs", run_ident)
    run = queries.run_row(ws, run_id)
    if run["n_done"] >= run["n_planned"]:
        raise PlanError(f"run {run_id} is already complete ({run['n_done']}/{run['n_planned']} rollouts)")
    check_not_running(ws, run_id)  # refused now, before an embedded model is started for nothing
    endpoint, notice = resume_endpoint(run, settings.endpoint(run["endpoint"]))
    plan = _plan(ws, run_id, endpoint, bool(run["trust_verifiers"]), resumed=True)
    plan.notice = notice
    return plan


def resume_endpoint(run: dict, profile: Endpoint) -> tuple[Endpoint, str | None]:
    """The endpoint that finishes a run: its recorded server and model (the profile gives key and timeout).

    A run's rollouts must come from one server, or its mean mixes two models; when the profile has been
    re-pointed since, the run still goes back to where it started, and the notice says so.
    """
    if profile.is_local or not run["base_url"]:
        return profile, None  # the embedded model gets a new port each time; its model is fixed
    recorded = dataclasses.replace(profile, base_url=run["base_url"], model=run["model"] or profile.model)
    if (profile.base_url or "").rstrip("/") == run["base_url"].rstrip("/") and recorded.model == profile.model:
        return recorded, None
    return recorded, (f"endpoint {profile.name!r} now points to {profile.base_url} ({profile.model}); run "
                      f"{run['id']} continues on {run['base_url']} ({recorded.model}), where it started, "
                      "so that all its rollouts come from one server")


def _plan(ws: Workspace, run_id: str, endpoint: Endpoint, trust: bool, *, resumed: bool) -> RunPlan:
    run = queries.run_row(ws, run_id)
    untrusted = not trust and queries.run_uses_python_verifiers(ws, run_id)
    return RunPlan(run_id=run_id, endpoint=endpoint, total=run["n_planned"], trust_verifiers=trust,
                   untrusted_python=untrusted, resumed=resumed)


def run_summary(ws: Workspace, run_id: str) -> dict:
    """What a finished (or interrupted) run came to: counts, mean reward and per-task rewards."""
    detail = queries.run_detail(ws, run_id)
    return {
        "run_id": run_id,
        "status": detail["status"],
        "suite": detail["suite"],
        "endpoint": detail["endpoint"],
        "model": detail["server_model"] or detail["model"],
        "snapshot_id": detail["snapshot_id"],
        "planned": detail["n_planned"],
        "done": detail["n_done"],
        "errors": detail["n_errors"],
        "mean_reward": detail["mean_reward"],
        "first_error": queries.first_error(ws, run_id) if detail["status"] == "failed" else None,
        "tasks": [
            {"task": t["task"], "split": t["split"], "rewards": t["rewards"], "mean_reward": t["mean_reward"],
             "errors": t["errors"]}
            for t in detail["tasks"]
        ],
    }
