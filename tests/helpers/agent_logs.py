"""Inspect AI agent logs for tests: samples whose assistant calls tools (Inspect's own message shapes)."""
from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.inspect_logs import _sample, newest_eval

AGENT_SYSTEM = "You are a calculator agent. Use the tools."


def _assistant(key: str, text: str, calls: list[tuple[str, str, dict]]) -> dict:
    """An Inspect assistant message calling tools: calls are (id, function, arguments)."""
    return {"id": key, "role": "assistant", "content": text, "source": "generate", "model": "gpt-5-mini",
            "tool_calls": [{"id": call_id, "function": name, "arguments": arguments, "type": "function"}
                           for call_id, name, arguments in calls]}


def _tool(key: str, call_id: str, name: str, content: str) -> dict:
    return {"id": key, "role": "tool", "content": content, "tool_call_id": call_id, "function": name}


def agent_sample(sample_id, *, calls: list[tuple[str, dict, str]], answer: str, text: str = "",
                 score: str = "C") -> dict:
    """A sample whose agent makes one call per step, (tool, arguments, result) each, then answers."""
    sample = _sample(sample_id, 1, question="What is 1 + 2? Use the tools.", reply=answer, system=AGENT_SYSTEM,
                     scores={"match": {"value": score, "answer": answer, "explanation": f"answered {answer}"}})
    final = sample["messages"].pop()
    for n, (name, arguments, result) in enumerate(calls, start=1):
        call_id = f"call_{sample_id}_{n}"
        sample["messages"].append(_assistant(f"a{sample_id}{n}", text if n == 1 else "", [(call_id, name, arguments)]))
        sample["messages"].append(_tool(f"t{sample_id}{n}", call_id, name, result))
    sample["messages"].append(final)
    return sample


def agent_eval(path: Path, samples: list[dict] | None = None) -> Path:
    """An `.eval` log of agent samples (by default one that calls add(x=1, y=2), gets 3 and answers)."""
    samples = samples if samples is not None else [
        agent_sample("adds", calls=[("add", {"x": 1, "y": 2}, "3")], answer="The sum is 3.", text="I will add.")]
    return newest_eval(path, samples=samples)


def long_result(lines: int = 400) -> str:
    """A tool result far longer than a terminal shows (numbered lines, so a cut is visible)."""
    return "\n".join(json.dumps({"line": i, "text": "x" * 40}) for i in range(lines))
