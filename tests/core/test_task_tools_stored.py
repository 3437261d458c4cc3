"""A run of tasks with tools records their tools and turn limit, and refuses untrusted python tool sets."""
from __future__ import annotations

import json

import pytest

from lessonlab.core.lessons.snapshots import current_snapshot
from lessonlab.core.runs.runner import create_run, task_tool_fields
from lessonlab.core.settings import Endpoint
from lessonlab.core.tasks.suites import load_suite
from lessonlab.core.tools import UntrustedToolSet, toolbox_for

ENDPOINT = Endpoint(name="s", base_url="http://127.0.0.1:9/v1", model="m")
TASKS = [
    {"id": "plain", "prompt": "What is 1 + 1?", "verifier": {"kind": "numeric", "answer": 2}},
    {"id": "agent", "prompt": "Spell it.", "tools": ["letters.spell"], "max_turns": 4,
     "verifier": {"kind": "contains", "text": "s"}},
]


def test_tools_and_max_turns_are_stored_with_the_task(workspace, make_suite):
    suite = load_suite(str(make_suite(TASKS)))
    create_run(workspace, suite, suite.select("train"), endpoint=ENDPOINT, snapshot=current_snapshot(workspace),
               samples=1, split="train", seed=1)
    rows = {row["name"]: row for row in workspace.query("SELECT * FROM tasks")}
    assert rows["plain"]["tools_json"] is None and rows["plain"]["max_turns"] is None
    assert json.loads(rows["agent"]["tools_json"]) == ["letters.spell"] and rows["agent"]["max_turns"] == 4
    assert task_tool_fields(rows["plain"]) == {}
    fields = task_tool_fields(rows["agent"])
    assert fields == {"tools": ["letters.spell"], "max_turns": 4}
    box = toolbox_for({**fields, "metadata": json.loads(rows["agent"]["metadata_json"])})
    assert box.names == ["spell"] and box.max_turns == 4


def test_an_untrusted_python_tool_set_is_refused_before_anything_is_written(workspace, make_suite):
    tasks = [{**TASKS[1], "tools": ["python:my_tools:make"]}]
    suite = load_suite(str(make_suite(tasks)))
    with pytest.raises(UntrustedToolSet) as info:
        create_run(workspace, suite, suite.select("train"), endpoint=ENDPOINT, snapshot=current_snapshot(workspace),
                   samples=1, split="train", seed=1)
    assert str(info.value).startswith(f"{suite.source}: task 'agent' uses the tool set 'python:my_tools:make'")
    assert workspace.one("SELECT COUNT(*) AS n FROM runs")["n"] == 0
    assert workspace.one("SELECT COUNT(*) AS n FROM tasks")["n"] == 0
