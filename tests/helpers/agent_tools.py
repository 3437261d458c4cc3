"""Agent tasks for runner tests, on the real tool sets, and a toolbox that breaks the Toolbox promise."""
from __future__ import annotations

import asyncio

from lessonlab.core.tasks.suites import Suite, Task
from lessonlab.core.tools import toolbox_for

WORDS = ["strawberry", "error", "mirror", "carrier", "terror", "barrier", "arrear", "rare"]


def spelling_suite(n: int, max_turns: int | None = None) -> Suite:
    """n tasks asking how many r's are in a word, each with `letters.spell`."""
    tasks = tuple(Task(f"w{i}", f"How many r's are in \"{w}\"? End with 'Answer: <n>'.",
                       {"kind": "numeric", "answer": w.count("r")}, tools=("letters.spell",), max_turns=max_turns)
                  for i, w in enumerate(WORDS[:n]))
    return Suite("spelling", "test", tasks)


def _schema(name: str) -> dict:
    return {"type": "function", "function": {"name": name, "description": f"test tool {name}",
                                             "parameters": {"type": "object", "properties": {}}}}


class BrokenToolbox:
    """The task's real toolbox plus boom() that raises and hang() that never answers (a toolbox must never do either)."""

    def __init__(self, real):
        self.real = real
        self.schemas = [*real.schemas, _schema("boom"), _schema("hang")]
        self.initial_state = real.initial_state

    async def call(self, pool, name: str, arguments: str, state):
        if name == "boom":
            raise RuntimeError("the tool broke")
        if name == "hang":
            await asyncio.sleep(3600)
        return await self.real.call(pool, name, arguments, state)


def broken_toolboxes(job, trust):
    """A toolbox factory for execute_run: the real toolbox wrapped in BrokenToolbox."""
    return BrokenToolbox(toolbox_for(job.task, trust=trust))
