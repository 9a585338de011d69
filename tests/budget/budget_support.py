"""Constants and helpers the budget tests share (a module of its own: importing `conftest` by
name picks whichever conftest.py pytest put on sys.path first)."""

from __future__ import annotations

MESSAGES = [{"role": "user", "content": "Summarise the quarterly report in two sentences."}]

BASE = """
version: 1
models:
  small:
    litellm_params: {model: openai/gpt-4o-mini, api_key: test}
    tier: basic
    pricing: {input_per_mtok: 1000, output_per_mtok: 1000}
  big:
    litellm_params: {model: openai/gpt-4o, api_key: test}
    tier: advanced
    pricing: {input_per_mtok: 4000, output_per_mtok: 4000}
  local:
    litellm_params: {model: openai/llama-local-unpriced, api_key: test}
router: {num_retries: 0}
routes:
  auto:
    rules:
      - {name: vip, when: {priority: high}, use: big}
    default: small
"""
"""small costs $0.001 per token, big $0.004, local is unpriced."""


def prompt_tokens(model: str = "openai/gpt-4o-mini") -> int:
    from mm_litellm.integrations.prices import count_prompt_tokens

    return count_prompt_tokens(model, MESSAGES)
