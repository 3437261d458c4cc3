"""Every file in the bad-inputs corpus, fed through the CLI: exit 2, one line naming the problem, no traceback,
the workspace unchanged (see README.md in this folder)."""
from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.bad_inputs.build_large import BUILDERS
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from tests.helpers.tasks import numeric_tasks
from lessonlab.cli.root import cli
from lessonlab.core.settings import settings_path
from lessonlab.core.storage.workspace import open_workspace

CORPUS = Path(__file__).parent
FOLDERS = ("suites", "settings", "lessons", "replies", "imports")
# The command that reads one import file.
IMPORT_COMMAND: list[str] | None = ["import", "{file}"]
# Too big to keep in the repository: written by the test.
GENERATED = {
    "huge-prompt.jsonl": ("suites", lambda: json.dumps({"id": "t0", "prompt": "x" * 1_000_001,
                                                         "verifier": {"kind": "numeric", "answer": 1}}) + "\n",
                          "a prompt is at most 1,000,000"),
    "huge-messages.jsonl": ("suites", lambda: json.dumps({"id": "t0", "prompt": [{"role": "user", "content": "y" * 600_000}] * 2,
                                                           "verifier": {"kind": "numeric", "answer": 1}}) + "\n",
                            "more than 1,000,000 characters"),
    "long-lesson.txt": ("lessons", lambda: "Be careful. " * 200, "a lesson is at most 2,000"),
}
# Hostile import files built by tests/bad_inputs/build_large.py (large, so never committed).
BUILT = {
    "zip-bomb.eval": "inflates to 260 MB, more than the 256 MB a sample may hold",
    "endless-line.jsonl": "line 1: longer than 64 MB",
}
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def corpus_cases():
    for folder in FOLDERS:
        expected = json.loads((CORPUS / folder / "expected.json").read_text())
        for path in sorted((CORPUS / folder).iterdir()):
            if path.name not in ("expected.json", "README.md"):
                yield pytest.param(folder, path.name, expected.get(path.name), id=f"{folder}/{path.name}")
    for name, (folder, _, fragment) in GENERATED.items():
        yield pytest.param(folder, name, fragment, id=f"{folder}/{name} (generated)")
    for name, fragment in BUILT.items():
        yield pytest.param("imports", name, fragment, id=f"imports/{name} (built)")


def content_of(folder: str, name: str, tmp_path: Path) -> Path:
    if name in GENERATED:
        path = tmp_path / name
        path.write_text(GENERATED[name][1](), encoding="utf-8")
        return path
    if name in BUILT:
        return BUILDERS[name](tmp_path / name)
    return CORPUS / folder / name


def _reply_for(request: dict, n: int, state: dict) -> Reply:
    if "operations" in request["messages"][-1]["content"]:
        text = state["reply"]
        return Reply(stream_chunks=[text]) if request.get("stream") else Reply(body=completion(text))
    return Reply(body=completion("Answer: 1"))


@pytest.fixture(scope="module")
def server():
    state = {"reply": ""}
    with ScriptedServer(lambda req, n: _reply_for(req, n, state)) as scripted:
        scripted.state = state
        yield scripted


@pytest.fixture(scope="module")
def template(tmp_path_factory, server):
    """A workspace with a run, its rollouts and a lesson, built once and copied for every case."""
    folder = tmp_path_factory.mktemp("template")
    suite = folder / "mini.jsonl"
    suite.write_text("".join(json.dumps(t) + "\n" for t in numeric_tasks(2)))
    ws_path = folder / "ws.db"
    invoke = CliRunner().invoke
    assert invoke(cli, ["endpoints", "add", "s", "--base-url", server.base_url, "--model", "m"]).exit_code == 0
    assert invoke(cli, ["run", "--suite", str(suite), "--endpoint", "s", "-w", str(ws_path)]).exit_code == 0
    assert invoke(cli, ["lessons", "add", "Show your work.", "-w", str(ws_path)]).exit_code == 0
    ws = open_workspace(ws_path)
    ws.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    run_id = ws.one("SELECT id FROM runs")["id"]
    ws.close()
    return ws_path, run_id, settings_path().read_text()


def contents(ws_path: Path, tables: tuple[str, ...] | None = None) -> str:
    """A digest of the workspace's rows (all tables, or some)."""
    ws = open_workspace(ws_path)
    try:
        names = tables or [r["name"] for r in ws.query("SELECT name FROM sqlite_master WHERE type = 'table'"
                                                       " AND name NOT LIKE '%fts%' ORDER BY name")]
        digest = hashlib.sha256()
        for name in names:
            for row in sorted(repr(row) for row in ws.conn.execute(f"SELECT * FROM [{name}]")):
                digest.update(row.encode("utf-8", "backslashreplace"))
        return digest.hexdigest()
    finally:
        ws.close()


def assert_clear_failure(result, fragment: str, code: int = 2) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code == code, result.output
    assert not UNSAFE.search(result.stdout + result.stderr.replace("\n", " "))


@pytest.mark.parametrize("folder, name, fragment", list(corpus_cases()))
def test_bad_input_is_refused_clearly_and_changes_nothing(folder, name, fragment, tmp_path, template, server):
    assert fragment, f"{folder}/{name} has no entry in {folder}/expected.json"
    template_path, run_id, settings_text = template
    ws_path = tmp_path / "ws.db"
    shutil.copy(template_path, ws_path)
    settings_path().parent.mkdir(parents=True, exist_ok=True)
    settings_path().write_text(settings_text)
    path = content_of(folder, name, tmp_path)
    before = contents(ws_path)
    sent = len(server.requests)
    runner = CliRunner()

    if folder == "replies":
        server.state["reply"] = path.read_text(encoding="utf-8")
        lessons_before = contents(ws_path, ("lessons", "lesson_versions", "proposals"))
        result = runner.invoke(cli, ["reflect", "--run", run_id, "--endpoint", "s", "-w", str(ws_path)])
        # A model's reply is not the user's input: kept verbatim with the parse error, the work failed (exit 1).
        assert_clear_failure(result, fragment, code=1)
        failed = [line for line in result.stdout.splitlines() if line.startswith("FAILED:")]
        assert len(failed) == 1 and fragment in failed[0], result.stdout
        assert contents(ws_path, ("lessons", "lesson_versions", "proposals")) == lessons_before
        ws = open_workspace(ws_path)
        assert ws.one("SELECT raw_reply FROM reflections")["raw_reply"] == server.state["reply"]
        ws.close()
        return

    if folder == "suites":
        args = ["run", "--suite", str(path), "--endpoint", "s", "-w", str(ws_path)]
    elif folder == "settings":
        shutil.copy(path, settings_path())
        args = ["endpoints"]
    elif folder == "lessons":
        text = path.read_bytes().decode("utf-8", "surrogateescape")  # as the shell hands it to argv
        args = ["lessons", "add", text, "-w", str(ws_path)]
    else:
        if IMPORT_COMMAND is None:
            pytest.skip("no import command yet (see imports/README.md)")
        args = [part.replace("{file}", str(path)) for part in IMPORT_COMMAND] + ["-w", str(ws_path)]
    result = runner.invoke(cli, args)
    assert_clear_failure(result, fragment)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert fragment in lines[0], lines[0]
    if folder in ("suites", "imports"):
        assert path.name in lines[0] or str(path) in lines[0]
    assert len(server.requests) == sent
    assert contents(ws_path) == before
