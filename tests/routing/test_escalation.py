"""Confidence scoring and the escalation loop (mocked answers: unsure, confident, costly)."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace

import pytest

import mm_litellm
from mm_litellm import ConfigurationError, decision_of
from mm_litellm.policy.routing import EscalationSettings
from mm_litellm.routing.confidence import SCORERS, Confidence, HeuristicScorer, register_scorer, scorer_for

SURE = (
    "The capital of France is definitely Paris, which has been the seat of the French government "
    "for centuries and is clearly its largest city by population."
)
UNSURE = "I'm not sure, it might be Lyon or possibly Paris; I would need to check a few more sources first."

POLICY = """
models:
  a: {litellm_params: {model: openai/m-a, api_key: k}, tier: basic, pricing: {input_per_mtok: 1, output_per_mtok: 1}}
  b: {litellm_params: {model: openai/m-b, api_key: k}, tier: advanced, pricing: {input_per_mtok: 10, output_per_mtok: 10}}
  c: {litellm_params: {model: openai/m-c, api_key: k}, tier: expert, pricing: {input_per_mtok: 100, output_per_mtok: 100}}
router: {num_retries: 0}
chains: {ladder: [a, b, c]}
routes:
  careful: {default: a, escalate: ladder}
  plain: {default: a}
