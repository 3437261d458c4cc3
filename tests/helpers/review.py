"""Workspaces with something to review: a run, lessons written by hand, and reflections with pending proposals."""
from __future__ import annotations

import json

from lessonlab.core import lessons as L
from lessonlab.core import reflection as R
from lessonlab.core.models.llm_client import RetryPolicy
from lessonlab.core.settings import Endpoint
from lessonlab.core.storage.workspace import open_workspace

from .scripted_server import Reply, ScriptedServer, completion
from .tasks import answer_for, numeric_tasks, seed_run

FAST = RetryPolicy(max_attempts=2, base_delay=0.01, max_delay=0.02)


class ReviewServer(ScriptedServer):
    """Runs get 'Answer: n' (right for odd tasks, off by one for even ones); reflections get `reflection_reply`."""

    def __init__(self):
        self.reflection_reply: str | dict = '{"analysis": "nothing", "operations": []}'
        super().__init__(self._script)

    def _script(self, request: dict, n: int) -> Reply:
        if "response_format" in request:  # reflections and distills ask for JSON; runs do not
            reply = self.reflection_reply
            text = reply if isinstance(reply, str) else json.dumps(reply)
            return Reply(stream_chunks=[text]) if request.get("stream") else Reply(body=completion(text))
        right = answer_for(request)
        return Reply(body=completion(f"Answer: {right if right % 2 else right + 1}"))

    def endpoint(self, name: str = "reviewer") -> Endpoint:
        """An endpoint profile pointing here (not saved in the settings)."""
        return Endpoint(name=name, base_url=self.base_url, model="judge", timeout=10)


def reflect_with(ws, server: ReviewServer, reply, **kwargs) -> R.ReflectionResult:
    """One reflection stored in ws whose reply is `reply` (a dict or raw text)."""
    server.reflection_reply = reply
    return R.reflect(ws, server.endpoint(), retry=FAST, **kwargs)


def seed_review(path, suite_path, server: ReviewServer) -> dict:
    """A run of 4 tasks × 2 samples, three active lessons, and two reflections with 6 pending proposals in all.

    The older reflection proposes an add (with evidence) and a retire; the newer one an add that leaks
    a task's answer, an edit, a merge and an add with evidence. Returns the ids.
    """
    run_id = seed_run(path, suite_path, server, samples=2)
    ws = open_workspace(path)
    try:
        working = L.add_lesson(ws, "Show your working.").lesson_ids[0]
        digits = L.add_lesson(ws, "Answer with digits only.").lesson_ids[0]
        check = L.add_lesson(ws, "Double-check the sum.").lesson_ids[0]
        rollouts = [r["id"] for r in ws.query("SELECT id FROM rollouts WHERE run_id = ? ORDER BY rowid", (run_id,))]
        older = reflect_with(ws, server, {"analysis": "Even tasks are answered one too high.", "operations": [
            {"op": "add", "text": "Write the final line as 'Answer: <n>' and nothing after it.",
             "rationale": "the answer line is what gets scored", "evidence": rollouts[:2]},
            {"op": "retire", "lesson": check, "rationale": "it did not change any reward"},
        ]}, run_id=run_id)
        newer = reflect_with(ws, server, {"analysis": "The model adds one too many on even numbers.", "operations": [
            {"op": "add", "text": "For 'What is 2 + 1?' the answer is 3.", "rationale": "memorise it", "evidence": []},
            {"op": "edit", "lesson": working, "text": "Show your working step by step, then check it.",
             "rationale": "be more specific"},
            {"op": "merge", "lessons": [digits, check], "text": "Answer with digits only, after double-checking the sum.",
             "rationale": "they belong together"},
            {"op": "add", "text": "Add exactly one to the number given; do not round.",
             "rationale": "off-by-one errors", "evidence": rollouts[2:4]},
        ]}, run_id=run_id)
        return {"run_id": run_id, "rollouts": rollouts, "lessons": [working, digits, check],
                "older": older.reflection_id, "newer": newer.reflection_id}
    finally:
        ws.close()


def make_review_workspace(path, make_suite) -> dict:
    """seed_review on a fresh suite of 4 numeric tasks, with its own server (stopped afterwards)."""
    with ReviewServer() as server:
        return seed_review(path, make_suite(numeric_tasks(4)), server)
