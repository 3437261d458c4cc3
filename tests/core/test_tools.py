"""Built-in tool sets, the registry, and Toolbox.call turning every failure into a result the model reads."""
from __future__ import annotations

import asyncio
import json
from fractions import Fraction

import pytest

from lessonlab.core import tools
from lessonlab.core.tools import ToolError, ToolSet, ToolSpecError, tool, toolbox_for
from lessonlab.core.tools import calc, registry
from lessonlab.core.tools.letters import spell

SHOP_METADATA = {"shop": {"items": [
    {"id": "bread-oat", "name": "Oat bread", "price": "2.40", "stock": 3, "details": "Contains oats. 500 g."},
    {"id": "bread-nut", "name": "Nut bread", "price": "2.10", "stock": 5, "details": "Contains walnuts."},
]}}


def call(box, name, arguments, state=None, pool=None):
    return asyncio.run(box.call(pool, name, arguments if isinstance(arguments, str) else json.dumps(arguments), state))


# --------------------------------------------------------------------------- registry

def test_builtin_sets_are_registered_in_order():
    assert tools.set_names()[:3] == ("letters", "calc", "shop")


def test_register_refuses_a_second_set_of_the_same_name_and_reserved_names():
    with pytest.raises(ValueError, match="already registered"):
        tools.register(ToolSet("letters", ()))
    with pytest.raises(ValueError, match="reserved"):
        tools.register(ToolSet("python", ()))


def test_a_new_set_is_one_registration(monkeypatch):
    def shout(text: str) -> str:
        """Shout the text."""
        return text.upper()

    monkeypatch.setattr(registry, "_SETS", dict(registry._SETS))
    tools.register(ToolSet("loud", (tool(shout, {"text": ("string", "what to shout")}),)))
    box = toolbox_for({"tools": ["loud"]})
    assert box.schemas == [{"type": "function", "function": {
        "name": "shout", "description": "Shout the text.",
        "parameters": {"type": "object", "properties": {"text": {"type": "string", "description": "what to shout"}},
                       "required": ["text"], "additionalProperties": False}}}]
    assert call(box, "shout", {"text": "hi"}).content == "HI"


def test_schemas_carry_each_tools_docstring_and_a_set_name_selects_all_its_tools():
    box = toolbox_for({"tools": ["calc", "letters.spell"]})
    assert box.names == ["add", "sub", "mul", "div", "spell"]
    described = {s["function"]["name"]: s["function"]["description"] for s in box.schemas}
    assert "one letter per line" in described["spell"]
    assert "a / b" in described["div"]
    assert box.initial_state is None
    assert box.max_turns == tools.DEFAULT_MAX_TURNS


def test_toolbox_for_a_task_object_reads_its_fields():
    from lessonlab.core.tasks.suites import Task

    task = Task("t", "p", {"kind": "exact", "answer": "x"}, tools=("letters",), max_turns=3)
    box = toolbox_for(task)
    assert box.names == ["spell"] and box.max_turns == 3


