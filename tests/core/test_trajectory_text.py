"""Reading steps: call signatures, placeholders for non-text parts, and where two trajectories part."""
from __future__ import annotations

import json

from lessonlab.core.runs.trajectory import Step, ToolCall, read_trajectory
from lessonlab.core.runs.trajectory_text import (
    call_signature, content_parts, cut_for_terminal, first_parting_step, is_trajectory, pretty_arguments, size_text,
)


def call(name, **arguments):
    return ToolCall(id=None, name=name, arguments=json.dumps(arguments))


def steps(*calls_per_step):
    """Steps calling these tools, then a final reply."""
    made = [Step(index=i + 1, content="", tool_calls=list(calls)) for i, calls in enumerate(calls_per_step)]
    return made + [Step(index=len(made) + 1, content="done", final=True)]


def test_call_signature_reads_like_a_python_call():
    assert call_signature(call("spell", word="strawberry")) == 'spell(word="strawberry")'
    assert call_signature(call("add", x=1, y=2)) == "add(x=1, y=2)"
    bad = ToolCall(id="c1", name="add", arguments="{x: 1")
    assert call_signature(bad) == "add({x: 1  [arguments are not valid JSON])"


def test_non_text_parts_become_placeholders_naming_type_and_size_never_a_repr():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 3000}}
    parts = content_parts([{"type": "text", "text": "What is this?"}, image])
    assert [p.kind for p in parts] == ["text", "image_url"]
    assert parts[1].text == f"[image_url, {len(json.dumps(image).encode()):,} bytes]"
    assert "{" not in parts[1].text and "base64" not in parts[1].text


def test_first_parting_step_is_the_first_other_tool_or_other_arguments():
    same = steps([call("spell", word="berry")], [call("count", letter="r")])
    assert first_parting_step(same, steps([call("spell", word="berry")], [call("count", letter="r")])) is None
    assert first_parting_step(same, steps([call("spell", word="berry")], [call("count", letter="b")])) == 2
    assert first_parting_step(same, steps([call("guess")], [call("count", letter="r")])) == 1
    assert first_parting_step(same, steps([call("spell", word="berry")])) == 2   # one answered early
    # argument order does not matter, values do
    a = [Step(1, "", [ToolCall(None, "add", '{"x": 1, "y": 2}')])]
    b = [Step(1, "", [ToolCall(None, "add", '{"y": 2, "x": 1}')])]
    assert first_parting_step(a, b) is None


def test_cut_for_terminal_notes_the_whole_size():
    text = "\n".join(f"line {i}" for i in range(100))
    cut = cut_for_terminal(text)
    assert cut.startswith("line 0\n") and "line 99" not in cut
    assert cut.endswith(f"[… {size_text(len(text))} in all; --full shows everything]")
    assert cut_for_terminal("short") == "short"


def test_one_reply_is_not_a_trajectory_but_a_tool_call_is():
    _, one = read_trajectory([{"role": "user", "content": "hi"}], "hello")
    assert not is_trajectory(one)
    _, agent = read_trajectory([{"role": "user", "content": "hi"},
                                {"role": "assistant", "content": "", "tool_calls": [
                                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                                {"role": "tool", "tool_call_id": "c", "content": "ok"}], "bye")
    assert is_trajectory(agent)


def test_pretty_arguments_indent_objects_but_keep_short_lists_on_one_line():
    assert pretty_arguments(call("read", doc="peru.txt", lines=[1, 3])) == '{\n  "doc": "peru.txt",\n  "lines": [1, 3]\n}'
    letters = pretty_arguments(call("count", letters=list("strawberry"), letter="r"))
    assert json.loads(letters) == {"letters": list("strawberry"), "letter": "r"}
    assert len(letters.splitlines()) == 7 and max(len(line) for line in letters.splitlines()) <= 44   # packed
    assert pretty_arguments(ToolCall(None, "f", "not json")) == "not json"
    long = pretty_arguments(call("f", items=[{"name": "x" * 30, "price": 1}, {"name": "y" * 30, "price": 2}]))
    assert json.loads(long) == {"items": [{"name": "x" * 30, "price": 1}, {"name": "y" * 30, "price": 2}]}
    assert max(len(line) for line in long.splitlines()) <= 50


def test_first_parting_of_signatures_agrees_with_first_parting_step():
    from lessonlab.core.runs.trajectory_text import first_parting_of_signatures, step_signature

    same = steps([call("spell", word="berry")], [call("count", letter="r")])
    others = [steps([call("spell", word="berry")], [call("count", letter="r")]),
              steps([call("spell", word="berry")], [call("count", letter="b")]),
              steps([call("guess")], [call("count", letter="r")]),
              steps([call("spell", word="berry")]),
              steps([call("spell", word="berry")], [call("count", letter="r")], [call("count", letter="y")])]
    found = [first_parting_of_signatures([step_signature(s) for s in same], [step_signature(s) for s in other])
             for other in others]
    assert found == [first_parting_step(same, other) for other in others] == [None, 2, 1, 2, 3]
