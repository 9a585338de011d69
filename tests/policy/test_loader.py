"""The policy file: loading, immutability, and every validation error with its exact message."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from mm_litellm import PolicyError, load_policy, parse_policy
from tests.conftest import EXAMPLE_POLICY, TEST_POLICY


def issues(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(textwrap.dedent(text), source="p.yaml")
    return [str(i) for i in info.value.issues]


MODELS = """
models:
  small: {litellm_params: {model: openai/gpt-4o-mini}, tier: basic}
  big: {litellm_params: {model: openai/gpt-4o}, tier: advanced}
"""


def test_example_policy_loads() -> None:
    policy = load_policy(EXAMPLE_POLICY)
    assert policy.source == str(EXAMPLE_POLICY)
    assert policy.default_route == "auto"
    assert policy.kind_of("auto") == "route"
    assert policy.kind_of("gpt-4") == "alias"
    assert policy.kind_of("gpt-4o-mini") == "model"
    assert policy.kind_of("mistral/whatever") is None
    assert policy.models["gpt-4o"].tier == "advanced"


def test_single_and_multi_deployment_forms() -> None:
    policy = parse_policy(
        MODELS
        + """
  pool:
    deployments:
      - {litellm_params: {model: openai/gpt-4o-mini, api_base: "http://a"}, rpm: 10}
      - {litellm_params: {model: openai/gpt-4o-mini, api_base: "http://b"}, tpm: 1000}
"""
    )
    assert [d.rpm for d in policy.models["pool"].all_deployments] == [10, None]
    assert policy.models["small"].all_deployments[0].litellm_params["model"] == "openai/gpt-4o-mini"
    assert policy.models["pool"].litellm_model == "openai/gpt-4o-mini"


def test_loaded_policy_is_immutable() -> None:
    policy = parse_policy(TEST_POLICY)
    with pytest.raises(Exception, match="frozen"):
        policy.default_route = "x"  # type: ignore[misc]
    with pytest.raises(TypeError, match="does not support item assignment"):
        policy.models["new"] = policy.models["small"]  # type: ignore[index]
    with pytest.raises(TypeError, match="does not support item assignment"):
        policy.models["small"].litellm_params["model"] = "openai/other"  # type: ignore[index]
    with pytest.raises(AttributeError):
        policy.routes["auto"].rules.append(None)  # type: ignore[attr-defined]


def test_yaml_syntax_error_names_line_and_column() -> None:
    assert issues("models:\n  a: {litellm_params: {model: x}\n  b: 1\n") == [
        "p.yaml:3: YAML syntax error at line 3, column 3: expected ',' or '}', but got '<scalar>'"
    ]


def test_duplicate_keys_are_refused() -> None:
    assert issues(MODELS + "  small: {litellm_params: {model: openai/x}}\n") == [
        "p.yaml:5 models.small: duplicate key"
    ]


def test_top_level_must_be_a_mapping() -> None:
    assert issues("- a\n- b\n") == ["p.yaml:1: the policy must be a mapping (key: value) at the top level"]


def test_empty_file_is_an_empty_policy() -> None:
    policy = parse_policy("")
    assert dict(policy.models) == {} and dict(policy.routes) == {}


def test_unknown_key_lists_allowed_keys() -> None:
    assert issues("models:\n  big:\n    litellm_params: {model: openai/gpt-4o}\n    colour: red\n") == [
        "p.yaml:4 models.big.colour: unknown key 'colour'; allowed: litellm_params, rpm, tpm, deployments, "
        "tier, tags, pricing, context_window, latency_ms, quality, description"
    ]
    assert issues("routez: {}\n")[0].startswith(
        "p.yaml:1 routez: unknown key 'routez'; allowed: version, models,"
    )


def test_wrong_types_and_values() -> None:
    assert issues("""
        models:
          a: {litellm_params: {model: openai/x}, tier: genius, rpm: -1}
    """) == [
        "p.yaml:3 models.a.rpm: Input should be greater than 0",
        "p.yaml:3 models.a.tier: Input should be 'basic', 'intermediate', 'advanced' or 'expert'",
    ]
    assert issues("version: 2\n") == ["p.yaml:1 version: Input should be 1"]


def test_model_needs_litellm_model_and_one_form() -> None:
    assert issues("models:\n  a: {litellm_params: {api_key: sk-secret-value}}\n") == [
        "p.yaml:2 models.a.litellm_params: needs 'model', the LiteLLM model string (e.g. 'openai/gpt-4o-mini')"
    ]
    assert issues("models:\n  a: {tier: basic}\n") == [
        "p.yaml:2 models.a: give either 'litellm_params' (one deployment) or 'deployments' (a list), not both"
    ]


def test_errors_never_echo_secret_values() -> None:
    text = "models:\n  a: {litellm_params: {api_key: sk-live-SECRET123}, rpm: sk-live-SECRET123}\n"
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    assert "SECRET123" not in str(info.value)
    assert "SECRET123" not in repr(
        parse_policy(MODELS.replace("openai/gpt-4o}", "openai/gpt-4o, api_key: sk-SECRET123}"))
    )


def test_unknown_model_references_name_what_exists() -> None:
    found = issues(
        MODELS
        + """