"""
ASK = [{"role": "user", "content": "What is the capital of France?"}]


def test_heuristic_scorer_signals() -> None:
    s = HeuristicScorer()
    assert s.score(SURE).score == pytest.approx(0.9)
    unsure = s.score(UNSURE)
    assert unsure.score < 0.6
    assert unsure.reasons[:3] == ("hedging: 'not sure'", "hedging: 'might be'", "hedging: 'possibly'")
    assert s.score("").reasons == ("empty answer",) and s.score("  ").score == 0.0
    assert s.score("Paris.").reasons == ("short answer (1 words < 20)",)
    refusal = s.score(
        "I'm sorry, but I can't help with that request because it is outside what I may discuss here today."
    )
    assert refusal.score == 0.2 and refusal.reasons[-1] == "refusal: 'I can't help'"
    assert HeuristicScorer(EscalationSettings(short_answer_words=0)).score("Paris.").score == pytest.approx(
        0.8
    )


def test_logprobs_are_averaged_in() -> None:
    import math

    tokens = [{"token": "Paris", "logprob": math.log(0.5)}, {"token": ".", "logprob": math.log(0.5)}]
    response = SimpleNamespace(choices=[SimpleNamespace(logprobs={"content": tokens})])
    result = HeuristicScorer(EscalationSettings(short_answer_words=0)).score("Paris.", response)
    assert result.score == pytest.approx((0.8 + 0.5) / 2)
    assert result.reasons[-1] == "mean token probability 0.50"


def test_scorer_registry() -> None:
    class Always:
        def __init__(self, settings: EscalationSettings) -> None:
            self.value = settings.min_confidence

        def score(self, text: str, response: object = None) -> Confidence:
            return Confidence(self.value, ("fixed",))

    register_scorer("fixed", Always)
    try:
        assert scorer_for(EscalationSettings(scorer="fixed", min_confidence=0.3)).score("x").score == 0.3
    finally:
        del SCORERS["fixed"]
    with pytest.raises(ConfigurationError, match="unknown confidence scorer 'nope'; registered: heuristic"):
        scorer_for(EscalationSettings(scorer="nope"))


def test_unsure_answer_escalates_until_confident(mm_policy, mm_mock) -> None:
    mm_policy(POLICY)
    mm_mock.script("a", UNSURE, prompt_tokens=100, completion_tokens=50)
    mm_mock.script("b", SURE, prompt_tokens=100, completion_tokens=50)
    response = mm_litellm.completion(model="careful", messages=ASK)
    assert response.choices[0].message.content == SURE
    trace = decision_of(response)
    assert trace["escalation_chain"] == ["b", "c"]
    esc = trace["escalation"]
    assert [(h["model"], h["confident"]) for h in esc["hops"]] == [("a", False), ("b", True)]
    assert esc["stopped"] == "confident" and esc["chosen_hop"] == 1
    assert [h["cost"] for h in esc["hops"]] == pytest.approx([150e-6, 1500e-6])
    assert esc["total_cost"] == pytest.approx(1650e-6)
    assert trace["served_model"] == "b"
    assert [c.kwargs["metadata"]["mm_litellm"].get("escalation_hop") for c in mm_mock.calls] == [None, 1]


def test_chain_exhausted_returns_the_most_confident_answer(mm_policy, mm_mock) -> None:
    mm_policy(POLICY)
    mm_mock.script("a", "Maybe Paris.")
    mm_mock.script("b", UNSURE)
    mm_mock.script("c", "I think it is Paris.")
    response = mm_litellm.completion(model="careful", messages=ASK)
    esc = decision_of(response)["escalation"]
    assert [h["model"] for h in esc["hops"]] == ["a", "b", "c"]
    assert esc["stopped"] == "chain exhausted"
    best = max(range(3), key=lambda i: (esc["hops"][i]["confidence"], i))
    assert esc["chosen_hop"] == best
    assert response.choices[0].message.content == ["Maybe Paris.", UNSURE, "I think it is Paris."][best]


def test_cost_cap_stops_before_an_expensive_hop(mm_policy, mm_mock) -> None:
    mm_policy(POLICY)
    mm_mock.script("a", UNSURE, prompt_tokens=100, completion_tokens=50)
    mm_mock.script("b", UNSURE, prompt_tokens=100, completion_tokens=50)
    # a costs $0.00015, b ~$0.0015, c ~$0.015: a cap of $0.005 allows b, not c
    response = mm_litellm.completion(model="careful", messages=ASK, metadata={"max_cost": 0.005})
    esc = decision_of(response)["escalation"]
    assert [h["model"] for h in esc["hops"]] == ["a", "b"]
    assert esc["stopped"] == "cost cap: spent $0.001650, next hop 'c' $0.015000, max_cost $0.005"
    assert [c.model_group for c in mm_mock.calls] == ["a", "b"]


def test_no_escalation_without_a_chain_or_when_streaming(mm_policy, mm_mock) -> None:
    mm_policy(POLICY)
    mm_mock.script("a", UNSURE)
    assert "escalation" not in decision_of(mm_litellm.completion(model="plain", messages=ASK))
    chunks = list(mm_litellm.completion(model="careful", messages=ASK, stream=True))
    assert chunks and [c.model_group for c in mm_mock.calls] == ["a", "a"]


def test_async_escalation(mm_policy, mm_mock) -> None:
    mm_policy(POLICY)
    mm_mock.script("a", " ")  # an empty mock_response would not mock
    mm_mock.script("b", SURE)
    response = asyncio.run(mm_litellm.acompletion(model="careful", messages=ASK))
    esc = decision_of(response)["escalation"]
    assert (esc["hops"][0]["model"], esc["hops"][0]["reasons"]) == ("a", ["empty answer"])
    assert response.choices[0].message.content == SURE


def test_hops_are_recorded_under_the_first_call(mm_policy, mm_mock, tmp_path, monkeypatch) -> None:
    """Each hop's ledger row names the first call as its parent: one prompt, answered by several
    models, which the ledger export turns into one evaluation row."""
    from sqlalchemy import text

    from mm_litellm.runtime import current

    monkeypatch.setenv("MM_LITELLM_DATABASE_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    mm_policy(POLICY + "budgets: {limits: [{name: g, limit_usd: 100}]}\n")
    mm_mock.script("a", UNSURE)
    mm_mock.script("b", UNSURE)
    mm_mock.script("c", SURE)
    response = mm_litellm.completion(model="careful", messages=ASK)
    assert [h["model"] for h in decision_of(response)["escalation"]["hops"]] == ["a", "b", "c"]
    service = current().budget
    sql = "SELECT call_id, model, parent_id, escalation_hop FROM mm_ledger ORDER BY id"
    deadline = time.monotonic() + 20
    while True:  # LiteLLM delivers success events later (1.110: through its logging worker)
        assert service.flush()
        with service.store.engine.connect() as c:
            rows = list(c.execute(text(sql)))
        if len(rows) >= 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    # the success events (and so the rows) may arrive in any order under load: order by hop
    first, *hops = sorted(rows, key=lambda r: -1 if r.escalation_hop is None else r.escalation_hop)
    assert (first.model, first.parent_id, first.escalation_hop) == ("a", None, None)
    assert [(r.model, r.parent_id, r.escalation_hop) for r in hops] == [
        ("b", first.call_id, 1),
        ("c", first.call_id, 2),
    ]
    with service.store.engine.connect() as c:  # spent once per call, nothing left held
        spent, held = c.execute(text("SELECT spent_usd, reserved_usd FROM mm_budget_counter")).one()
    assert spent > 0 and held == pytest.approx(0.0, abs=1e-12)
