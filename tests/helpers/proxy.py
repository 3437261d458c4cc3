"""Starting a proxy in-process against a scripted server, for the serve tests."""
from __future__ import annotations

import json
from pathlib import Path

from lessonlab.core.serve.server import ProxyThread, ServeConfig
from lessonlab.core.settings import Endpoint

from tests.helpers.scripted_server import Reply, completion


def proxy_for(upstream_url: str, workspace_path: Path, *, suite: str | None = None, model: str = "upstream-model",
              key_env: str | None = None, timeout: float = 10.0, params: dict | None = None) -> ProxyThread:
    """A ProxyThread (port 0) forwarding to `upstream_url`."""
    endpoint = Endpoint(name="scripted", base_url=upstream_url, model=model, key_env=key_env, timeout=timeout,
                        params=dict(params or {}))
    return ProxyThread(ServeConfig(endpoint=endpoint, base_url=upstream_url, workspace_path=workspace_path,
                                   port=0, suite=suite))


def tool_call_reply(name: str, arguments: dict, call_id: str = "call_1") -> Reply:
    """A completion asking for one tool call."""
    body = completion("")
    body["choices"][0]["message"] = {"role": "assistant", "content": None, "tool_calls": [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}]}
    body["choices"][0]["finish_reason"] = "tool_calls"
    return Reply(body=body)


class Answer:
    """A plain HTTP answer: status, headers, body bytes and the body as JSON."""

    def __init__(self, status: int, headers, body: bytes):
        self.status_code, self.headers, self.content = status, headers, body

    def json(self):
        return json.loads(self.content)


def post(url: str, *, json_body=None, content: bytes | None = None, headers: dict | None = None,
         timeout: float = 30) -> Answer:
    """POST with the standard library (no client-side retries, exact bytes)."""
    import urllib.error
    import urllib.request

    data = content if content is not None else json.dumps(json_body).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.headers, exc.read())
