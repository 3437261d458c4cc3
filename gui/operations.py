"""What the app does in the background: thin wrappers over core services, run by workers.

Each function has the worker signature `fn(job, ...)`, opens its own workspace connection (a
connection never crosses threads) and calls the same core service the CLI calls.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from lessonlab.core import impact, lessons, reflection

from lessonlab.core.models import llm_client

from lessonlab.core.runs import queries

from lessonlab.core.lessons import review
from lessonlab.core.impact import AblationResult
from lessonlab.core.runs.planning import plan_run
from lessonlab.core.runs.runner import RunResult, execute_run
from lessonlab.core.runs.scoring import Scored, score_rollout
from lessonlab.core.settings import Endpoint, load_settings
from lessonlab.core.storage.workspace import open_workspace

from .trajectory_display import prepare_trajectory

log = logging.getLogger("lessonlab.gui.operations")


def changes_result(result_type: type) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a background operation that writes with the type it returns (gui/perform.py needs it)."""
    def mark(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.result_type = result_type
        return fn
    return mark


@dataclass
class RunRequest:
    """What the New run dialog asks for."""

    suite: str                   # built-in name or path to a JSONL file
    endpoint: Endpoint
    split: str = "train"
    limit: int | None = None
    samples: int = 1
    concurrency: int = 4
    temperature: float | None = None
    max_tokens: int | None = None
    trust_verifiers: bool = False  # run the suite's python verifiers (the user confirmed the files)


@dataclass
class RunCreated:
    """Progress message: the run row exists (the table can show it)."""

    run_id: str
    total: int
    untrusted_python: bool = False   # python verifiers will score 0 (not trusted from the app)


@dataclass
class ServerStarting:
    """Progress message: waiting for the embedded model to load."""


def settings_endpoint(name: str | None) -> Endpoint:
    """The endpoint profile called name, or the default one (read from the settings now)."""
    settings = load_settings()
    return settings.endpoint(name or settings.default_endpoint)


def _base_url(job, endpoint: Endpoint, local_controller) -> str | None:
    """The endpoint's URL, starting the embedded model first when it is the one asked for."""
    if not endpoint.is_local:
        return endpoint.base_url
    if local_controller is None:
        raise RuntimeError("the embedded model is not available in this window")
    job.progress(ServerStarting())
    return local_controller.ensure_running()


@changes_result(RunResult)
def start_and_execute_run(job, workspace_path: Path, request: RunRequest, local_controller=None) -> RunResult:
    """Plan the run, start the embedded model if needed, and execute it until done or cancelled."""
    ws = open_workspace(workspace_path)
    try:
        plan = plan_run(ws, load_settings(), suite=request.suite, endpoint=request.endpoint, split=request.split,
                        limit=request.limit, samples=request.samples, concurrency=request.concurrency,
                        temperature=request.temperature, max_tokens=request.max_tokens,
                        trust_verifiers=request.trust_verifiers)
        job.progress(RunCreated(plan.run_id, plan.total, plan.untrusted_python))
        url = _base_url(job, plan.endpoint, local_controller)
        return asyncio.run(
            execute_run(ws, plan.run_id, plan.endpoint, base_url=url, progress=job.progress, cancel=job.cancel)
        )
    finally:
        ws.close()


def probe_endpoint(job, endpoint: Endpoint, local_controller=None) -> llm_client.ProbeResult:
    """Send one tiny request to the endpoint (starting the embedded model if it is the one)."""
    return llm_client.probe_endpoint(endpoint, _base_url(job, endpoint, local_controller))


def load_compare(job, workspace_path: Path, task_id: str, run_ids: list[str] | None = None) -> dict:
    """A task and its rollouts (with texts) for the compare page."""
    ws = open_workspace(workspace_path)
    try:
        rollouts = queries.task_rollouts(ws, task_id, run_ids=run_ids)
        # The lessons each rollout's prompt held (id, version, text), read once per snapshot.
        lessons = queries.lessons_of_snapshots(ws, [r["snapshot_id"] for r in rollouts])
        for rollout in rollouts:
            rollout["lessons"] = lessons.get(rollout["snapshot_id"], [])
            rollout["trajectory"] = prepare_trajectory(rollout)   # steps highlighted here, off the GUI thread
        return {"task": queries.task_summary(ws, task_id), "rollouts": rollouts}
    finally:
        ws.close()


def latest_task(job, workspace_path: Path) -> str | None:
    """The task of the newest rollout (what the compare page opens on), or None."""
    ws = open_workspace(workspace_path)
    try:
        return queries.latest_task_with_rollouts(ws)
    finally:
        ws.close()


def find_tasks(job, workspace_path: Path, run_id: str | None, text: str | None) -> list[dict]:
    """Tasks of a run, or tasks matching text, for the compare page's picker."""
    ws = open_workspace(workspace_path)
    try:
        if run_id:
            rows = queries.run_task_list(ws, run_id)
            if text:
                rows = [r for r in rows if text.lower() in r["task"].lower()]
            return rows
        return queries.search_tasks(ws, text or "")
    finally:
        ws.close()


def load_impact(job, workspace_path: Path, suite: str | None, model: str | None) -> dict:
    """The suites and models with runs, one suite's timeline (for a model, or all) and its lessons' impact."""
    # suite None (or unknown): the suite of the newest run; model None (or unknown): every model.
    ws = open_workspace(workspace_path)
    try:
        pairs = queries.run_suites_and_models(ws)
        suites = list(dict.fromkeys(p["suite"] for p in pairs))
        if suite not in suites:
            suite = suites[0] if suites else None
        models = [p["model"] for p in pairs if p["suite"] == suite]
        if model not in models:
            model = None
        rows = impact.impact_table(ws, suite=suite, statuses=("active", "retired")) if suite else []
        # Lessons that never reached a prompt of this suite have nothing to show, unless active now.
        rows = [r for r in rows if r.rollouts_with or r.status == "active"]
        return {
            "suites": suites, "suite": suite, "models": models, "model": model,
            "timeline": impact.timeline(ws, suite, model) if suite else [],
            "lessons": rows,
        }
    finally:
        ws.close()


@changes_result(reflection.ReflectionResult)
def reflect(job, workspace_path: Path, endpoint: Endpoint, local_controller=None, *, run_id: str | None = None,
            rollout_ids: list[str] | None = None) -> reflection.ReflectionResult:
    """Reflect on a whole run or on these rollouts, streaming the reply through job.chunk."""
    url = _base_url(job, endpoint, local_controller)
    ws = open_workspace(workspace_path)
    try:
        return reflection.reflect(ws, endpoint, base_url=url, run_id=run_id,
                                  rollout_ids=list(rollout_ids) if rollout_ids else None,
                                  settings=load_settings(), on_chunk=job.chunk, cancel=job.cancel)
    finally:
        ws.close()


@changes_result(Scored)
def score(job, workspace_path: Path, rollout_id: str, reward: float, feedback: str | None) -> Scored:
    """Score one rollout by hand (the core's score_rollout, as `lessonlab score`)."""
    with open_workspace(workspace_path) as ws:
        return score_rollout(ws, rollout_id, reward, feedback)


# --- curation: review, lessons, distill, ablation ----------------------------------------------------


def load_rollouts(job, workspace_path: Path, rollout_ids: list[str]) -> dict:
    """These rollouts (e.g. a proposal's evidence) for the compare page, with a task summary to head them."""
    ws = open_workspace(workspace_path)
    try:
        rows = queries.rollouts_by_ids(ws, list(rollout_ids))
        for row in rows:
            row["trajectory"] = prepare_trajectory(row)
        tasks = list(dict.fromkeys(row["task_id"] for row in rows))
        if len(tasks) == 1:
            task = queries.task_summary(ws, tasks[0])
        else:
            names = list(dict.fromkeys(row["task"] for row in rows))
            task = {"task_id": None, "task": f"{len(rows)} rollouts of {len(tasks)} tasks",
                    "suite": ", ".join(dict.fromkeys(row["suite"] for row in rows)) or "—",
                    "split": "evidence", "prompt": "Tasks: " + ", ".join(names)}
        return {"task": task, "rollouts": rows}
    finally:
        ws.close()


@changes_result(reflection.ReflectionResult)
def retry_reflection(job, workspace_path: Path, reflection_id: str, local_controller=None) -> reflection.ReflectionResult:
    """Run a failed reflection again over the same rollouts with the endpoint it used, streaming the reply."""
    ws = open_workspace(workspace_path)
    try:
        settings = load_settings()
        endpoint = settings.endpoint(review.retry_target(ws, reflection_id)["endpoint"])
        url = _base_url(job, endpoint, local_controller)
        return review.retry_reflection(ws, reflection_id, endpoint, base_url=url, settings=settings,
                                       on_chunk=job.chunk, cancel=job.cancel)
    finally:
        ws.close()


@changes_result(reflection.ReflectionResult)
def distill(job, workspace_path: Path, endpoint: Endpoint, budget: int | None = None,
            local_controller=None) -> reflection.ReflectionResult:
    """Ask for merge/edit/retire proposals that bring the active lessons under budget (they go to Review)."""
    url = _base_url(job, endpoint, local_controller)
    ws = open_workspace(workspace_path)
    try:
        return reflection.distill(ws, endpoint, base_url=url, budget=budget, settings=load_settings(),
                                  on_chunk=job.chunk, cancel=job.cancel)
    finally:
        ws.close()


@dataclass
class AblationRequest:
    """What the Ablate dialog asks for."""

    lesson_id: str
    suite: str                   # built-in name or path to a JSONL file
    endpoint: Endpoint
    split: str = "heldout"
    limit: int | None = None
    samples: int = 2
    concurrency: int = 4


@changes_result(AblationResult)
def ablate(job, workspace_path: Path, request: AblationRequest, local_controller=None) -> AblationResult:
    """Rerun the tasks with and without the lesson (core.impact.run_ablation); progress is {arm: RunProgress}."""
    ws = open_workspace(workspace_path)
    try:
        suite, tasks = impact.ablation_tasks(request.suite, request.split, request.limit)
        url = _base_url(job, request.endpoint, local_controller)
        return asyncio.run(impact.run_ablation(
            ws, request.lesson_id, suite, tasks, endpoint=request.endpoint, base_url=url, samples=request.samples,
            split=request.split, settings=load_settings(), concurrency=request.concurrency,
            progress=lambda arms: job.progress(dict(arms)), cancel=job.cancel,
        ))
    finally:
        ws.close()


def load_impacts(job, workspace_path: Path) -> dict:
    """Every lesson's impact (uses, lift ± CI, latest ablation) from one aggregate pass, keyed by lesson id."""
    ws = open_workspace(workspace_path)
    try:
        return {row.lesson_id: row for row in impact.impact_table(ws)}
    finally:
        ws.close()


def load_lesson_detail(job, workspace_path: Path, lesson_id: str) -> dict:
    """A lesson's history (versions, events, provenance, use) with its evidence rollouts' task and reward."""
    ws = open_workspace(workspace_path)
    try:
        history = lessons.lesson_history(ws, lesson_id)
        evidence = sorted({rid for p in history["proposals"] for rid in p["evidence"]})
        history["evidence"] = review.rollout_briefs(ws, evidence)
        return history
    finally:
        ws.close()
