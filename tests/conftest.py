"""Shared fixtures: every test gets its own config and data dirs, and Qt runs offscreen."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).parent))  # lets tests import fakeserver


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path_factory, monkeypatch):
    """Keep settings and the default workspace out of the user's real directories."""
    base = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("LESSONLAB_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("LESSONLAB_DATA_DIR", str(base / "data"))
    monkeypatch.delenv("LESSONLAB_WORKSPACE", raising=False)
    return base


@pytest.fixture
def workspace(tmp_path):
    """A fresh workspace file."""
    from lessonlab.core.workspace import open_workspace

    ws = open_workspace(tmp_path / "ws.db")
    yield ws
    ws.close()


@pytest.fixture
def make_suite(tmp_path):
    """Write a JSONL suite from a list of task dicts and return its path."""

    def make(tasks: list[dict], name: str = "mini") -> Path:
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(t) + "\n" for t in tasks), encoding="utf-8")
        return path

    return make


def numeric_tasks(n: int, split: str = "train") -> list[dict]:
    """n tasks 'what is i+1?' with numeric verifiers (answer i+1)."""
    return [
        {"id": f"t{i}", "prompt": f"What is {i} + 1?", "verifier": {"kind": "numeric", "answer": i + 1},
         "split": split}
        for i in range(n)
    ]


@pytest.fixture(scope="session")
def local_model_url(tmp_path_factory):
    """Base URL of the real embedded model (llama-cpp-python server + SmolLM2), started once per session."""
    from lessonlab.core.local_model import LocalModelServer

    server = LocalModelServer(log_path=tmp_path_factory.mktemp("local-model") / "server.log")
    server.start()
    yield server.base_url
    server.stop()


@pytest.fixture
def local_endpoint():
    """The built-in `local` endpoint profile (pair it with local_model_url)."""
    from lessonlab.core.settings import local_endpoint as make

    endpoint = make()
    endpoint.params = {**endpoint.params, "max_tokens": 48}  # keep the real-model tests short
    return endpoint
