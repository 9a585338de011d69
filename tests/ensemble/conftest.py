"""Ensemble test policy: three cheap members plus a judge/validator, all priced by LiteLLM."""

from __future__ import annotations

ENSEMBLE_POLICY = """
version: 1
models:
  mini:
    litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/TEST_OPENAI_KEY}
    tier: basic
  flash:
    litellm_params: {model: gemini/gemini-2.5-flash, api_key: os.environ/TEST_GEMINI_KEY}
    tier: intermediate
  haiku:
    litellm_params: {model: anthropic/claude-haiku-4-5, api_key: os.environ/TEST_ANTHROPIC_KEY}
    tier: intermediate
  big:
    litellm_params: {model: openai/gpt-4o, api_key: os.environ/TEST_OPENAI_KEY}
    tier: expert
router:
  num_retries: 0
routes:
  auto:
    rules:
      - {name: hard, when: {metadata.hard: true}, use: ensemble/vote}
    default: mini
ensembles:
  vote:
    strategy: voting
    members: [mini, flash, haiku]
    normalise: number
    timeout: 2
  vote2:
    strategy: voting
    members: [mini, {model: flash, weight: 2}]
    normalise: label
    quorum: 2
    on_disagreement: weight
  vote-esc:
    strategy: voting
    members: [mini, flash]
    normalise: number
    on_disagreement: escalate
    escalate_to: big
  rank:
    strategy: ranking
    members: [mini, flash, haiku]
    scorer: judge
    judge: big
    criteria: [coherence, accuracy]
  rank-local:
    strategy: ranking
    members: [mini, flash]
    criteria: [completeness]
  fuse:
    strategy: fusion
    members: [mini, flash, haiku]
    quorum: 2
  fuse-conf:
    strategy: fusion
    members: [mini, flash]
    weight_by: confidence
  verify:
    strategy: verification
    generator: mini
    validator: big
    regenerate: true
  synth:
    strategy: synthesis
    members: [mini, big]
  moa:
    strategy: synthesis
    members: [mini, flash]
    mode: aggregator
    aggregator: big
"""


import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _restore_custom_providers():  # type: ignore[no-untyped-def]
    """Registration writes ``litellm.custom_provider_map``: put it back after each test."""
    import litellm

    saved = list(litellm.custom_provider_map)
    yield
    litellm.custom_provider_map = saved
