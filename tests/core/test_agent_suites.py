"""The built-in agent suites: every task can be solved with its tools, and a careless agent scores less."""
from __future__ import annotations

import asyncio
import json
import re

import pytest

from lessonlab.core.tasks.suites import load_suite
from lessonlab.core.tools import toolbox_for
from lessonlab.core.verifiers import verify

AGENT_SUITES = ("strawberry-tools", "arithmetic-tools", "shop")


def call(box, name, arguments, state=None):
    return asyncio.run(box.call(None, name, json.dumps(arguments), state))


@pytest.mark.parametrize("name", AGENT_SUITES)
def test_agent_suites_have_tools_turn_limits_and_both_splits(name):
    suite = load_suite(name)
    assert all(task.tools and task.max_turns for task in suite.tasks)
    assert suite.counts()["train"] > 0 and suite.counts()["heldout"] > 0


def test_spelling_gives_every_strawberry_answer():
    for task in load_suite("strawberry-tools").tasks:
        box = toolbox_for(task)
        letters = call(box, "spell", {"word": task.metadata["word"]}).content.split("\n")
        count = letters.count(task.metadata["letter"])
        assert verify(task.verifier, f"Answer: {count}").reward == 1.0, task.id


def test_calc_gives_every_arithmetic_answer():
    for task in load_suite("arithmetic-tools").tasks:
        a, symbol, b = re.search(r"What is (\d+) (\+|×) (\d+)\?", task.prompt).groups()
        result = call(toolbox_for(task), "add" if symbol == "+" else "mul", {"a": int(a), "b": int(b)}).content
        assert verify(task.verifier, f"Answer: {result}").reward == 1.0, task.id


def careful_shopper(task) -> dict:
    """Inspect every item of the category, buy the only one that fits the errand, check out: the final state."""
    box = toolbox_for(task)
    state = box.initial_state
    wanted_qty = int(task.prompt.split()[1])
    rule = re.search(r"choosing the one (.*?), and nothing else", task.prompt).group(1)
    fits = []
    for line in call(box, "list_items", {}, state).content.splitlines():
        item = line.split(":")[0]
        seen = call(box, "inspect", {"item": item}, state)
        state = seen.state
        details = seen.content
        if rule.startswith("with no "):
            ok = rule[len("with no "):-len(" in it")] not in details
        elif rule == "that is suitable for vegans":
            ok = "Suitable for vegans: yes" in details
        else:
            ok = f"Pack: {rule[len('in the '):-len(' pack')]}." in details
        category = next(word for word in ("bread", "biscuits", "cereal", "soup", "chocolate", "granola")
                        if word in task.prompt)
        if ok and item.startswith(category + "-"):
            fits.append(item)
    assert len(fits) == 1, (task.id, fits)
    state = call(box, "add_to_cart", {"item": fits[0], "qty": wanted_qty}, state).state
    return call(box, "checkout", {}, state).state


def test_every_shop_errand_has_exactly_one_right_item_and_inspecting_finds_it():
    for task in load_suite("shop").tasks:
        final = careful_shopper(task)
        assert verify(task.verifier, "Bought it.", task={"tool_state": final}).reward == 1.0, task.id


def test_adding_without_inspecting_scores_less():
    # A shopper that takes the first item of the right kind from the list, without inspecting, is often wrong.
    rewards = []
    for task in load_suite("shop").tasks:
        box = toolbox_for(task)
        category = task.id.split("-", 2)[2]
        first = next(line.split(":")[0] for line in call(box, "list_items", {}, box.initial_state).content.splitlines()
                     if line.startswith(category + "-"))
        state = call(box, "add_to_cart", {"item": first, "qty": int(task.prompt.split()[1])}, box.initial_state).state
        state = call(box, "checkout", {}, state).state
        rewards.append(verify(task.verifier, "", task={"tool_state": state}).reward)
    assert sum(r == 1.0 for r in rewards) < len(rewards) / 2
