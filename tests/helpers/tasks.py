"""Task fixtures and seeded runs: small numeric suites run through the real runner."""
from __future__ import annotations

import asyncio
import re

from lessonlab.core.runs.runner import create_run, execute_run
from lessonlab.core.settings import Endpoint, load_settings, save_settings
from lessonlab.core.lessons.snapshots import current_snapshot
from lessonlab.core.tasks.suites import load_suite
from lessonlab.core.storage.workspace import open_workspace


def numeric_tasks(n: int, split: str = "train") -> list[dict]:
    """n tasks 'What is i + 1?' with numeric verifiers (answer i+1)."""
    return [{"id": f"t{i}", "prompt": f"What is {i} + 1?", "verifier": {"kind": "numeric", "answer": i + 1},
             "split": split} for i in range(n)]


def answer_for(request: dict) -> int:
    """The right answer to a numeric task's request (what a perfect model would say)."""
    text = request["messages"][-1]["content"]
    return int(re.search(r"What is (\d+) \+ 1", text).group(1)) + 1


def scripted_endpoint(server, name: str = "scripted") -> Endpoint:
    """Save an endpoint profile for the server in the isolated settings and return it."""
    settings = load_settings()
    endpoint = Endpoint(name=name, base_url=server.base_url, model="scripted-model", timeout=10)
    settings.add_endpoint(endpoint)
    settings.default_endpoint = name
    save_settings(settings)
    return settings.endpoint(name)


def seed_run(ws_path, suite_path, server, *, samples=1, split="train") -> str:
    """One completed run of the suite against the server; returns its id."""
    ws = open_workspace(ws_path)
    try:
        suite = load_suite(str(suite_path))
        endpoint = Endpoint(name="scripted", base_url=server.base_url, model="scripted-model", timeout=10)
        run_id = create_run(ws, suite, suite.select(split), endpoint=endpoint, snapshot=current_snapshot(ws),
                            samples=samples, split=split, seed=3)
        asyncio.run(execute_run(ws, run_id, endpoint))
        return run_id
    finally:
        ws.close()
