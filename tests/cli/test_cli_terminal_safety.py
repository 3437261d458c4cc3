"""Text from models, servers and suites never reaches the terminal raw: control sequences are shown escaped."""
from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.cli.root import cli
from lessonlab.core import lessons as L
from lessonlab.core.lessons import curation
from lessonlab.core.formatting import printable
from lessonlab.core.storage.workspace import open_workspace

# Clear screen, cursor home, window title (OSC 0), a hyperlink (OSC 8), bell, a C1 CSI, a bidi override.
EVIL = "\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]8;;http://evil.invalid\x07click\x1b]8;;\x07\x9b31m\u202e"
UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def assert_safe(result, *, shows_escaped=True):
    for stream in (result.stdout, result.stderr):
        found = UNSAFE.search(stream)
        assert found is None, f"raw control character {found.group(0)!r} in output: {stream[:400]!r}"
    if shows_escaped:
        assert "\\x1b" in result.stdout + result.stderr


def test_printable_escapes_controls_and_keeps_newlines_and_tabs():
    assert printable("a\tb\nc") == "a\tb\nc"
    assert printable("\x1b[2J") == "\\x1b[2J"
    assert printable("\x07\x9b\x7f\r") == "\\x07\\x9b\\x7f\\x0d"
    assert printable("\u202eabc") == "\\u202eabc"
    assert printable("lone \ud800 surrogate") == "lone \\ud800 surrogate"
    assert printable(None) == "" and printable(3) == "3"


def _script(req, n):
    content = req["messages"][-1]["content"]
    if "operations" in content:  # the reflection meta-prompt
        reply = json.dumps({"analysis": f"analysis {EVIL}", "operations": [
            {"op": "add", "text": f"Lesson text {EVIL}", "rationale": f"because {EVIL}"}]})
        if req.get("stream"):
            return Reply(stream_chunks=[reply[:40], reply[40:]])
        return Reply(body=completion(reply, model=f"judge{EVIL}"))
    if "What is 1 + 1" in content:
        return Reply(status=400, body=f"bad request {EVIL}", headers={"Content-Type": "text/plain"})
    return Reply(body=completion(f"{EVIL}\nAnswer: 1", model=f"model{EVIL}"))


@pytest.fixture
def hostile(tmp_path, make_suite):
    """A workspace whose suite, model replies, error bodies, reflection and lessons all carry escape sequences."""
    suite = make_suite([
        {"id": f"task{EVIL}", "prompt": f"What is 0 + 1? {EVIL}", "verifier": {"kind": "numeric", "answer": 1}},
        {"id": "t1", "prompt": "What is 1 + 1?", "verifier": {"kind": "numeric", "answer": 2}},
    ], name="evil")
    ws_path = tmp_path / "ws.db"
    with ScriptedServer(_script) as server:
        assert invoke("endpoints", "add", "evil", "--base-url", server.base_url, "--model", "m").exit_code == 0
        ran = invoke("run", "--suite", suite, "--endpoint", "evil", "-w", ws_path)
        yield {"ws": ws_path, "run": ran, "server": server}


def test_every_listing_and_show_escapes_hostile_text(hostile):
    ws_path = hostile["ws"]
    assert_safe(hostile["run"])
    ws = open_workspace(ws_path)
    run_id = ws.one("SELECT id FROM runs")["id"]
    ok = ws.one("SELECT id FROM rollouts WHERE status = 'ok'")["id"]
    failed = ws.one("SELECT id FROM rollouts WHERE status = 'error'")["id"]
    # A lesson that came in with control characters (an older workspace or an import) is shown escaped too.
    with ws.transaction():
        lesson_id, _ = curation._create(ws, f"Stored lesson {EVIL}", status="active", scope=None, origin="human",
                                 author="human", reason=f"why {EVIL}")
    ws.close()

    reflected = invoke("reflect", "--run", run_id, "--endpoint", "evil", "-w", ws_path)
    assert_safe(reflected)
    ref_id = open_workspace(ws_path).one("SELECT id FROM reflections")["id"]
    for args in (["show", run_id], ["show", ok], ["show", failed], ["lessons", "list"],
                 ["lessons", "show", lesson_id], ["lessons", "history", lesson_id],
                 ["proposals", "--status", "invalid"],  # control characters break the lesson rules: stored invalid
                 ["reflections", ref_id], ["impact"], ["timeline", "--suite", "evil"]):
        result = invoke(*args, "-w", ws_path)
        assert result.exit_code == 0, (args, result.output)
        assert_safe(result)
    for args in (["runs"], ["reflections"]):  # columns cut short: nothing raw, perhaps nothing escaped
        assert_safe(invoke(*args, "-w", ws_path), shows_escaped=False)
    shown = invoke("show", failed, "-w", ws_path).stdout
    assert "HTTP 400" in shown and "bad request \\x1b[2J" in shown


def test_endpoint_test_escapes_the_reply_and_the_error_body(hostile):
    assert_safe(invoke("endpoints", "test", "evil"))
    with ScriptedServer(lambda req, n: Reply(status=418, body=f"teapot {EVIL}",
                                             headers={"Content-Type": "text/plain"})) as server:
        invoke("endpoints", "add", "teapot", "--base-url", server.base_url, "--model", "m")
        result = invoke("endpoints", "test", "teapot")
    assert result.exit_code == 1 and "teapot \\x1b" in result.stdout
    assert_safe(result)


def test_json_output_keeps_the_exact_text(hostile):
    ws = open_workspace(hostile["ws"])
    ok = ws.one("SELECT id FROM rollouts WHERE status = 'ok'")["id"]
    data = json.loads(invoke("show", ok, "--json", "-w", hostile["ws"]).stdout)
    assert data["output"].startswith(EVIL)
