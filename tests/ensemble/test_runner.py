"""``run_ensemble`` without LiteLLM: any ``call`` coroutine can answer (the replay benchmark's way)."""

from __future__ import annotations

import asyncio
import time

import pytest

import mm_litellm
from mm_litellm import decision_of
from mm_litellm.ensemble import Reply, run_ensemble
from mm_litellm.errors import QuorumLostError
from mm_litellm.policy.ensembles import VotingEnsemble
from tests.ensemble.conftest import ENSEMBLE_POLICY

SPEC = VotingEnsemble(strategy="voting", members=["a", "b", "c"], normalise="label", timeout=0.2)


async def test_costs_tokens_and_failures_are_totalled() -> None:
    async def call(model: str, messages, timeout: float, label: str) -> Reply:  # type: ignore[no-untyped-def]
        if model == "c":
            raise ConnectionError("connection refused")
        return Reply(text="B", prompt_tokens=3, completion_tokens=1, cost=0.25, model=model)

    result = await run_ensemble("e", SPEC, [{"role": "user", "content": "?"}], call)
    assert (result.text, result.cost, result.prompt_tokens, result.completion_tokens) == ("B", 0.5, 6, 2)
    details = result.details()
    assert details["failures"] == {"c": {"error_class": "ConnectionError", "error": "connection refused"}}
    assert (details["confidence"], details["unpriced"]) == (1.0, [])


async def test_slow_members_are_cut_at_their_timeout_and_the_quorum_is_checked() -> None:
    async def call(model: str, messages, timeout: float, label: str) -> Reply:  # type: ignore[no-untyped-def]
        if model != "a":
            await asyncio.sleep(5)
        return Reply(text="A", model=model)

    started = time.perf_counter()
    with pytest.raises(QuorumLostError) as info:
        await run_ensemble("e", SPEC, [], call)
    assert time.perf_counter() - started < 1.0
    assert info.value.failures == {
        "b": "Timeout: no answer within 0.2s",
        "c": "Timeout: no answer within 0.2s",
    }
    assert str(info.value) == (
        "ensemble 'e': quorum lost: 1 of 3 members gave a usable answer, 2 needed; a (a): answered; "
        "b (b): Timeout: no answer within 0.2s; c (c): Timeout: no answer within 0.2s"
    )


def test_sync_call_does_not_wait_for_a_timed_out_member(mm_policy, mm_mock) -> None:
    mm_policy(ENSEMBLE_POLICY.replace("    timeout: 2", "    timeout: 0.3"))
    mm_mock.script("mini", "42")
    mm_mock.script("flash", "42")
    mm_mock.script("haiku", "42", delay=2)
    started = time.perf_counter()
    response = mm_litellm.completion(model="ensemble/vote", messages=[{"role": "user", "content": "?"}])
    assert time.perf_counter() - started < 1.5
    assert decision_of(response)["ensemble"]["failures"]["haiku"]["error_class"] == "Timeout"
