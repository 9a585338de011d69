"""The policy's ``prompts:`` section: shape, experiments, errors with file and line."""

from __future__ import annotations

import pytest

from mm_litellm import PolicyError, parse_policy


def errors(text: str) -> list[str]:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="p.yaml")
    return [str(i) for i in info.value.issues]


def test_defaults_and_a_full_section() -> None:
    assert parse_policy("version: 1\n").prompts is None
    policy = parse_policy("""
prompts:
  dir: config/prompts
  experiments:
    ab:
      prompt: extraction
      variants: {control: {label: production}, candidate: {version: 2, weight: 3}}
      sticky_by: [session, user]
      metric: score
      min_samples: 50
      alpha: 0.05
      promote_label: production
""")
    assert policy.prompts is not None
    spec = policy.prompts.experiments["ab"]
    assert list(spec.variants) == ["control", "candidate"]  # order kept: the first is the control
    assert spec.variants["candidate"].weight == 3 and spec.sticky_by == ("session", "user")
    assert (policy.prompts.default_label, policy.prompts.refresh_seconds) == ("production", 5.0)


def test_experiment_errors_have_file_line_and_path() -> None:
    problems = errors("""
prompts:
  experiments:
    one:
      prompt: qa
      variants: {a: {version: 1, label: production}, b: {version: 2}}
    two:
      prompt: qa
      variants: {a: {version: 1}}
    three:
      prompt: qa
      variants: {a: {version: 1}, b: {version: 2, weight: 0}}
      metric: clicks
      sticky_by: [user, user]
""")
    assert problems == [
        "p.yaml:6 prompts.experiments.one.variants.a: give either 'version' or 'label' for a variant, not both",
        "p.yaml:7 prompts.experiments.two: an experiment needs at least two variants",
        "p.yaml:12 prompts.experiments.three.variants.b.weight: Input should be greater than 0",
        "p.yaml:13 prompts.experiments.three.metric: Input should be 'success' or 'score'",
    ]


def test_two_active_experiments_on_one_prompt() -> None:
    text = """
prompts:
  experiments:
    a: {prompt: qa, variants: {x: {version: 1}, y: {version: 2}}}
    b: {prompt: qa, variants: {x: {version: 1}, y: {version: 2}}}
"""
    assert errors(text) == [
        "p.yaml:5 prompts.experiments.b: experiments 'a' and 'b' are both active for prompt 'qa'; set 'active: false' on one"
    ]
    parse_policy(text.replace("b: {prompt: qa,", "b: {active: false, prompt: qa,"))


def test_unknown_keys_list_what_is_allowed() -> None:
    assert errors("prompts: {directory: x}\n") == [
        "p.yaml:1 prompts.directory: unknown key 'directory'; allowed: dir, default_label, refresh_seconds, experiments"
    ]
