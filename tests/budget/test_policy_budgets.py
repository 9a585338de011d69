"""The policy's budgets: section: structure errors and cross-references, with file:line."""

from __future__ import annotations

import pytest

from mm_litellm import PolicyError, parse_policy

HEAD = """version: 1
models:
  small: {litellm_params: {model: openai/gpt-4o-mini}}
"""


def test_valid_section_loads() -> None:
    policy = parse_policy(
        HEAD
        + """budgets:
  timezone: America/New_York
  limits:
    - {name: daily, limit_usd: 20, alert_at: [0.8, 0.5], on_exceed: downgrade, downgrade_to: small}
    - {name: per-user, scope: user, window: monthly, limit_tokens: 100000}
"""
    )
    assert policy.budgets is not None
    daily, per_user = policy.budgets.limits
    assert daily.alert_at == (0.5, 0.8) and daily.unit == "usd" and daily.limit == 20
    assert per_user.unit == "tokens" and per_user.window == "monthly"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("  limits: [{name: x}]", "give exactly one of 'limit_usd' or 'limit_tokens'"),
        (
            "  limits: [{name: x, limit_usd: 1, limit_tokens: 5}]",
            "give exactly one of 'limit_usd' or 'limit_tokens'",
        ),
        ("  timezone: Mars/Olympus\n  limits: []", "unknown IANA time zone 'Mars/Olympus'"),
        ("  limits: [{name: x, limit_usd: 1, alert_at: [80]}]", "alert_at values are fractions of the limit"),
        ("  limits: [{name: x, limit_usd: 1, window: yearly}]", "window"),
        ("  limits: [{name: x, limit_usd: 1, scope: org}]", "scope"),
        ("  limits: [{name: x, limit_usd: 1}, {name: x, limit_usd: 2}]", "duplicate budget name 'x'"),
        (
            "  limits: [{name: x, limit_usd: 1, downgrade_to: small}]",
            "'downgrade_to' needs 'on_exceed: downgrade'",
        ),
        (
            "  limits: [{name: x, limit_usd: 1, on_exceed: downgrade, downgrade_to: nope}]",
            "budgets.limits[0].downgrade_to: unknown model or route 'nope'; known models: small",
        ),
    ],
)
def test_invalid_sections_are_reported(body: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(HEAD + "budgets:\n" + body + "\n")
    assert message in str(info.value)
    assert "<string>:" in str(info.value)
