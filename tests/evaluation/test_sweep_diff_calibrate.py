"""Knob paths, sweeps, diffs and calibration on data whose best answers are known."""

from __future__ import annotations

from pathlib import Path

import pytest

from mm_litellm.evaluation.calibrate import Target, calibrate_knob
from mm_litellm.evaluation.config import EvalConfig
from mm_litellm.evaluation.dataset import load_dataset
from mm_litellm.evaluation.diff import bootstrap_mean_ci, diff_policies
from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.groups import calibrate_groups
from mm_litellm.evaluation.knobs import (
    get_knob,
    parse_path,
    parse_values,
    policy_from_document,
    read_document,
    set_knob,
)
from mm_litellm.evaluation.session import Evaluation
from mm_litellm.policy import load_policy

KNOB = "routes.auto.rules[long].when.input_tokens.gt"


def test_knob_paths_by_name_and_index(synthetic: dict[str, Path]) -> None:
    doc = read_document(synthetic["policy"])
    assert parse_path(KNOB) == ["routes", "auto", "rules", "[long]", "when", "input_tokens", "gt"]
    assert get_knob(doc, KNOB) == 50
    assert get_knob(doc, "routes.auto.rules[0].when.input_tokens.gt") == 50
    changed = set_knob(doc, KNOB, 7)
    assert get_knob(changed, KNOB) == 7 and get_knob(doc, KNOB) == 50  # a copy
    assert get_knob(doc, "models[weak].pricing.input_per_mtok") == 1


def test_knob_errors_name_what_exists(synthetic: dict[str, Path]) -> None:
    doc = read_document(synthetic["policy"])
    with pytest.raises(EvaluationError, match=r"has no item named 'short'; names: long"):
        get_knob(doc, "routes.auto.rules[short].when")
    with pytest.raises(EvaluationError, match=r"has no key 'nope'; keys: auto"):
        get_knob(doc, "routes.nope")
    with pytest.raises(EvaluationError, match="the changed policy is invalid"):
        policy_from_document(set_knob(doc, KNOB, "many"), "x")


def test_parse_values() -> None:
    assert parse_values("100,200,400") == [100, 200, 400]
    assert parse_values("0.5,0.75") == [0.5, 0.75]
    assert parse_values("0:100:5") == [0, 25, 50, 75, 100]
    with pytest.raises(EvaluationError, match="START:STOP:COUNT"):
        parse_values("1:2")


def test_sweep_reaches_the_oracle_and_the_extremes(synthetic: dict[str, Path]) -> None:
    policy = load_policy(synthetic["policy"])
    ev = Evaluation.from_file(synthetic["data"], policy, EvalConfig(), split="all")
    curve = ev.curve(read_document(synthetic["policy"]), "p", KNOB, [0, 50, 100_000])
    points = curve["points"]
    assert [p["cost_per_1k"] for p in points] == [pytest.approx(10.0), pytest.approx(4.6), pytest.approx(1.0)]
    assert [p["quality"] for p in points] == [pytest.approx(1.0), pytest.approx(1.0), pytest.approx(0.6)]
    m = curve["metrics"]
    assert m["cpt50_strong_share"] == pytest.approx(0.4 * 0.5)  # halfway up the segment to the oracle point
    assert m["aiq"] > m["aiq_random"] == pytest.approx(0.8)
    assert m["aiq"] == pytest.approx(m["aiq_oracle"])


def test_diff_of_identical_policies_is_zero(synthetic: dict[str, Path]) -> None:
    policy = load_policy(synthetic["policy"])
    ev = Evaluation.from_file(synthetic["data"], policy, EvalConfig(), split="all")
    report = diff_policies(ev, policy, policy)
    assert (
        report["changed"] == 0
        and report["delta_quality"] == 0
        and report["delta_cost_per_1k_ci"] == [0.0, 0.0]
    )


def test_diff_counts_changes_and_its_intervals_are_seeded(synthetic: dict[str, Path]) -> None:
    old, new = load_policy(synthetic["weak"]), load_policy(synthetic["policy"])
    ev = Evaluation.from_file(synthetic["data"], new, EvalConfig(), split="all")
    report = diff_policies(ev, old, new, samples=300, seed=5)
    assert report["changed"] == 40 and report["transitions"] == {"weak -> strong": 40}
    assert report["delta_quality"] == pytest.approx(0.4)
    assert report["delta_cost_per_1k"] == pytest.approx(3.6)
    lo, hi = report["delta_quality_ci"]
    assert lo < 0.4 < hi
    assert diff_policies(ev, old, new, samples=300, seed=5)["delta_quality_ci"] == [lo, hi]


