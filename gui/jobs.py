"""Slow user actions as plain functions run by workers: each opens its own workspace connection."""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

from lessonlab.core import llm_client
from lessonlab.core.runner import RunResult, create_run, execute_run
from lessonlab.core.settings import Endpoint, load_settings
from lessonlab.core.snapshots import current_snapshot
from lessonlab.core.suites import load_suite
from lessonlab.core.workspace import open_workspace

log = logging.getLogger("lessonlab.gui.jobs")


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


@dataclass
class RunCreated:
    """Progress message: the run row exists (the table can show it)."""

    run_id: str
    total: int


@dataclass
class ServerStarting:
    """Progress message: waiting for the embedded model to load."""


def start_and_execute_run(job, workspace_path: Path, request: RunRequest, local_controller=None) -> RunResult:
    """Create the run, start the embedded model if needed, and execute it until done or cancelled."""
    ws = open_workspace(workspace_path)
    try:
        settings = load_settings()
        suite = load_suite(request.suite)
        tasks = suite.select(request.split, request.limit)
        snapshot = current_snapshot(ws, settings, suite.name)
        run_id = create_run(
            ws, suite, tasks, endpoint=request.endpoint, snapshot=snapshot, samples=request.samples,
            split=request.split, limit=request.limit, concurrency=request.concurrency,
            params={"temperature": request.temperature, "max_tokens": request.max_tokens},
        )
        job.progress(RunCreated(run_id, len(tasks) * request.samples))
        url = request.endpoint.base_url
        if request.endpoint.is_local:
            if local_controller is None:
                raise RuntimeError("the embedded model is not available in this window")
            job.progress(ServerStarting())
            url = local_controller.ensure_running()
        return asyncio.run(
            execute_run(ws, run_id, request.endpoint, base_url=url, progress=job.progress, cancel=job.cancel)
        )
    finally:
        ws.close()


def probe_endpoint(job, endpoint: Endpoint, local_controller=None) -> dict:
    """Send one tiny request to the endpoint; return latency, model and reply."""
    url = endpoint.base_url
    if endpoint.is_local:
        url = local_controller.ensure_running()

    async def probe():
        client = llm_client.make_client(endpoint, url)
        try:
            return await llm_client.chat(client, endpoint.model, [{"role": "user", "content": "Say OK."}],
                                          {"max_tokens": 8}, retry=llm_client.RetryPolicy(max_attempts=1))
        finally:
            await client.close()

    result = asyncio.run(probe())
    return {"latency_ms": result.latency_ms, "model": result.model, "reply": result.output}


def load_compare(job, workspace_path: Path, task_id: str, run_ids: list[str] | None = None) -> dict:
    """A task and its rollouts (with texts) for the compare page."""
    from lessonlab.core import queries

    ws = open_workspace(workspace_path)
    try:
        return {
            "task": queries.task_summary(ws, task_id),
            "rollouts": queries.task_rollouts(ws, task_id, run_ids=run_ids),
        }
    finally:
        ws.close()


def find_tasks(job, workspace_path: Path, run_id: str | None, text: str | None) -> list[dict]:
    """Tasks of a run, or tasks matching text, for the compare page's picker."""
    from lessonlab.core import queries

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


class ReflectionUnavailable(RuntimeError):
    """This build of lessonlab has no reflection engine yet."""


def reflection_available() -> bool:
    """Whether lessonlab.core.reflection can be imported."""
    import importlib.util

    return importlib.util.find_spec("lessonlab.core.reflection") is not None


def reflect_on(job, workspace_path: Path, rollout_ids: list[str], endpoint: Endpoint, local_controller=None):
    """Reflect on these rollouts, streaming the reply through job.chunk; return the ReflectionResult."""
    try:
        from lessonlab.core import reflection
    except ImportError as exc:
        raise ReflectionUnavailable(f"reflection is not available in this build yet ({exc})") from exc
    url = endpoint.base_url
    if endpoint.is_local:
        job.progress(ServerStarting())
        url = local_controller.ensure_running()
    ws = open_workspace(workspace_path)
    try:
        return reflection.reflect(ws, endpoint, base_url=url, rollout_ids=list(rollout_ids),
                                  settings=load_settings(), on_chunk=job.chunk, cancel=job.cancel)
    finally:
        ws.close()