aliases: {old: nothere, older: old}
router:
  fallbacks: {small: [zz]}
  context_window_fallbacks: {ghost: [big]}
  default_fallbacks: [nope]
routes:
  auto:
    rules:
      - {name: r1, when: {has_images: true}, use: gpt5}
    default: small
    fallbacks: [big, missing]
default_route: autox
"""
    )
    assert found == [
        "p.yaml:6 aliases.old: unknown model or route 'nothere'; known models: big, small; routes: auto",
        "p.yaml:6 aliases.older: 'older' points at another alias 'old'; point it at a model or route",
        "p.yaml:8 router.fallbacks.small[0]: unknown model 'zz'; known: big, small",
        "p.yaml:9 router.context_window_fallbacks.ghost: unknown model 'ghost'; known: big, small",
        "p.yaml:10 router.default_fallbacks[0]: unknown model 'nope'; known: big, small",
        "p.yaml:14 routes.auto.rules[0].use: unknown model or route 'gpt5'; known models: big, small; routes: auto",
        "p.yaml:16 routes.auto.fallbacks[1]: unknown model 'missing'; known: big, small",
        "p.yaml:17 default_route: unknown route 'autox'; known: auto",
    ]


def test_names_must_not_collide() -> None:
    assert issues(MODELS + "aliases: {small: big}\n") == [
        "p.yaml:5 aliases.small: 'small' is already a model or route; an alias needs a new name",
    ]
    assert issues(MODELS + "routes:\n  big: {}\n") == [
        "p.yaml:6 routes.big: 'big' is both a route and a model; a name must mean one thing",
    ]


def test_route_cycles_are_refused() -> None:
    assert issues(MODELS + "routes:\n  a: {default: b}\n  b: {rules: [{name: x, use: a}]}\n") == [
        "p.yaml:6 routes.a: routes loop back to themselves: a -> b -> a",
        "p.yaml:7 routes.b: routes loop back to themselves: b -> a -> b",
    ]


def test_rule_errors() -> None:
    assert issues(
        MODELS
        + """
routes:
  auto:
    rules:
      - {name: r, when: {input_tokens: {gtt: 5}}, use: small}
      - {name: r, when: {colour: red}, use: small}
      - {name: s, when: {input_tokens: {gt: many}}, use: small}
      - {name: t, when: {priority: {in: high}}, use: small}
      - {name: u, when: {metadata.x: {matches: "("}}, use: small}
"""
    ) == [
        "p.yaml:9 routes.auto.rules[0].when.input_tokens.gtt: unknown operator 'gtt'; allowed: eq, ne, in, "
        "not_in, gt, gte, lt, lte, contains, exists, matches",
        "p.yaml:10 routes.auto.rules[1].name: duplicate rule name 'r' in route 'auto'",
        "p.yaml:10 routes.auto.rules[1].when.colour: unknown fact 'colour'; allowed: budget_mode, has_images, "
        "has_tools, input_tokens, input_tokens_exact, json_mode, latency_critical, max_tokens, message_count, "
        "model, preferred_model, priority, stream, tags, task, team, tier, user, metadata.<path>, any, not",
        "p.yaml:11 routes.auto.rules[2].when.input_tokens.gt: 'gt' takes a number",
        "p.yaml:12 routes.auto.rules[3].when.priority.in: 'in' takes a list",
        "p.yaml:13 routes.auto.rules[4].when.metadata.x.matches: invalid regular expression: "
        "missing ), unterminated subpattern at position 0",
    ]


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError) as info:
        load_policy(tmp_path / "missing.yaml")
    assert (
        str(info.value)
        == f"{tmp_path / 'missing.yaml'}: cannot read the policy file: No such file or directory"
    )


def test_all_problems_reported_together() -> None:
    found = issues("models:\n  a: {litellm_params: {model: x}, tier: nope}\n  b: {litellm_params: {}}\n")
    assert len(found) == 2
