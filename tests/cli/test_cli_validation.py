"""Options and settings are checked before anything is written: finite numbers in range, no keys, clear types."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from tests.helpers.tasks import numeric_tasks
from tests.helpers.scripted_server import Reply, ScriptedServer, completion
from lessonlab.cli.root import cli
from lessonlab.core import lessons as L
from lessonlab.core.settings import Endpoint, SettingsError, load_settings, settings_path
from lessonlab.core.storage.workspace import open_workspace


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, *needles, code=2):
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    err = result.stderr.strip()
    assert len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture
def endpoint_server():
    with ScriptedServer(lambda req, n: Reply(body=completion("Answer: 1"))) as server:
        assert invoke("endpoints", "add", "s", "--base-url", server.base_url, "--model", "m").exit_code == 0
        yield server


@pytest.mark.parametrize("flag, value, needle", [
    ("--temperature", "nan", "temperature"),
    ("--temperature", "inf", "temperature"),
    ("--temperature", "-1", "temperature"),
    ("--temperature", "9", "temperature"),
])
def test_run_refuses_bad_sampling_values_and_writes_nothing(tmp_path, make_suite, endpoint_server, flag, value,
                                                             needle):
    ws_path = tmp_path / "ws.db"
    result = invoke("run", "--suite", make_suite(numeric_tasks(2)), "--endpoint", "s", flag, value, "-w", ws_path)
    assert_one_line_error(result, needle)
    assert not endpoint_server.requests
    if ws_path.exists():
        assert open_workspace(ws_path).one("SELECT COUNT(*) AS n FROM runs")["n"] == 0


@pytest.mark.parametrize("args, needle", [
    (["--temperature", "nan"], "temperature"),
    (["--temperature", "2.5"], "temperature"),
    (["--timeout", "0"], "timeout"),
    (["--timeout", "nan"], "timeout"),
    (["--timeout", "-5"], "timeout"),
    (["--max-tokens", "0"], "max_tokens"),
])
def test_endpoints_add_refuses_bad_values_and_never_writes_them(args, needle):
    result = invoke("endpoints", "add", "x", "--base-url", "http://127.0.0.1:9/v1", "--model", "m", *args)
    assert_one_line_error(result, needle)
    assert not settings_path().exists()


@pytest.mark.parametrize("key", ["sk-proj-abcdefghijklmnop1234567890", "gsk_abcdefghijklmnopqrstuvwxyz0123456789",
                                 "xai-AbCdEfGhIjKlMnOpQrStUv0123", "AIzaSyA1234567890abcdefghijklmnop",
                                 "hf_abcdefghijklmnopqrstuvwxyz1234"])
def test_key_env_refuses_a_key_and_never_echoes_it(key):
    result = invoke("endpoints", "add", "x", "--base-url", "https://api.example.invalid/v1", "--model", "m",
                    "--key-env", key)
    assert_one_line_error(result, "NAME of an environment variable")
    assert key not in result.output and key[:8] not in result.output
    assert not settings_path().exists()


def test_key_env_accepts_ordinary_variable_names():
    for name in ("OPENAI_API_KEY", "GROQ_API_KEY", "my_key"):
        assert invoke("endpoints", "add", "x", "--base-url", "https://x.invalid/v1", "--model", "m",
                      "--key-env", name).exit_code == 0


def write_settings(data) -> None:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


@pytest.mark.parametrize("data, needle", [
    ({"endpoints": []}, "endpoints"),
    ({"endpoints": {"a": {"base_url": "http://x/v1", "model": "m", "timeout": "60"}}}, "timeout"),
    ({"endpoints": {"a": {"base_url": 5, "model": "m"}}}, "base URL"),
    ({"endpoints": {"a": {"base_url": "http://x/v1", "model": "m", "params": {"temperature": "hot"}}}}, "temperature"),
    ('{"endpoints": {"a": {"base_url": "http://x/v1", "model": "m", "params": {"temperature": NaN}}}}', "temperature"),
    ({"endpoints": {"a": {"base_url": "http://x/v1", "model": "m", "params": {"top_p": 3}}}}, "top_p"),
    ({"endpoints": {"a": {"base_url": "http://x/v1", "model": "m", "key_env": "gsk_abcdefghijklmnopqrstuvwxyz0123"}}},
     "NAME of an environment variable"),
    ({"lesson_token_budget": "1000"}, "lesson_token_budget"),
    ({"lesson_token_budget": -3}, "lesson_token_budget"),
    ({"reflection_context_tokens": [1]}, "reflection_context_tokens"),
    ({"default_endpoint": 3}, "default_endpoint"),
    ({"base_prompt": {"a": 1}}, "base_prompt"),
    ("[1, 2]", "JSON object"),
])
def test_settings_with_wrong_types_is_one_clear_line(data, needle):
    write_settings(data)
    result = invoke("endpoints")
    assert_one_line_error(result, str(settings_path()), needle)
    assert "gsk_abc" not in result.output


def test_settings_that_is_a_directory_is_one_clear_line():
    settings_path().mkdir(parents=True)
    result = invoke("endpoints")
    assert_one_line_error(result, str(settings_path()), "directory")


def test_core_checks_the_same_values():
    with pytest.raises(SettingsError, match="temperature"):
        Endpoint(name="a", base_url="http://x/v1", model="m", params={"temperature": float("nan")}).validate()
    with pytest.raises(SettingsError, match="timeout"):
        Endpoint(name="a", base_url="http://x/v1", model="m", timeout=0).validate()
    assert load_settings().lesson_token_budget == 1000


def test_a_lesson_over_the_size_limit_is_refused(tmp_path):
    ws_path = tmp_path / "ws.db"
    result = invoke("lessons", "add", "x" * (L.MAX_LESSON_CHARS + 1), "-w", ws_path)
    assert_one_line_error(result, "characters", f"{L.MAX_LESSON_CHARS:,}")
    assert open_workspace(ws_path).one("SELECT COUNT(*) AS n FROM lessons")["n"] == 0


def test_a_lesson_scoped_to_an_unknown_suite_needs_a_flag(tmp_path):
    ws_path = tmp_path / "ws.db"
    result = invoke("lessons", "add", "Count twice.", "--scope", "strawbery", "-w", ws_path)
    assert_one_line_error(result, "strawbery", "--allow-unknown-suite")
    assert open_workspace(ws_path).one("SELECT COUNT(*) AS n FROM lessons")["n"] == 0
    assert invoke("lessons", "add", "Count twice.", "--scope", "strawberry", "-w", ws_path).exit_code == 0
    assert invoke("lessons", "add", "Count thrice.", "--scope", "my-new-suite", "--allow-unknown-suite",
                  "-w", ws_path).exit_code == 0


def test_an_ambiguous_prefix_says_ambiguous(tmp_path, make_suite, endpoint_server):
    ws_path = tmp_path / "ws.db"
    assert invoke("run", "--suite", make_suite(numeric_tasks(2)), "--endpoint", "s", "-w", ws_path).exit_code == 0
    # one run and two rollouts: "r" starts all three ids
    result = invoke("show", "r", "-w", ws_path)
    assert_one_line_error(result, "ambiguous")
    assert invoke("show", "ro", "-w", ws_path).exit_code == 2  # two rollouts
    assert invoke("show", "ru", "-w", ws_path).exit_code == 0  # the one run


def test_a_lesson_with_control_characters_is_refused(tmp_path):
    ws_path = tmp_path / "ws.db"
    result = invoke("lessons", "add", "Be brief.\x1b[2J\x07", "-w", ws_path)
    assert_one_line_error(result, "control character", "\\x1b")
    assert "\x1b" not in result.output
    assert invoke("lessons", "add", "Two lines\r\nand a\ttab.", "-w", ws_path).exit_code == 0
