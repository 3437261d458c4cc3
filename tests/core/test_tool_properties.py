"""Properties over generated calls: Toolbox.call never raises, whatever the model sends, and the state
verifier never raises, whatever the final state."""
from __future__ import annotations

import asyncio
import json

from hypothesis import HealthCheck, given, settings, strategies as st

from lessonlab.core.tools import ToolOutcome, toolbox_for
from lessonlab.core.verifiers import Verdict, verify

PROPERTY = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
SHOP = {"shop": {"items": [{"id": "a", "name": "A", "price": "1.50", "stock": 2, "details": "x"},
                           {"id": "b", "name": "B", "price": "0.05", "stock": 0}]}}
BOX = toolbox_for({"tools": ["letters", "calc", "shop"], "metadata": SHOP})
NAMES = [*BOX.names, "", "nope", "spell ", "SPELL"]
ARGUMENT_NAMES = ["word", "a", "b", "item", "qty", "extra"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12)
    | st.sampled_from(["a", "b", "1/3", "0", "1e3", "-2.5", "1e999999", "strawberry"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
arguments = st.one_of(
    st.dictionaries(st.sampled_from(ARGUMENT_NAMES), json_values, max_size=3).map(json.dumps),
    st.text(max_size=40),
    json_values.map(json.dumps),
)


@PROPERTY
@given(name=st.sampled_from(NAMES), text=arguments, steps=st.integers(1, 3))
def test_a_call_never_raises_and_an_error_keeps_the_state(name, text, steps):
    async def play():
        state = BOX.initial_state
        for _ in range(steps):
            outcome = await BOX.call(None, name, text, state)
            assert isinstance(outcome, ToolOutcome) and isinstance(outcome.content, str)
            if outcome.error:
                assert outcome.content.startswith("error: ") and outcome.state == state
            json.dumps(outcome.state)  # the state stays JSON, as it must to cross a process boundary
            state = outcome.state

    asyncio.run(play())


@PROPERTY
@given(expect=st.dictionaries(st.sampled_from(["shop.cart", "shop.checked_out", "shop.cart.a", "x.0", "shop"]),
                              json_values, min_size=1, max_size=3),
       state=json_values)
def test_the_state_verifier_never_raises(expect, state):
    verdict = verify({"kind": "state", "expect": expect}, "", task={"tool_state": state})
    assert isinstance(verdict, Verdict) and 0.0 <= verdict.reward <= 1.0 and "\n" not in verdict.feedback
