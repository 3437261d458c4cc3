"""Fixtures every test can use: isolated config and data dirs, workspaces, suites, the real embedded model."""
from __future__ import annotations

import json
from pathlib import Path

import pytest


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
    from lessonlab.core.storage.workspace import open_workspace

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


@pytest.fixture(scope="session")
def local_model_url(tmp_path_factory):
    """Base URL of the real embedded model (llama-cpp-python server + SmolLM2), started once per session."""
    from lessonlab.core.models.local_model import LocalModelServer

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
