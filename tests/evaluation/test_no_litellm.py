"""A replay imports no LiteLLM: exact counts near thresholds and LiteLLM's prices come without it.

The counts must still be LiteLLM's: a replay decides each row as the live engine would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mm_litellm.evaluation import EvalConfig, Evaluation, load_dataset
from mm_litellm.integrations.bundled_tokens import TokenCounter, litellm_count, plain_count
from mm_litellm.policy import load_policy
from tests.evaluation.conftest import write_jsonl

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "routing"

# Two routes: a token threshold (rows near it need an exact count) and a cost_optimized route whose
# models have no pricing: override (LiteLLM's price table ranks them), both over the same two models.
POLICY = """
version: 1
models:
  small:
    litellm_params: {model: openai/gpt-4o-mini}
    context_window: 400
  large:
    litellm_params: {model: openai/gpt-4o}
routes:
  auto:
    rules:
      - {name: long, when: {input_tokens: {gt: 60}}, use: large}
    default: small
  cheap:
    strategy: cost_optimized
    candidates: [large, small]
default_route: auto
"""

CHECK = """
import sys
from mm_litellm.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit as exc:
    assert not exc.code, exc.code
assert "litellm" not in sys.modules, "LiteLLM was imported"
"""


def _rows() -> list[dict[str, Any]]:
    """Prompts from 150 to 340 characters: an estimate of 40 to 90 tokens, around the 60 threshold."""
    words = [
        "the",
        "quick",
        "brown",
        "fox",
        "jumps",
        "over",
        "a",
        "lazy",
        "dog;",
        "résumé",
        "naïve",
        "東京",
        "42",
    ]
    words.append("<|endoftext|>")
    rows = []
    for i in range(40):
        size = 150 + 5 * i
        text = " ".join(words[(i + k) % len(words)] for k in range(size))[:size]
        rows.append(
            {
                "id": f"r{i}",
                "prompt": text,
                "outcomes": {
                    "a": {"score": float(i % 2), "cost_usd": 0.001},
                    "b": {"score": 1.0, "cost_usd": 0.01},
                },
            }
        )
    return rows


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    return {"policy": policy, "data": write_jsonl(tmp_path / "rows.jsonl", _rows())}


@pytest.mark.parametrize("route", ["auto", "cheap", "smart"])
def test_policy_evaluate_does_not_import_litellm(files: dict[str, Path], route: str) -> None:
    if (
        route == "smart"
    ):  # the example policy's learned route (numpy only; its models priced by LiteLLM's table)
        args = ["policy", "evaluate", "--policy", "config/policy.yaml", "--data", str(files["data"])]
        args += ["--map", "gpt-4o-mini=a", "--map", "gpt-4o=b", "--split", "all", "--route", route]
    else:
        args = ["policy", "evaluate", "--policy", str(files["policy"]), "--data", str(files["data"])]
        args += ["--map", "small=a", "--map", "large=b", "--split", "all", "--route", route]
    done = subprocess.run(
        [sys.executable, "-c", CHECK, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "evaluated 40 rows" in done.stdout


def test_the_replay_counts_near_the_threshold_as_litellm_does(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(
        sys.modules, "litellm", raising=False
    )  # as in a fresh process (other tests import it)
    policy = load_policy(files["policy"])
    rows = load_dataset(files["data"])
    config = EvalConfig(models={"small": "a", "large": "b"})
    ev = Evaluation(rows, policy, config, split="all")
    features = ev.replayer.features(policy, "auto")
    assert "litellm" not in sys.modules
    monkeypatch.undo()
    exact = [f for f in features if f.input_tokens_exact]
    assert len(exact) >= 10 and ev.replayer.counter.by_litellm == 0  # counted, and without LiteLLM
    for row, f in zip(ev.table.rows, features, strict=True):
        if f.input_tokens_exact:
            assert f.input_tokens == litellm_count(row.chat()), row.id


def test_plain_count_is_litellms_count_on_edge_cases() -> None:
    cases: list[list[dict[str, Any]]] = [
        [{"role": "user", "content": ""}],
        [
            {"role": "system", "content": "Be brief. <|endoftext|> <|endofprompt|>"},
            {"role": "user", "content": "hi"},
        ],
        [{"role": "user", "content": "naïve résumé 東京 🙂 " * 200, "name": "bob"}],  # > 1,024 characters
        [{"role": "user", "content": "a" * 5000}, {"role": "assistant", "content": None}],
        [{"role": "user", "content": "line\n\n  indented\r\n\ttab  " * 80}],
    ]
    for messages in cases:
        assert plain_count(messages) == litellm_count(messages), messages[0]["content"][:40]


def test_what_plain_count_cannot_count_goes_to_litellm() -> None:
    parts = [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    tools = [{"role": "assistant", "content": None, "tool_calls": [{"function": {"arguments": "{}"}}]}]
    assert plain_count(parts) is None and plain_count(tools) is None
    seen: list[Any] = []
    counter = TokenCounter(fallback=lambda m: seen.append(m) or 7)
    assert counter(parts) == 7 and counter.by_litellm == 1 and seen == [parts]


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"the recorded data sets are not in {SHARED}")
def test_plain_count_is_litellms_count_on_the_recorded_prompts() -> None:
    for name in (
        "routellm_mmlu_gpt4_vs_mixtral",
        "routellm_gsm8k_gpt4_vs_mixtral",
        "routellm_mtbench_judged",
    ):
        rows = load_dataset(SHARED / f"{name}.jsonl.gz")
        for row in list(rows)[::40]:
            assert plain_count(row.chat()) == litellm_count(row.chat()), (name, row.id)
