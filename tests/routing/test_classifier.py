"""Task type and complexity tier: default patterns, policy overrides, the scan window."""

from __future__ import annotations

import pytest

from mm_litellm import PolicyError, parse_policy
from mm_litellm.policy.routing import ClassifierSettings
from mm_litellm.routing.classifier import Classifier, request_text
from mm_litellm.routing.engine import RoutingEngine
from tests.conftest import TEST_POLICY


@pytest.mark.parametrize(
    ("text", "task", "tier"),
    [
        ("What is the capital of France?", "general", "basic"),
        ("Write a Python function that adds two numbers", "code", "basic"),
        ("Summarize this article in three sentences", "summarization", "intermediate"),
        ("Extract the price from this HTML: <b>$4</b>", "extraction", "basic"),
        ("Classify the sentiment of this review", "classification", "basic"),
        ("Prove that the square root of 2 is irrational", "math", "expert"),
        ("Design a distributed cache and explain why it scales", "reasoning", "advanced"),
        ("Write a poem about autumn", "creative", "basic"),
        ("Please do comprehensive research on battery chemistry", "general", "expert"),
        ("hello", "general", "basic"),
    ],
)
def test_default_patterns(text: str, task: str, tier: str) -> None:
    c = Classifier()
    assert (c.task(text), c.tier(text)) == (task, tier)


def test_policy_overrides_merge_per_key() -> None:
    settings = ClassifierSettings(
        tasks={"code": [], "billing": [r"\binvoice\b"]},
        tiers={"expert": [r"\blegal\b"]},
        default_tier="intermediate",
        default_task="chat",
    )
    c = Classifier(settings)
    assert c.task("Write a Python function") == "chat"  # code switched off, nothing else matched
    assert c.task("Where is my invoice?") == "billing"
    assert c.tier("a legal question") == "expert"
    assert c.tier("comprehensive research") == "intermediate"  # expert patterns replaced
    assert c.tier("hi") == "intermediate"


def test_only_head_and_tail_are_scanned() -> None:
    c = Classifier(ClassifierSettings(scan_chars=100))
    filler = "lorem ipsum " * 1000
    assert c.task(filler + " summarize " + filler) == "general"  # in the middle: not scanned
    assert c.task("summarize " + filler) == "summarization"
    assert c.task(filler + " summarize") == "summarization"
    assert len(c.window(filler)) == 201


def test_tier_by_tokens_raises_but_never_lowers() -> None:
    c = Classifier(ClassifierSettings(tier_by_tokens={"intermediate": 1000, "advanced": 20000}))
    assert c.tier("what is x", 10) == "basic"
    assert c.tier("what is x", 1500) == "intermediate"
    assert c.tier("what is x", 25000) == "advanced"
    assert c.tier("prove it", 1500) == "expert"


def test_request_text_reads_last_user_message() -> None:
    messages = [
        {"role": "system", "content": "You classify things."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": [{"type": "text", "text": "summarize"}, {"type": "image_url"}]},
    ]
    assert request_text(messages) == "summarize"
    assert request_text([]) == ""


def test_rules_test_task_and_tier() -> None:
    policy = parse_policy(
        TEST_POLICY.replace(
            "      - {name: vip,",
            """      - {name: coder, when: {task: code}, use: claude}
      - {name: hard, when: {tier: {in: [advanced, expert]}}, use: big}
      - {name: vip,""",
        )
    )
    engine = RoutingEngine(policy)
    ask = lambda text: engine.plan("auto", [{"role": "user", "content": text}])  # noqa: E731
    assert (ask("Fix this Python traceback").rule, ask("Design a database schema").rule) == ("coder", "hard")
    plan = ask("what is 2+2")
    assert plan.rule is None and (plan.features.task, plan.features.tier) == ("math", "basic")


def test_invalid_classifier_section_is_reported_with_its_path() -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy("classifier:\n  tasks: {code: ['(unclosed']}\n  tiers: {genius: [x]}\n", source="p.yaml")
    assert str(info.value).splitlines() == [
        "p.yaml:2 classifier.tasks: code: pattern 0 is not a valid regular expression: missing ), "
        "unterminated subpattern at position 0",
        "p.yaml:3 classifier.tiers: unknown tier 'genius'; allowed: basic, intermediate, advanced, expert",
    ]
