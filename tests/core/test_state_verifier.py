"""The state verifier: the final tool state (`task["tool_state"]`) against the expected values."""
from __future__ import annotations

import asyncio

import pytest

from lessonlab.core.verifiers import VerifierSpecError, WorkerPool, validate_spec, verify

SPEC = {"kind": "state", "expect": {"shop.cart": {"bread-oat": 2}, "shop.checked_out": True}}


def state(cart, checked_out):
    return {"shop": {"cart": cart, "checked_out": checked_out, "total": None}}


def test_every_expectation_met_scores_one():
    verdict = verify(SPEC, "Done.", task={"tool_state": state({"bread-oat": 2}, True)})
    assert verdict.reward == 1.0 and verdict.feedback == "state as expected (2 of 2 checks)"


def test_each_miss_is_named_and_the_reward_is_the_share_met():
    verdict = verify(SPEC, "Done.", task={"tool_state": state({"bread-nut": 2}, True)})
    assert verdict.reward == 0.5
    assert verdict.feedback == ('1 of 2 state checks met; shop.cart: expected {"bread-oat": 2}, '
                                'got {"bread-nut": 2}')


def test_true_is_not_one_and_a_missing_path_is_a_miss():
    verdict = verify({"kind": "state", "expect": {"shop.checked_out": True, "shop.receipt": "r1"}}, "",
                     task={"tool_state": state({}, 1)})
    assert verdict.reward == 0.0
    assert "shop.checked_out: expected true, got 1" in verdict.feedback
    assert "shop.receipt: missing" in verdict.feedback


def test_numbers_compare_as_json_does():
    spec = {"kind": "state", "expect": {"shop.cart.bread-oat": 2}}
    assert verify(spec, "", task={"tool_state": state({"bread-oat": 2.0}, False)}).reward == 1.0


def test_no_tool_state_scores_zero_with_a_reason():
    verdict = verify(SPEC, "I bought it.", task={"id": "t"})
    assert verdict.reward == 0.0 and "no tool state" in verdict.feedback


@pytest.mark.parametrize("spec, message", [
    ({"kind": "state"}, 'needs a "expect" field'),
    ({"kind": "state", "expect": {}}, "non-empty object"),
    ({"kind": "state", "expect": {"shop..cart": 1}}, "dotted keys"),
    ({"kind": "state", "expect": {"a": 1}, "exact": True}, 'unknown field(s) "exact"'),
])
def test_malformed_specs_are_refused(spec, message):
    with pytest.raises(VerifierSpecError) as info:
        validate_spec(spec)
    assert message in str(info.value)


def test_the_pool_passes_the_task_through():
    async def work():
        pool = WorkerPool()
        try:
            return await pool.verify(SPEC, "ok", task={"tool_state": state({"bread-oat": 2}, True)})
        finally:
            await pool.close()

    assert asyncio.run(work()).reward == 1.0
