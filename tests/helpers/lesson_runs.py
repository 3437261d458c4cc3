"""A workspace with a history: runs of one suite with lessons added, ablated and retired between them."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass

from lessonlab.core import impact, lessons
from lessonlab.core.settings import Endpoint
from lessonlab.core.tasks.suites import load_suite
from lessonlab.core.storage.workspace import open_workspace

from .scripted_server import Reply, ScriptedServer, completion
from .tasks import answer_for, seed_run

HELPFUL = "End your reply with the line 'Answer: <number>'."
NEUTRAL = "Keep the reply short."


def lesson_aware_server() -> ScriptedServer:
    """Answers right only when the HELPFUL lesson is in the system prompt (wrong by 7 otherwise)."""
    def script(request, n):
        system = " ".join(m["content"] for m in request["messages"] if m["role"] == "system")
        right = answer_for(request)
        return Reply(body=completion(f"Answer: {right if HELPFUL in system else right + 7}"))
    return ScriptedServer(script)


@dataclass
class LessonHistory:
    """Ids of what seed_lesson_history made, in time order."""

    runs: list[str]          # every run, ablation arms included, oldest first
    helpful: str             # lesson that turns every answer right
    neutral: str             # lesson that changes nothing
    ablation_runs: tuple[str, str]


def seed_lesson_history(path, suite_path, server, samples: int = 2) -> LessonHistory:
    """run · +helpful · run · +neutral · run · ablate helpful (2 runs) · retire helpful · run."""
    runs = [seed_run(path, suite_path, server, samples=samples)]
    ws = open_workspace(path)
    try:
        helpful = lessons.add_lesson(ws, HELPFUL).lesson_ids[0]
        runs.append(seed_run(path, suite_path, server, samples=samples))
        neutral = lessons.add_lesson(ws, NEUTRAL).lesson_ids[0]
        runs.append(seed_run(path, suite_path, server, samples=samples))
        suite = load_suite(str(suite_path))
        endpoint = Endpoint(name="scripted", base_url=server.base_url, model="scripted-model", timeout=10)
        ablation = asyncio.run(impact.run_ablation(ws, helpful, suite, suite.select("train"), endpoint=endpoint,
                                                   base_url=None, samples=samples, split="train", seed=5))
        runs += [ablation.run_with, ablation.run_without]
        lessons.retire_lesson(ws, helpful, reason="trying without it")
    finally:
        ws.close()
    runs.append(seed_run(path, suite_path, server, samples=samples))
    return LessonHistory(runs, helpful, neutral, (ablation.run_with, ablation.run_without))
