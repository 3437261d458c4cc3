"""Loading suites: the built-ins, hand-written files, and every validation error with its line."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lessonlab.core.tasks.suites import SPLITS, Suite, SuiteError, Task, builtin_suites, load_suite

BUILTINS = ("arithmetic", "arithmetic-tools", "format", "game24", "shop", "strawberry", "strawberry-tools")
SUITES_DIR = Path(__file__).resolve().parents[2] / "resources" / "suites"

GOOD = {"id": "t1", "prompt": "What is 2+2?", "verifier": {"kind": "numeric", "answer": 4}}


def write_lines(tmp_path, lines, name="mine.jsonl"):
    """Write raw lines (dicts become JSON) to a suite file and return its path."""
    path = tmp_path / name
    text = "\n".join(json.dumps(line) if isinstance(line, dict) else line for line in lines)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def load_error(path) -> SuiteError:
    with pytest.raises(SuiteError) as info:
        load_suite(str(path))
    return info.value


# --------------------------------------------------------------------------- built-ins

def test_builtin_names():
    assert builtin_suites() == sorted(BUILTINS)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_loads_with_both_splits(name):
    suite = load_suite(name)
    assert suite.name == name
    assert suite.source == f"builtin:{name}"
    counts = suite.counts()
    assert counts["train"] > 0 and counts["heldout"] > 0
    assert counts["total"] == len(suite.tasks) == counts["train"] + counts["heldout"]
    # Roughly 70/30, as the generator promises.
    assert 0.2 <= counts["heldout"] / counts["total"] <= 0.4
    assert len({task.id for task in suite.tasks}) == len(suite.tasks)
    for task in suite.tasks:
        assert task.split in SPLITS
        assert "answer" in task.metadata and "source" in task.metadata


def test_builtin_sizes():
    assert len(load_suite("strawberry").tasks) >= 60
    assert len(load_suite("game24").tasks) >= 40
    assert len(load_suite("arithmetic").tasks) >= 50
    assert len(load_suite("format").tasks) >= 30


def test_strawberry_contents():
    suite = load_suite("strawberry")
    by_id = {task.id: task for task in suite.tasks}
    first = by_id["strawberry-r-strawberry"]
    assert first.verifier == {"kind": "numeric", "answer": 3, "tolerance": 0}
    assert '"r"' in first.prompt and '"strawberry"' in first.prompt and "Answer:" in first.prompt
    for task in suite.tasks:
        word, letter = task.metadata["word"], task.metadata["letter"]
        assert task.metadata["answer"] == word.count(letter) == task.verifier["answer"]
    counts = {task.metadata["answer"] for task in suite.tasks}
    assert {0, 1, 2, 3, 4} <= counts


def test_generator_is_deterministic(tmp_path):
    # Run a copy of the script elsewhere so the committed files are never touched by the test.
    script = tmp_path / "build_suites.py"
    script.write_text((SUITES_DIR / "build_suites.py").read_text(encoding="utf-8"), encoding="utf-8")
    subprocess.run([sys.executable, str(script)], check=True, capture_output=True)
    for name in BUILTINS:
        assert (tmp_path / f"{name}.jsonl").read_bytes() == (SUITES_DIR / f"{name}.jsonl").read_bytes(), name


# --------------------------------------------------------------------------- Task and Suite

def test_task_from_file_round_trip(tmp_path):
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    path = write_lines(tmp_path, [
        GOOD,
        {"id": "t2", "prompt": chat, "verifier": {"kind": "exact", "answer": "hello"},
         "split": "heldout", "metadata": {"answer": "hello"}},
    ])
    suite = load_suite(str(path))
    assert suite.name == "mine"
    assert suite.source == str(path.resolve())
    one, two = suite.tasks
    assert one.split == "train" and one.metadata == {}
    assert one.messages() == [{"role": "user", "content": "What is 2+2?"}]
    assert one.to_dict() == {**GOOD, "split": "train", "metadata": {}}
    assert two.messages() == chat
    two.messages().append({"role": "user", "content": "more"})
    assert two.messages() == chat  # messages() hands out copies
    assert two.to_dict()["prompt"] == chat
    json.dumps(two.to_dict())


def test_content_hash():
    task = Task(id="a", prompt="p", verifier={"kind": "exact", "answer": "x"}, split="train", metadata={})
    same = Task(id="b", prompt="p", verifier={"answer": "x", "kind": "exact"}, split="heldout", metadata={"k": 1})
    other = Task(id="a", prompt="p2", verifier={"kind": "exact", "answer": "x"}, split="train", metadata={})
    assert len(task.content_hash) == 64 and int(task.content_hash, 16) >= 0
    assert task.content_hash == same.content_hash  # id, split and metadata do not matter; key order neither
    assert task.content_hash != other.content_hash


def test_select():
    tasks = tuple(Task(id=f"t{i}", prompt="p", verifier={"kind": "exact", "answer": "x"},
                       split="heldout" if i % 3 == 0 else "train", metadata={}) for i in range(9))
    suite = Suite(name="s", source="memory", tasks=tasks)
    assert [t.id for t in suite.select()] == ["t1", "t2", "t4", "t5", "t7", "t8"]
    assert [t.id for t in suite.select("heldout")] == ["t0", "t3", "t6"]
    assert [t.id for t in suite.select("all", limit=4)] == ["t0", "t1", "t2", "t3"]
    assert [t.id for t in suite.select("train", limit=2)] == ["t1", "t2"]
    assert suite.select("heldout", limit=0) == []
    assert len(suite.select("heldout", limit=100)) == 3
    assert suite.counts() == {"train": 6, "heldout": 3, "total": 9}
    with pytest.raises(ValueError):
        suite.select("test")


# --------------------------------------------------------------------------- errors

def test_suite_error_str():
    assert str(SuiteError("a.jsonl", 3, "bad")) == "a.jsonl:3: bad"
    error = SuiteError("a.jsonl", None, "bad")
    assert str(error) == "a.jsonl: bad"
    assert (error.source, error.line, error.reason) == ("a.jsonl", None, "bad")


@pytest.mark.parametrize("bad_line, fragment", [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "expected a JSON object, got array"),
    ({"prompt": "p", "verifier": {"kind": "exact", "answer": "x"}}, 'missing "id"'),
    ({**GOOD, "id": ""}, '"id" must be a non-empty string'),
    ({**GOOD, "id": 7}, '"id" must be a non-empty string, got integer'),
    ({"id": "x", "verifier": {"kind": "exact", "answer": "x"}}, 'missing "prompt"'),
    ({**GOOD, "id": "x", "prompt": ""}, '"prompt" must be a non-empty string'),
    ({**GOOD, "id": "x", "prompt": []}, "non-empty list of chat messages"),
    ({**GOOD, "id": "x", "prompt": 5}, '"prompt" must be'),
    ({**GOOD, "id": "x", "prompt": [{"role": "tool", "content": "hi"}]}, 'role must be one of system, user, assistant, got "tool"'),
    ({**GOOD, "id": "x", "prompt": [{"role": "user", "content": 3}]}, "content must be a string"),
    ({**GOOD, "id": "x", "prompt": ["hi"]}, '"prompt"[0] must be an object'),
    ({"id": "x", "prompt": "p"}, 'missing "verifier"'),
    ({**GOOD, "id": "x", "verifier": "numeric"}, '"verifier" must be an object, got string'),
    ({**GOOD, "id": "x", "verifier": {"kind": "fuzzy"}}, "invalid verifier: unknown verifier kind 'fuzzy'"),
    ({**GOOD, "id": "x", "verifier": {"kind": "regex", "pattern": "("}}, "invalid verifier: regex verifier: invalid pattern"),
    ({**GOOD, "id": "x", "verifier": {"kind": "json_schema", "schema": {"properties": {"name": {"type": "strnig"}}}}},
     "invalid verifier: json_schema verifier: schema is invalid: 'strnig' is not valid under any of the given "
     "schemas at $.properties.name.type"),
    ({**GOOD, "id": "x", "verifier": {"kind": "json_schema", "schema": {"$ref": "https://example.com/s.json"}}},
     "invalid verifier: json_schema verifier: remote $ref not allowed"),
    ({**GOOD, "id": "x", "split": "test"}, '"split" must be "train" or "heldout", got "test"'),
    ({**GOOD, "id": "x", "metadata": [1]}, '"metadata" must be an object, got array'),
    ({**GOOD, "id": "x", "answer": 4, "notes": ""}, 'unknown field(s) "answer", "notes"'),
])
def test_validation_errors_name_the_line(tmp_path, bad_line, fragment):
    # Line 1 good, line 2 blank (still counted), line 3 bad, line 4 also bad: the first error wins.
    path = write_lines(tmp_path, [GOOD, "", bad_line, "{also bad"])
    error = load_error(path)
    assert error.line == 3, str(error)
    assert fragment in error.reason, error.reason
    assert error.source == str(path.resolve())
    assert str(error).startswith(f"{path.resolve()}:3: ")


def test_duplicate_id_names_the_earlier_line(tmp_path):
    path = write_lines(tmp_path, [GOOD, {**GOOD, "id": "t2"}, GOOD])
    error = load_error(path)
    assert error.line == 3
    assert 'duplicate id "t1" (first used on line 1)' in error.reason


def test_bad_utf8_names_the_line(tmp_path):
    path = tmp_path / "bytes.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b'\n{"id": "\xff"}\n')
    error = load_error(path)
    assert error.line == 2 and "UTF-8" in error.reason


def test_bom_and_blank_lines_are_fine(tmp_path):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode() + b"\n\n   \n")
    assert [task.id for task in load_suite(str(path)).tasks] == ["t1"]


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    error = load_error(path)
    assert error.line is None and "no tasks" in error.reason


def test_missing_file_lists_builtins(tmp_path):
    missing = str(tmp_path / "nope.jsonl")
    error = load_error(missing)
    assert error.source == missing and error.line is None
    assert "no such file" in error.reason
    assert "built-in: arithmetic, arithmetic-tools, format, game24, shop, strawberry, strawberry-tools" in error.reason
    assert "no built-in suite" in str(load_error("strawbery"))


def test_directory_is_not_a_suite(tmp_path):
    assert "directory" in load_error(tmp_path).reason


# --------------------------------------------------------------------------- tools and max_turns

TOOL_TASK = {"id": "r", "prompt": "How many r's are in \"strawberry\"?", "tools": ["letters.spell"], "max_turns": 6,
             "verifier": {"kind": "numeric", "answer": 3}}


def test_tools_and_max_turns_load_and_round_trip(tmp_path):
    suite = load_suite(str(write_lines(tmp_path, [GOOD, TOOL_TASK])))
    plain, agent = suite.tasks
    assert plain.tools == () and plain.max_turns is None and plain.turn_limit == 1
    assert agent.tools == ("letters.spell",) and agent.max_turns == 6 and agent.turn_limit == 6
    assert "tools" not in plain.to_dict() and "max_turns" not in plain.to_dict()
    assert agent.to_dict()["tools"] == ["letters.spell"] and agent.to_dict()["max_turns"] == 6
    default = Task("d", "p", {"kind": "numeric", "answer": 1}, tools=("calc",))
    assert default.turn_limit == 10 and "max_turns" not in default.to_dict()


def test_tools_enter_the_hash_only_when_present():
    plain = Task("t", "p", {"kind": "numeric", "answer": 1})
    # The hash a task without tools always had: sha256 of {"prompt", "verifier"} alone.
    import hashlib
    legacy = hashlib.sha256(json.dumps({"prompt": "p", "verifier": {"kind": "numeric", "answer": 1}},
                                       sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert plain.content_hash == legacy
    with_tools = Task("t", "p", {"kind": "numeric", "answer": 1}, tools=("calc",))
    with_turns = Task("t", "p", {"kind": "numeric", "answer": 1}, tools=("calc",), max_turns=3)
    assert len({plain.content_hash, with_tools.content_hash, with_turns.content_hash}) == 3


@pytest.mark.parametrize("change, reason", [
    ({"tools": ["letters.count"]}, "tool set 'letters' has no tool 'count' (its tools: spell)"),
    ({"tools": ["abacus"]}, "unknown tool set 'abacus' (built-in: letters, calc, shop"),
    ({"tools": ["calc", "calc.add"]}, "two tools are named 'add' (calc, twice)"),
    ({"tools": []}, '"tools" must be a non-empty list'),
    ({"tools": "letters"}, '"tools" must be a non-empty list'),
    ({"tools": [3]}, "a tool must be named by a non-empty string, got 3"),
    ({"tools": ["python:mod"]}, 'must look like "python:module:factory"'),
    ({"max_turns": 0}, '"max_turns" must be an integer from 1 to 200, got 0'),
    ({"max_turns": 2.5}, '"max_turns" must be an integer from 1 to 200, got 2.5'),
    ({"max_turns": True}, '"max_turns" must be an integer from 1 to 200, got true'),
    ({"tools": None, "max_turns": 3}, '"tools" must be a non-empty list'),
])
def test_bad_tools_are_reported_with_file_and_line(tmp_path, change, reason):
    path = write_lines(tmp_path, [GOOD | {"id": "ok"}, {**TOOL_TASK, **change}])
    error = load_error(path)
    assert error.line == 2
    assert str(error).startswith(f"{path.resolve()}:2: ")
    assert reason in str(error)


def test_max_turns_without_tools_is_an_error(tmp_path):
    task = {key: value for key, value in TOOL_TASK.items() if key != "tools"}
    error = load_error(write_lines(tmp_path, [task]))
    assert error.line == 1 and '"max_turns" limits tool calls, but the task has no "tools"' in str(error)


def test_a_stateful_set_checks_the_task_metadata(tmp_path):
    task = {"id": "s", "prompt": "Buy bread.", "tools": ["shop"], "verifier": {"kind": "state", "expect": {"shop.checked_out": True}},
            "metadata": {"shop": {"items": [{"id": "b", "name": "Bread", "price": "two", "stock": 1}]}}}
    error = load_error(write_lines(tmp_path, [task]))
    assert error.line == 1 and 'metadata.shop.items[0]: "price" must be a decimal string' in str(error)


def test_python_tool_sets_are_checked_for_form_only_at_load(tmp_path):
    # Importing user code needs trust, so a module that does not exist loads; the run refuses it without trust.
    task = {**TOOL_TASK, "tools": ["letters", "python:no_such_module:make.tool"]}
    suite = load_suite(str(write_lines(tmp_path, [task])))
    assert suite.tasks[0].tools == ("letters", "python:no_such_module:make.tool")
