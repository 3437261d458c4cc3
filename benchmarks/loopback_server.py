"""A minimal asyncio OpenAI-compatible server for benchmarks: answers every chat completion after a fixed delay.

Arguments: port (0: any), delay in seconds, and optionally TOOL_STEPS: when given, a request holding fewer
than TOOL_STEPS `tool` messages is answered with one native call of `spell` (letters.spell), so every rollout of a task with
tools makes TOOL_STEPS tool calls and then answers (TOOL_STEPS + 1 model calls).
"""
from __future__ import annotations

import asyncio
import json
import sys

REPLY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "loopback-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Answer: 1"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23},
}).encode()


TOOL_REPLY = json.dumps({
    "id": "chatcmpl-bench", "object": "chat.completion", "created": 0, "model": "loopback-model",
    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
        "role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "spell", "arguments": "{\"word\": \"hi\"}"}}]}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 3, "total_tokens": 23},
}).encode()


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Read one HTTP request off a keep-alive connection; return its head and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return head, body


def reply_for(body: bytes, tool_steps: int) -> bytes:
    """The final answer, or a tool call while the request has fewer than `tool_steps` tool results."""
    if tool_steps and body.count(b'"role": "tool"') + body.count(b'"role":"tool"') < tool_steps:
        return TOOL_REPLY
    return REPLY


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float, tool_steps: int) -> None:
    try:
        while True:
            _, body = await read_request(reader)
            await asyncio.sleep(delay)
            reply = reply_for(body, tool_steps)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(reply)).encode() + b"\r\n\r\n" + reply
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int, delay: float, tool_steps: int = 0) -> None:
    server = await asyncio.start_server(lambda r, w: handle(r, w, delay, tool_steps), "127.0.0.1", port,
                                        backlog=1024)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 0))
