"""The Hermes text protocol for tools, for endpoints that reject OpenAI `tools`.

The tool schemas go into the system prompt inside `<tools>…</tools>`; the model writes
`<tool_call>{"name": …, "arguments": {…}}</tool_call>` in its text; each result goes back in one user
message as `<tool_response>…</tool_response>`. Parsed calls are stored on the assistant message as
OpenAI `tool_calls` (so a trajectory reads the same in both modes) and stripped before sending.
"""
from __future__ import annotations

import json
import re

_CALL_RE = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)

INSTRUCTIONS = """# Tools

You may call one or more functions to help with the user's request.
You are given the function signatures inside <tools></tools> XML tags:
<tools>
{schemas}
</tools>

For each function call, write a JSON object with the function name and arguments inside <tool_call></tool_call> XML tags:
<tool_call>
{{"name": <function-name>, "arguments": <args-json-object>}}
</tool_call>
Each result comes back inside <tool_response></tool_response> tags. When you have the answer, reply without a tool call."""


def with_tools_in_system_prompt(messages: list[dict], schemas: list[dict]) -> list[dict]:
    """The messages with the tool instructions appended to the system message (or in a new one first)."""
    text = INSTRUCTIONS.format(schemas="\n".join(json.dumps(s.get("function", s), ensure_ascii=False)
                                                 for s in schemas))
    out = [dict(m) for m in messages]
    if out and out[0].get("role") == "system" and isinstance(out[0].get("content"), str):
        out[0]["content"] = f"{out[0]['content']}\n\n{text}" if out[0]["content"] else text
    else:
        out.insert(0, {"role": "system", "content": text})
    return out


def parse_calls(text: str, step: int) -> list[dict]:
    """The `<tool_call>` blocks of a reply as OpenAI tool calls; a block that is not JSON keeps its text as arguments."""
    calls = []
    for number, match in enumerate(_CALL_RE.finditer(text or ""), start=1):
        body = match.group(1).strip()
        name, arguments = "", body
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if isinstance(data, dict):
            name = str(data.get("name") or "")
            raw = data.get("arguments", data.get("parameters", {}))
            arguments = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
        calls.append({"id": f"call_{step}_{number}", "type": "function",
                      "function": {"name": name, "arguments": arguments}})
    return calls


def response_message(results: list[tuple[str, str]]) -> dict:
    """One user message carrying every (tool name, result text) as `<tool_response>` blocks."""
    blocks = [f"<tool_response>\n{json.dumps({'name': name, 'content': text}, ensure_ascii=False)}\n</tool_response>"
              for name, text in results]
    return {"role": "user", "content": "\n".join(blocks)}


def wire_messages(messages: list[dict]) -> list[dict]:
    """Stored messages as sent in Hermes mode: assistant messages without the parsed `tool_calls`."""
    return [{k: v for k, v in m.items() if k != "tool_calls"} if m.get("role") == "assistant" else m
            for m in messages]
