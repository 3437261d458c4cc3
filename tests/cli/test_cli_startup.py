"""Commands that never call a model start without importing the model client or other heavy packages."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from lessonlab.core.storage.workspace import open_workspace

# openai (+ its aiohttp transport) takes over a second to import on a small machine; jsonschema, sqlite_utils
# (which loads numpy) and zstandard are only needed to score, write, or read a zstd member.
HEAVY = ("openai", "aiohttp", "jsonschema", "sqlite_utils", "numpy", "zstandard")
# What only running (or checking a suite, or importing a file) needs: the event loop, the runner, the suites with
# every verifier kind and tool set, and the import/export formats. Reading runs and lessons loads none of them.
RUNNING_ONLY = ("asyncio", "concurrent.futures", "lessonlab.core.runs.runner", "lessonlab.core.runs.planning",
                "lessonlab.core.verifiers", "lessonlab.core.verifiers.pool", "lessonlab.core.tasks.suites",
                "lessonlab.core.tools", "lessonlab.core.transfer", "lessonlab.core.settings")

PROBE = """
import json, sys
from lessonlab.cli.root import main
arguments, watched = json.loads(sys.argv[1]), json.loads(sys.argv[2])
sys.argv = ["lessonlab", *arguments]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(name for name in watched if name in sys.modules)
sys.stderr.write("\\nLOADED " + json.dumps({"code": code, "heavy": heavy}) + "\\n")
"""


def loaded_after(arguments: list[str], heavy=HEAVY) -> dict:
    """Run `lessonlab ARGUMENTS` in a fresh interpreter; its exit code and which heavy modules it imported."""
    # The probe's own arguments follow "-c": sys.argv[1] and [2] inside it.
    done = subprocess.run([sys.executable, "-c", PROBE, json.dumps(arguments), json.dumps(list(heavy))],
                          capture_output=True, text=True, timeout=60)
    line = [text for text in done.stderr.splitlines() if text.startswith("LOADED ")]
    assert line, done.stderr
    return json.loads(line[-1][len("LOADED "):])


@pytest.fixture
def workspace_with_a_run(tmp_path):
    source = tmp_path / "chat.jsonl"
    source.write_text("".join(json.dumps({"messages": [{"role": "user", "content": f"q{i}"},
                                                       {"role": "assistant", "content": "a"}],
                                          "reward": 1.0, "task_id": f"t{i}"}) + "\n" for i in range(3)),
                      encoding="utf-8")
    from lessonlab.core.transfer import import_file

    path = tmp_path / "ws.db"
    ws = open_workspace(path)
    run_id = import_file(ws, source).run_id
    ws.close()
    return path, run_id


def test_version_imports_no_model_client():
    assert loaded_after(["--version"]) == {"code": 0, "heavy": []}


def test_listing_and_showing_runs_import_no_model_client(workspace_with_a_run):
    path, run_id = workspace_with_a_run
    assert loaded_after(["runs", "--workspace", str(path)]) == {"code": 0, "heavy": []}
    assert loaded_after(["show", run_id, "--workspace", str(path)]) == {"code": 0, "heavy": []}
    assert loaded_after(["lessons", "list", "--workspace", str(path)]) == {"code": 0, "heavy": []}


def test_listings_import_nothing_that_only_running_needs(workspace_with_a_run):
    path, run_id = workspace_with_a_run
    for arguments in (["runs", "--workspace", str(path)], ["show", run_id, "--workspace", str(path)]):
        assert loaded_after(arguments, heavy=RUNNING_ONLY) == {"code": 0, "heavy": []}, arguments
    # Listing lessons shows each one's impact, which needs the settings (token budget) but not the suites or
    # the event loop (only an ablation does).
    assert loaded_after(["lessons", "list", "--workspace", str(path)], heavy=RUNNING_ONLY) == \
        {"code": 0, "heavy": ["lessonlab.core.settings"]}


def test_showing_a_rollout_imports_nothing_that_only_running_needs(workspace_with_a_run):
    path, run_id = workspace_with_a_run
    ws = open_workspace(path)
    rollout_id = ws.one("SELECT id FROM rollouts WHERE run_id = ? LIMIT 1", (run_id,))["id"]
    ws.close()
    assert loaded_after(["show", rollout_id, "--workspace", str(path)], heavy=RUNNING_ONLY) == \
        {"code": 0, "heavy": []}


def test_running_commands_still_load_what_they_need():
    # The deferred imports happen where they are used: listing suites loads them (and the probe sees it).
    done = loaded_after(["suites"], heavy=("lessonlab.core.tasks.suites", "lessonlab.core.verifiers"))
    assert done == {"code": 0, "heavy": ["lessonlab.core.tasks.suites", "lessonlab.core.verifiers"]}


def test_the_probe_sees_an_import_when_there_is_one(workspace_with_a_run):
    # The same probe notices a module a command does load (the workspace's own sqlite3), so an empty
    # list above means the heavy packages were really not imported.
    path, _run_id = workspace_with_a_run
    assert loaded_after(["runs", "--workspace", str(path)], heavy=("click", "sqlite3")) == \
        {"code": 0, "heavy": ["click", "sqlite3"]}
