"""Agent logs for tests: chat JSONL lines whose rollouts call tools (OpenAI `tool_calls` and `tool` messages)."""
from __future__ import annotations

import json
from pathlib import Path

SYSTEM = "You are a careful calculator agent."
QUESTION = "What is 1 + 2? Use the add tool. End with 'Answer: <n>'."
ADD_TOOL = {"type": "function", "function": {
    "name": "add", "description": "Add two integers exactly.",
    "parameters": {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
                   "required": ["x", "y"]}}}


def call(call_id: str, name: str, arguments: dict | str) -> dict:
    """An assistant message that makes one tool call."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    return {"role": "assistant", "content": "",
            "tool_calls": [{"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}]}


def result(call_id: str, content: str, name: str = "add") -> dict:
    """The tool message answering one call."""
    return {"role": "tool", "tool_call_id": call_id, "name": name, "content": content}


def agent_line(steps: list[dict], answer: str, reward: float, *, tools: bool = True, **extra) -> dict:
    """One chat JSONL line: system, question, the given call/result messages, then the final answer."""
    line = {"task_id": "add-one-two", "messages": [{"role": "system", "content": SYSTEM},
                                                   {"role": "user", "content": QUESTION},
                                                   *steps, {"role": "assistant", "content": answer}],
            "reward": reward, "feedback": "expected 3" if reward < 1 else "correct", **extra}
    if tools:
        line["tools"] = [ADD_TOOL]
    return line


def right_and_wrong() -> list[dict]:
    """Two attempts at 1 + 2: one calls add(x=1, y=2), gets 3 and is right; one calls add(x=1, y=3) and is wrong."""
    return [
        agent_line([call("call_a", "add", {"x": 1, "y": 2}), result("call_a", "3")], "Answer: 3", 1.0),
        agent_line([call("call_b", "add", {"x": 1, "y": 3}), result("call_b", "4")], "Answer: 4", 0.0),
    ]


def long_and_failing(result_chars: int = 5000) -> dict:
    """Four model calls: a long first result, a tool error, a good call, then a wrong final answer."""
    return agent_line([
        call("c1", "lookup", {"topic": "addition"}), result("c1", "A" * (result_chars // 2) + "B" * (result_chars // 2),
                                                            name="lookup"),
        call("c2", "mul", {"x": 1, "y": 2}), result("c2", "Error: unknown tool 'mul'", name="mul"),
        call("c3", "add", {"x": 1, "y": 2}), result("c3", "3"),
    ], "Answer: 2", 0.0)


def write_jsonl(path: Path, lines: list[dict]) -> Path:
    """The lines as a JSONL file."""
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path
