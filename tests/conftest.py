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
