"""The proxy in front of the real embedded model: the openai SDK gets its reply, streamed and plain, and the
exchange is recorded with the lessons in its upstream prompt."""
from __future__ import annotations

import json

import openai
import pytest

from lessonlab.core.lessons import add_lesson
from lessonlab.core.serve.server import ProxyThread, ServeConfig
from lessonlab.core.storage.workspace import open_workspace

pytestmark = pytest.mark.model


def test_embedded_model_through_the_proxy(tmp_path, local_model_url, local_endpoint):
    path = tmp_path / "ws.db"
    with open_workspace(path) as ws:
        add_lesson(ws, "Answer in one short sentence.")
    config = ServeConfig(endpoint=local_endpoint, base_url=local_model_url, workspace_path=path, port=0)
    with ProxyThread(config) as proxy:
        client = openai.OpenAI(base_url=proxy.url, api_key="unused")
        plain = client.chat.completions.create(model="any", max_tokens=16,
                                               messages=[{"role": "user", "content": "Name a colour."}])
        stream = client.chat.completions.create(model="any", max_tokens=16, stream=True,
                                                messages=[{"role": "user", "content": "Name a fruit."}])
        streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert plain.choices[0].message.content and streamed
    with open_workspace(path) as ws:
        rows = ws.query("SELECT r.status, x.messages_json, x.output FROM rollouts r"
                        " JOIN rollout_texts x ON x.rollout_id = r.id ORDER BY r.rowid")
    assert [r["status"] for r in rows] == ["ok", "ok"]
    assert [r["output"] for r in rows] == [plain.choices[0].message.content, streamed]
    for row in rows:
        system = json.loads(row["messages_json"])[0]
        assert system["role"] == "system" and "Answer in one short sentence." in system["content"]