@pytest.mark.parametrize("names, message", [
    (["letters.count"], "tool set 'letters' has no tool 'count' (its tools: spell)"),
    (["abacus"], "unknown tool set 'abacus'"),
    (["letters", "letters.spell"], "two tools are named 'spell'"),
    (["calc..add"], 'must look like "set" or "set.tool"'),
    (["python:not a module"], "python:module:factory"),
])
def test_bad_tool_names_are_bad_input(names, message):
    with pytest.raises(ToolSpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        toolbox_for({"tools": names})


# --------------------------------------------------------------------------- letters

def test_spell_gives_one_letter_per_line():
    assert spell("strawberry") == "s\nt\nr\na\nw\nb\ne\nr\nr\ny"
    assert call(toolbox_for({"tools": ["letters"]}), "spell", {"word": "kayak"}).content.split("\n") == list("kayak")


def test_spell_refuses_an_empty_word():
    outcome = call(toolbox_for({"tools": ["letters"]}), "spell", {"word": ""})
    assert outcome.error and outcome.content == "error: spell needs a non-empty word"


# --------------------------------------------------------------------------- calc

@pytest.mark.parametrize("name, a, b, expected", [
    ("add", 0.1, 0.2, "0.3"),                      # no float noise (0.30000000000000004)
    ("add", "0.1", "0.2", "0.3"),
    ("sub", 1, 0.9, "0.1"),
    ("mul", 1.1, 1.1, "1.21"),
    ("mul", "123456789012345678901234567890", 10, "1234567890123456789012345678900"),
    ("div", 1, 3, "1/3"),
    ("div", 1, 8, "0.125"),
    ("div", -5, 4, "-1.25"),
    ("div", "2/3", "4/9", "1.5"),
    ("sub", 3, 5, "-2"),
    ("add", "1e3", 1, "1001"),
])
def test_calc_is_exact(name, a, b, expected):
    outcome = call(toolbox_for({"tools": ["calc"]}), name, {"a": a, "b": b})
    assert (outcome.content, outcome.error) == (expected, False)


def test_division_by_zero_is_an_error_result():
    outcome = call(toolbox_for({"tools": ["calc.div"]}), "div", {"a": 1, "b": 0})
    assert outcome.error and outcome.content == "error: division by zero"
    assert call(toolbox_for({"tools": ["calc.div"]}), "div", {"a": 1, "b": "0.0"}).content == "error: division by zero"


@pytest.mark.parametrize("value, message", [
    ("ten", "must be a number such as"),
    ("1e999999999", "must be a number such as"),   # an exponent that would take for ever to expand is refused
    ("9" * 300, "more than 200 characters"),
    ("1/0", "denominator 0"),
])
def test_calc_refuses_what_is_not_a_bounded_number(value, message):
    outcome = call(toolbox_for({"tools": ["calc"]}), "add", {"a": value, "b": 1})
    assert outcome.error and message in outcome.content


def test_exact_text_round_trips():
    for value in (Fraction(1, 3), Fraction(-7, 40), Fraction(10**30 + 1, 10**12), Fraction(0)):
        text = calc.exact_text(value)
        assert calc.to_exact(text, "x") == value


# --------------------------------------------------------------------------- shop

def shop_box():
    return toolbox_for({"tools": ["shop"], "metadata": SHOP_METADATA})


def test_shop_starts_from_the_metadata_and_changes_only_the_returned_state():
    box = shop_box()
    start = box.initial_state
    assert start == {"shop": {"catalogue": SHOP_METADATA["shop"]["items"], "cart": {}, "inspected": [],
                              "checked_out": False, "total": None}}
    listed = call(box, "list_items", {}, start)
    assert listed.content == "bread-oat: Oat bread, 2.40\nbread-nut: Nut bread, 2.10"
    assert "walnuts" not in listed.content                     # details show only when inspected
    seen = call(box, "inspect", {"item": "bread-nut"}, start)
    assert "Contains walnuts." in seen.content and "5 in stock" in seen.content
    assert seen.state["shop"]["inspected"] == ["bread-nut"]
    assert start["shop"]["inspected"] == []                     # the old state is untouched


def test_shop_order_of_actions_matters():
    box = shop_box()
    state = box.initial_state
    empty = call(box, "checkout", {}, state)
    assert empty.error and "cart is empty" in empty.content and empty.state == state
    state = call(box, "add_to_cart", {"item": "bread-oat", "qty": 2}, state).state
    too_many = call(box, "add_to_cart", {"item": "bread-oat", "qty": 2}, state)
    assert too_many.error and "only 3 of bread-oat in stock" in too_many.content
    done = call(box, "checkout", {}, state)
    assert not done.error and "Total: 4.80" in done.content
    assert done.state["shop"]["checked_out"] is True and done.state["shop"]["total"] == "4.80"
    late = call(box, "add_to_cart", {"item": "bread-nut", "qty": 1}, done.state)
    assert late.error and "already checked out" in late.content and late.state == done.state


def test_shop_unknown_item_and_bad_quantity_are_errors():
    box = shop_box()
    assert "no item 'cake'" in call(box, "inspect", {"item": "cake"}, box.initial_state).content
    bad_qty = call(box, "add_to_cart", {"item": "bread-oat", "qty": "two"}, box.initial_state)
    assert bad_qty.error and "qty" in bad_qty.content
    assert call(box, "add_to_cart", {"item": "bread-oat", "qty": 0}, box.initial_state).content == \
        "error: qty must be at least 1"


@pytest.mark.parametrize("metadata, message", [
    ({}, 'needs "metadata"'),
    ({"shop": {"items": [{"id": "a", "name": "A", "price": 2.4, "stock": 1}]}}, '"price" must be a decimal string'),
    ({"shop": {"items": [{"id": "a", "name": "A", "price": "1", "stock": 1}] * 2}}, "used once"),
    ({"shop": {"items": [{"id": "a", "name": "A", "price": "1", "stock": -1}]}}, '"stock"'),
])
def test_shop_checks_its_catalogue(metadata, message):
    with pytest.raises(ToolSpecError, match=message):
        tools.check_tool_refs(["shop"], metadata)


# --------------------------------------------------------------------------- call never raises

@pytest.mark.parametrize("name, arguments, message", [
    ("count", '{"word": "x"}', "error: there is no tool named 'count' (tools: spell)"),
    ("spell", '{"word": "straw', "error: the arguments of spell are not valid JSON"),
    ("spell", '["straw"]', "error: the arguments of spell must be a JSON object"),
    ("spell", "{}", "error: spell needs the argument(s) word"),
    ("spell", '{"word": "a", "times": 2}', "error: spell has no argument(s) times (its arguments: word)"),
    ("spell", '{"word": 7}', "error: spell: word: 7 is not of type string"),
])
def test_bad_calls_become_error_results(name, arguments, message):
    outcome = call(toolbox_for({"tools": ["letters"]}), name, arguments, {"kept": 1})
    assert outcome.error and outcome.content.startswith(message)
    assert outcome.state == {"kept": 1}


def test_an_integer_written_as_2_0_reaches_the_tool_as_2():
    box = toolbox_for({"tools": ["shop"], "metadata": SHOP_METADATA})
    added = call(box, "add_to_cart", {"item": "bread-oat", "qty": 2.0}, box.initial_state)
    assert added.state["shop"]["cart"] == {"bread-oat": 2} and "Added 2 x bread-oat" in added.content
    wrong = call(box, "add_to_cart", {"item": "bread-oat", "qty": 2.5}, box.initial_state)
    assert wrong.content == "error: add_to_cart: qty: 2.5 is not of type integer"


def test_a_richer_schema_is_checked_by_jsonschema(monkeypatch):
    def pick(colour):
        """Pick a colour."""
        return colour

    monkeypatch.setattr(registry, "_SETS", dict(registry._SETS))
    chosen = tool(pick, {"colour": ("string", "a colour")})
    chosen.parameters["properties"]["colour"]["enum"] = ["red", "blue"]
    tools.register(ToolSet("colours", (chosen,)))
    box = toolbox_for({"tools": ["colours"]})
    assert call(box, "pick", {"colour": "red"}).content == "red"
    outcome = call(box, "pick", {"colour": "green"})
    assert outcome.error and outcome.content == "error: pick: colour: 'green' is not one of ['red', 'blue']"


def test_a_builtin_tool_that_raises_becomes_an_error_result(monkeypatch):
    def broken(word):
        raise KeyError("boom")

    monkeypatch.setattr(registry, "_SETS", dict(registry._SETS))
    tools.register(ToolSet("broken", (tool(broken, {"word": ("string", "w")}),)))
    outcome = call(toolbox_for({"tools": ["broken"]}), "broken", {"word": "x"})
    assert outcome.error and outcome.content == "error: KeyError: 'boom'"


@pytest.mark.parametrize("name", [None, 3, ["spell"], {"name": "spell"}])
def test_a_name_that_is_not_text_is_an_unknown_tool(name):
    outcome = asyncio.run(toolbox_for({"tools": ["letters"]}).call(None, name, "{}", None))
    assert outcome.error and outcome.content.startswith("error: there is no tool named")


def test_tool_error_reads_as_its_message():
    assert str(ToolError("division by zero")) == "division by zero"
