"""A tiny in-test tool set and agent tasks for runner tests (the real tool sets live in lessonlab.core.tools)."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from lessonlab.core.tasks.suites import Suite, Task


@dataclass(frozen=True)
class AgentTask(Task):
    """A Task with tools and a turn limit (what suites give tasks with a `tools` field)."""

    tools: tuple = ("test.spell",)
    max_turns: int | None = None


@dataclass
class Outcome:
    content: str
    error: str | None
    state: Any


def _schema(name: str, params: dict) -> dict:
    return {"type": "function", "function": {"name": name, "description": f"test tool {name}",
                                             "parameters": {"type": "object", "properties": params}}}


class TestToolbox:
    """spell(word), big() (100 KB), boom() (raises), hang() (never answers); state counts the calls made."""

    __test__ = False  # not a pytest class

    schemas = [_schema("spell", {"word": {"type": "string"}}), _schema("big", {}), _schema("boom", {}),
               _schema("hang", {})]
    initial_state = {"calls": 0}

    async def call(self, pool, name: str, arguments: str, state: dict) -> Outcome:
        state = {"calls": state["calls"] + 1}
        args = json.loads(arguments)
        if name == "spell":
            return Outcome("\n".join(args["word"]), None, state)
        if name == "big":
            return Outcome("x" * 100_000, None, state)
        if name == "boom":
            raise RuntimeError("the tool broke")
        await asyncio.sleep(3600)
        raise AssertionError("hang() answered")


def test_toolboxes(job, trust):
    """The toolbox factory runner tests pass to execute_run."""
    return TestToolbox()


test_toolboxes.__test__ = False


def spelling_suite(n: int, max_turns: int | None = None) -> Suite:
    """n tasks asking how many r's are in a word, each with the test tools."""
    words = ["strawberry", "error", "mirror", "carrier", "terror", "barrier", "arrear", "rare"][:n]
    tasks = tuple(AgentTask(f"w{i}", f"How many r's are in \"{w}\"? End with 'Answer: <n>'.",
                            {"kind": "numeric", "answer": w.count("r")}, max_turns=max_turns)
                  for i, w in enumerate(words))
    return Suite("spelling", "test", tasks)
