"""The classifier's literal gates skip only patterns that cannot match: same answers, less work."""

from __future__ import annotations

import random

import pytest

from mm_litellm.policy.routing import ClassifierSettings
from mm_litellm.routing.classifier import Classifier, digit_start, prefix_literals, required_literals

WORDS = (  # noqa: SIM905
    "please explain why the python function fails to compile and summarize the key points "
    "calculate 12 + 30 how many apples write a poem brainstorm slogans classify this sentiment "
    "extract the fields from the invoice return json prove the theorem step-by-step compare "
    "trade-offs of the design tl;dr what is a quick simple format research comprehensive "
    "stack trace refactor unit tests label this spam categorise the ticket"
).split()
ODD = ["\u0130", "\u0131", "\u017f", "\u212a", "é", "\u0661", "ß", "```", "C++", "SQL", "\n", "!", "?"]


def corpus(n: int = 3000, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(n):
        words = [rng.choice(WORDS + ODD) for _ in range(rng.randint(0, 40))]
        text = " ".join(words)
        texts.append(rng.choice([text, text.upper(), text.title(), text.replace(" ", "")]))
    return texts


def plain(c: Classifier, text: str) -> tuple[str, str]:
    scanned = c.window(text)
    task = next((n for n, p in c._task_sets if p.combined.search(scanned)), c.default_task)
    tier = next((n for n, p in c._tier_sets if p.combined.search(scanned)), c.default_tier)
    return task, tier


@pytest.mark.parametrize(
    "settings",
    [
        ClassifierSettings(),
        ClassifierSettings(
            tasks={
                "custom": (
                    r"[A-Z]{3}\d",
                    r"(?<!no )\bapi\b",
                    r"\d{4}-\d\d",
                    r"Ünïcode",
                    r"\bfoo|bar\b",
                    r"^hello",
                ),
                "math": (r"\d+ ?%", r"\b(sum|total)s?\b.*\d"),
            },
            scan_chars=50,
        ),
    ],
)
def test_gated_answers_equal_the_plain_patterns(settings: ClassifierSettings) -> None:
    c = Classifier(settings)
    for text in corpus():
        assert (c.task(text), c.tier(text, 0)) == plain(c, text), text


def test_gates_read_from_the_patterns() -> None:
    assert prefix_literals(r"\bexplain\b") == frozenset({"explain"})
    assert prefix_literals(r"\b(python|Rust)\b") == frozenset({"python", "rust"})
    assert prefix_literals(r"\w+ from") is None
    assert required_literals(r"\bpull (out )?(the |all )?\w+ from\b") == frozenset({"pull "})
    assert required_literals(r"\bhow (many|much)\b.*\d") == frozenset({"how "})
    assert required_literals(r"[a-z]+") is None
    assert digit_start(r"\d+\s*[-+*/^]\s*\d+") is True
    assert digit_start(r"x[0-9]") is False
    assert digit_start(r"abc") is None
