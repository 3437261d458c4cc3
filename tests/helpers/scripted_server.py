"""A small scripted OpenAI-compatible HTTP server on 127.0.0.1 for fault and exact-reply tests."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


@dataclass
class Reply:
    """What the server does for one request."""

    status: int = 200
    body: str | bytes | dict | None = None   # dict → JSON
    headers: dict = field(default_factory=dict)
    delay: float = 0.0                       # seconds to wait before answering
    drop: bool = False                       # close the connection without answering
    stream_chunks: list[str] | None = None   # answer as SSE with these content deltas


def completion(content: str, model: str = "scripted-model", prompt_tokens: int = 11, completion_tokens: int = 7) -> dict:
    """A chat.completion body with one choice."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


Script = Callable[[dict, int], Reply]


class ScriptedServer:
    """Serve `script(request_json, request_number)` on a free port; use as a context manager."""

    def __init__(self, script: Script):
        self.script = script
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                body = json.dumps({"object": "list", "data": [{"id": "scripted-model", "object": "model"}]}).encode()
                self._send(200, body, {"Content-Type": "application/json"})

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    request = json.loads(raw)
                except ValueError:
                    request = {"_raw": raw.decode(errors="replace")}
                with outer.lock:
                    outer.requests.append(request)
                    number = len(outer.requests)
                reply = outer.script(request, number)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.drop:
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                if reply.stream_chunks is not None:
                    self._stream(reply)
                    return
                body = reply.body
                headers = dict(reply.headers)
                if isinstance(body, dict):
                    body = json.dumps(body)
                    headers.setdefault("Content-Type", "application/json")
                if isinstance(body, str):
                    body = body.encode()
                self._send(reply.status, body or b"", headers)

            def _stream(self, reply: Reply):
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                for piece in reply.stream_chunks:
                    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "scripted-model",
                             "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                end = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "scripted-model",
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()
                self.close_connection = True

            def _send(self, status, body: bytes, headers: dict):
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def echo_answer(answer: str) -> Script:
    """A script that always answers with `answer`."""
    return lambda request, n: Reply(body=completion(answer))


def tool_call_completion(calls: list[tuple[str, str]], content: str = "", prompt_tokens: int = 11,
                         completion_tokens: int = 7) -> dict:
    """A chat.completion whose one choice asks for native tool calls: (name, arguments JSON text) each."""
    body = completion(content, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
    body["choices"][0]["message"]["tool_calls"] = [
        {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": arguments}}
        for i, (name, arguments) in enumerate(calls, start=1)]
    body["choices"][0]["finish_reason"] = "tool_calls"
    return body


def rejects_tools(script: Script, status: int = 400) -> Script:
    """`script`, except that a request carrying `tools` is refused the way servers without function calling do."""
    def run(request: dict, n: int) -> Reply:
        if "tools" in request:
            return Reply(status=status, body={"error": {"message": "tools are not supported by this model"}})
        return script(request, n)
    return run
