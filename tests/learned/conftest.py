"""Synthetic outcomes where one word decides which model is right, and a router trained on them.

Every prompt is a sentence of filler words of the same length. A prompt holding "zebra" is
answered right only by ``strong``; one holding "lion" by ``mid`` and ``strong``; every other prompt
by all three. Costs are fixed per call: weak $0.001, mid $0.004, strong $0.010. The oracle sends
zebra prompts to strong, lion prompts to mid and the rest to weak; a router that learnt the words
does the same, and one that did not cannot beat the random mix.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

FILLER = [
    "please",
    "answer",
    "the",
    "question",
    "about",
    "history",
    "science",
    "cooking",
    "travel",
    "music",
    "sport",
    "weather",
    "garden",
    "city",
    "river",
    "mountain",
    "book",
    "film",
    "art",
    "code",
    "language",
    "market",
    "animal",
    "planet",
    "ocean",
]
COSTS = {"weak-model": 0.001, "mid-model": 0.004, "strong-model": 0.010}


def prompt_for(kind: str, rng: random.Random) -> str:
    words = [rng.choice(FILLER) for _ in range(12)]
    if kind != "plain":
        words[rng.randrange(len(words))] = kind
    return " ".join(words)


def make_rows(n: int = 1200, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        kind = ("zebra", "lion", "plain")[i % 3]
        right = {"zebra": {"strong-model"}, "lion": {"mid-model", "strong-model"}, "plain": set(COSTS)}[kind]
        rows.append(
            {
                "id": f"s{i}",
                "task": kind,
                "prompt": prompt_for(kind, rng),
                "outcomes": {
                    m: {"score": 1.0 if m in right else 0.0, "cost_usd": c, "completion_tokens": 10}
                    for m, c in COSTS.items()
                },
            }
        )
    return rows


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


MAPPING = {"weak": "weak-model", "mid": "mid-model", "strong": "strong-model"}

POLICY = """
version: 1
models:
  weak:
    litellm_params: {model: openai/weak-model}
    tier: basic
    pricing: {input_per_mtok: 1, output_per_mtok: 1}
  mid:
    litellm_params: {model: openai/mid-model}
    tier: intermediate
    pricing: {input_per_mtok: 4, output_per_mtok: 4}
  strong:
    litellm_params: {model: openai/strong-model}
    tier: expert
    pricing: {input_per_mtok: 10, output_per_mtok: 10}
routes:
  smart:
    strategy: learned
    candidates: [weak, mid, strong]
    learned: {artifact: router, %(knob)s}
    rules:
      - {name: vision, when: {has_images: true}, use: strong}
default_route: smart
"""


def policy_text(knob: str = "lambda: 0.08") -> str:
    return POLICY % {"knob": knob}


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The synthetic data and a router trained on its train split (once per session)."""
    from mm_litellm.learned.train import TrainOptions, train_router

    root = tmp_path_factory.mktemp("learned")
    data = write_jsonl(root / "data.jsonl", make_rows())
    result = train_router(str(data), root / "router", TrainOptions(mapping=MAPPING))
    return {"root": root, "data": data, "result": result, "router": result.router, "report": result.report}


@pytest.fixture
def policy_dir(trained: dict[str, Any], tmp_path: Path) -> Path:
    """A folder holding a copy of the trained router as ``router/`` (for policies written next to it)."""
    import shutil

    shutil.copytree(trained["root"] / "router", tmp_path / "router")
    return tmp_path
