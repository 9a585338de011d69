"""Loading, pricing and replay on synthetic data: the policy that must equal the oracle does."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mm_litellm.evaluation.baselines import Point, random_at_cost
from mm_litellm.evaluation.config import EvalConfig, load_eval_config
from mm_litellm.evaluation.dataset import assign_split, load_dataset, write_dataset
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.prices import load_pinned_prices
from mm_litellm.evaluation.session import Evaluation
from mm_litellm.evaluation.table import build_table
from mm_litellm.policy import load_policy, parse_policy


def test_policy_built_to_be_the_oracle_scores_as_the_oracle(synthetic: dict[str, Path]) -> None:
    policy = load_policy(synthetic["policy"])
    ev = Evaluation.from_file(synthetic["data"], policy, EvalConfig(), split="all")
    assert ev.table.mapping == {"weak": "weak-model", "strong": "strong-model"}  # by LiteLLM model name
    report = ev.report(policy)
    res, b = report["result"], report["baselines"]
    assert res["quality"] == pytest.approx(1.0) == pytest.approx(b["oracle"]["quality"])
    assert (
        res["cost_per_1k"] == pytest.approx(0.6 * 1 + 0.4 * 10) == pytest.approx(b["oracle"]["cost_per_1k"])
    )
    assert res["share"] == {"weak": 0.6, "strong": 0.4}
    assert res["rules"] == {"(route default)": 0.6, "long": 0.4}
    assert res["per_task"]["hard"]["share"] == {"strong": 1.0}
    assert b["always_cheapest"] == {
        "quality": pytest.approx(0.6),
        "cost_per_1k": pytest.approx(1.0),
        "detail": "weak",
    }
    assert b["always_strongest"]["quality"] == 1.0 and b["always_strongest"]["cost_per_1k"] == pytest.approx(
        10.0
    )
    assert res["pgr"] == pytest.approx(1.0)
    # random at the policy's cost $4.6: p = (4.6 - 1) / 9 = 0.4, expected quality 0.6 + 0.4 * 0.4
    assert b["random_matched_cost"]["quality"] == pytest.approx(0.76)


def test_random_baseline_expected_value_and_clipping() -> None:
    weak, strong = Point(0.5, 2.0), Point(0.9, 12.0)
    assert random_at_cost(weak, strong, 7.0).quality == pytest.approx(0.7)
    assert random_at_cost(weak, strong, 7.0).detail == "p(strong)=0.500"
    assert random_at_cost(weak, strong, 1.0).quality == 0.5
    assert random_at_cost(weak, strong, 50.0).quality == 0.9


def test_routing_to_an_unmapped_model_is_an_error_naming_it(synthetic: dict[str, Path]) -> None:
    policy = parse_policy(
        synthetic["policy"]
        .read_text()
        .replace(
            "  strong:\n    litellm_params: {model: openai/strong-model}",
            "  strong:\n    litellm_params: {model: openai/other}",
        )
    )
    with pytest.raises(
        EvaluationError, match=r"models with no recorded outcome: strong \(40 rows\); map each"
    ):
        Evaluation(load_dataset(synthetic["data"]), policy, EvalConfig(), split="all").report(policy)


def test_rows_without_a_score_are_dropped_and_counted(synthetic: dict[str, Path], rows_factory) -> None:
    rows = rows_factory()
    rows[0]["outcomes"]["strong-model"]["score"] = None
    del rows[1]["outcomes"]["weak-model"]
    path = synthetic["dir"] / "gaps.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    policy = load_policy(synthetic["policy"])
    ev = Evaluation(load_dataset(path), policy, EvalConfig(), split="all")
    assert len(ev.table) == 98
    assert dict(ev.table.dropped) == {"no score for strong-model": 1, "no outcome for weak-model": 1}


def test_bad_lines_are_all_reported_with_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        '{"id": "a", "prompt": "p", "outcomes": {"m": {"score": 1}}}\n'
        "not json\n"
        '{"id": "b", "prompt": "p", "outcomes": {"m": {"score": 2}}}\n'
        '{"id": "a", "prompt": "p", "outcomes": {"m": {"score": 1}}}\n'
    )
    with pytest.raises(EvaluationError) as info:
        load_dataset(path)
    text = str(info.value)
    assert text.startswith("3 bad line(s) in the dataset:")
    assert f"{path}:2: Expecting value" in text
    assert f"{path}:3: row 'b' model 'm': score must be between 0 and 1.0" in text
    assert f"{path}:4: duplicate id 'a'" in text


def test_gzip_round_trip_and_messages(tmp_path: Path, rows_factory) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows_factory(2, 1)))
    rows = load_dataset(source)
    out = tmp_path / "out.jsonl.gz"
    assert write_dataset(rows, out) == 3
    with gzip.open(out, "rt") as fh:
        assert json.loads(fh.readline())["outcomes"]["weak-model"] == {"score": 1.0, "cost_usd": 0.001}
    assert load_dataset(out) == rows
    assert rows[0].chat() == [{"role": "user", "content": "short question"}]


def test_split_is_seeded_stable_and_near_the_fraction() -> None:
    ids = [f"row-{i}" for i in range(4000)]
    first = [assign_split(i, 7, 0.3) for i in ids]
    assert first == [assign_split(i, 7, 0.3) for i in ids]
    assert 0.27 < first.count("test") / len(ids) < 0.33
    assert first != [assign_split(i, 8, 0.3) for i in ids]


def test_costs_from_pinned_prices_and_tokens(tmp_path: Path, synthetic: dict[str, Path]) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(
        json.dumps({"per_million_tokens_usd": {"weak-model": [1.0, 2.0], "strong-model": [10.0, 30.0]}})
    )
    rows = [
        {
            "id": "t",
            "prompt": "q",
            "prompt_tokens": 1000,
            "outcomes": {
                "weak-model": {"score": 1, "completion_tokens": 500},
                "strong-model": {"score": 1, "cost_usd": 0.5},
            },
        },
        {
            "id": "u",
            "prompt": "q",
            "prompt_tokens": 1000,
            "outcomes": {"weak-model": {"score": 1}, "strong-model": {"score": 1, "cost_usd": 0.5}},
        },
    ]
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    policy = load_policy(synthetic["policy"])
    ev = Evaluation(
        load_dataset(data), policy, EvalConfig(prices=str(prices), default_completion_tokens=100), split="all"
    )
    assert ev.table.cost["weak"] == [pytest.approx(0.002), pytest.approx(0.0012)]
    assert ev.table.cost["strong"] == [0.5, 0.5]  # the row's own cost wins
    assert ev.table.notes == [
        "1 outcome(s) recorded no completion tokens; priced with default_completion_tokens=100"
    ]
    assert load_pinned_prices(prices).get("weak-model").cost(1_000_000, 0) == 1.0


def test_missing_price_is_an_error_saying_how_to_fix_it(tmp_path: Path) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(
        json.dumps({"id": "x", "prompt": "q", "prompt_tokens": 3, "outcomes": {"m": {"score": 1}}}) + "\n"
    )
    with pytest.raises(
        EvaluationError, match=r"row 'x', model 'm' \(policy model 'a'\): no cost_usd, and no price"
    ):
        build_table(load_dataset(data), {"a": "m"}, fallback_price=lambda _model: None)


def test_policy_pricing_prices_models_missing_from_the_pinned_table(
    tmp_path: Path, synthetic: dict[str, Path]
) -> None:
    data = tmp_path / "d.jsonl"
    data.write_text(
        json.dumps(
            {
                "id": "x",
                "prompt": "q",
                "prompt_tokens": 1000,
                "outcomes": {
                    "weak-model": {"score": 1, "completion_tokens": 0},
                    "strong-model": {"score": 1, "completion_tokens": 100},
                },
            }
        )
        + "\n"
    )
    policy = load_policy(synthetic["policy"])  # pricing: weak 1/1, strong 10/10 USD per 1M tokens
    ev = Evaluation(load_dataset(data), policy, EvalConfig(), split="all")
    assert ev.table.cost == {"weak": [pytest.approx(0.001)], "strong": [pytest.approx(0.011)]}


def test_eval_config_file_resolves_prices_and_rejects_unknown_keys(tmp_path: Path) -> None:
    good = tmp_path / "eval.yaml"
    good.write_text("models: {a: b}\nprices: p.json\nseed: 3\n")
    config = load_eval_config(good)
    assert config.prices == str(tmp_path / "p.json") and config.seed == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("modles: {a: b}\n")
    with pytest.raises(EvaluationError, match="modles: Extra inputs are not permitted"):
        load_eval_config(bad)


def test_labels_reach_the_router_only_when_opted_in(synthetic: dict[str, Path]) -> None:
    policy = parse_policy(
        synthetic["policy"]
        .read_text()
        .replace(
            "{name: long, when: {input_tokens: {gt: 50}}, use: strong}",
            "{name: by-category, when: {metadata.category: B}, use: strong}",
        )
    )
    rows = load_dataset(synthetic["data"])
    hidden = Evaluation(rows, policy, EvalConfig(), split="all").run(policy).result
    visible = (
        Evaluation(rows, policy, EvalConfig(metadata_labels=("category",)), split="all").run(policy).result
    )
    assert hidden.share == {"weak": 1.0}
    assert visible.share == {"weak": 0.6, "strong": 0.4}


def test_importing_evaluation_does_not_import_litellm() -> None:
    import subprocess
    import sys

    code = "import sys, mm_litellm.evaluation, mm_litellm.cli.evaluate; print('litellm' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_escalation_replay_pays_every_hop_and_keeps_the_last_score(synthetic: dict[str, Path]) -> None:
    from mm_litellm.evaluation.escalation import replay_escalation

    rows = load_dataset(synthetic["data"])
    table = build_table(rows, {"weak": "weak-model", "strong": "strong-model"})
    n = len(table)
    table.answers["weak"] = ["I am not sure" if r.task == "hard" else "Paris." for r in table.rows]
    table.answers["weak"][-1] = None  # one hard row recorded no answer: no signal
    unsure = {"I am not sure": 0.2, "Paris.": 0.9}
    finals, costs, stats = replay_escalation(
        table, ["weak"] * n, [("strong",)] * n, unsure.__getitem__, threshold=0.6, max_cost_usd=None
    )
    assert finals.count("strong") == 39 and stats.escalated == 39 and stats.no_signal == 1
    assert costs[-2] == pytest.approx(0.011) and costs[0] == pytest.approx(0.001)
    capped = replay_escalation(
        table, ["weak"] * n, [("strong",)] * n, unsure.__getitem__, 0.6, max_cost_usd=0.005
    )
    assert capped[2].capped == 39 and capped[0] == ["weak"] * n