def test_bootstrap_interval_of_a_constant_is_the_constant() -> None:
    assert bootstrap_mean_ci([[2.0] * 50], samples=100, seed=1, confidence=0.9) == [(2.0, 2.0)]


def test_calibrate_knob_picks_the_cheapest_value_meeting_the_quality_target(
    synthetic: dict[str, Path],
) -> None:
    policy = load_policy(synthetic["policy"])
    config = EvalConfig(seed=1)
    rows = load_dataset(synthetic["data"])
    train = Evaluation(rows, policy, config, split="train")
    doc, fit = calibrate_knob(
        train, read_document(synthetic["policy"]), "p", KNOB, [0, 50, 100_000], Target("quality", 0.95)
    )
    assert fit["value"] == 50 and fit["met_on_train"]
    assert get_knob(doc, KNOB) == 50


def test_calibrate_groups_learns_the_oracle_assignment(synthetic: dict[str, Path]) -> None:
    weak = load_policy(synthetic["weak"])
    config = EvalConfig(metadata_labels=("category",), seed=2)
    rows = load_dataset(synthetic["data"])
    train = Evaluation(rows, weak, config, split="train")
    test = Evaluation(rows, weak, config, split="test")
    doc, fit = calibrate_groups(
        train, read_document(synthetic["weak"]), weak, "metadata.category", Target("cost", 0.5), min_rows=3
    )
    assert fit["assignment"] == {"A": "weak", "B": "strong"} and fit["met_on_train"]
    calibrated = policy_from_document(doc, "calibrated.yaml")
    rule = calibrated.routes["auto"].rules[0]
    assert len(calibrated.routes["auto"].rules) == 1 and rule.use != calibrated.routes["auto"].default
    result = test.run(calibrated).result
    assert result.quality == pytest.approx(test.baselines.oracle.quality)
    assert result.cost_per_1k == pytest.approx(test.baselines.oracle.cost_per_1k)


def test_calibrate_groups_fits_every_group_unless_asked_to_keep_the_rules_first(
    synthetic: dict[str, Path],
) -> None:
    policy = load_policy(synthetic["policy"])
    config = EvalConfig(metadata_labels=("category",))
    train = Evaluation(load_dataset(synthetic["data"]), policy, config, split="all")
    first, fit = calibrate_groups(
        train,
        read_document(synthetic["policy"]),
        policy,
        "metadata.category",
        Target("cost", 0.5),
        min_rows=3,
    )
    # by default every group is fitted, B too although the route's 'long' rule decides all its rows
    assert fit["position"] == "first" and fit["groups"] == 2 and fit["rows_kept_as_before"] == 0
    assert [r["name"] for r in first["routes"]["auto"]["rules"]] == [
        "calibrated-strong",
        "calibrated-weak",
        "long",
    ]
    _doc, fit_last = calibrate_groups(
        train,
        read_document(synthetic["policy"]),
        policy,
        "metadata.category",
        Target("cost", 0.5),
        min_rows=3,
        position="last",
    )
    assert fit_last["rows_kept_as_before"] == 40  # the 'long' rule still decides the hard rows
    assert fit_last["groups"] == 1 and fit_last["assignment"] == {"A": "weak"}


def test_greedy_refinement_fills_the_budget_the_convex_frontier_leaves() -> None:
    from mm_litellm.evaluation.groups import _refine

    # group "big": +10 quality for +90 cost (ratio 0.11); "small": +2 for +5 (ratio 0.4), "tiny": +1 for +4.
    sums = {
        "big": {"w": [0.0, 10.0], "s": [10.0, 100.0]},
        "small": {"w": [0.0, 1.0], "s": [2.0, 6.0]},
        "tiny": {"w": [0.0, 1.0], "s": [1.0, 5.0]},
    }
    start = {"big": "w", "small": "w", "tiny": "w"}
    # budget: 0.5 x always-strong cost (111) = 55.5; base cost 12: small and tiny fit, big does not
    refined = _refine(
        Target("cost", 0.5), start, sums, ["w", "s"], strong_q=13.0, strong_c=111.0, base_q=0.0, base_c=0.0
    )
    assert refined == {"big": "w", "small": "s", "tiny": "s"}
    # quality target 0.9 x 13 = 11.7 from all-strong (13, 111): drop tiny (-1 quality) only
    refined = _refine(
        Target("quality", 0.9),
        {"big": "s", "small": "s", "tiny": "s"},
        sums,
        ["w", "s"],
        strong_q=13.0,
        strong_c=111.0,
        base_q=0.0,
        base_c=0.0,
    )
    assert refined == {"big": "s", "small": "s", "tiny": "w"}
