"""A/B experiments: sticky assignment, weights, the decision rule on simulated outcomes, reports."""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
from typing import Any

import pytest

from mm_litellm.policy.prompts import ExperimentSpec, PromptsSettings
from mm_litellm.prompts.experiments import assign_variant, bucket, decide
from tests.conftest import ROOT

SPEC = ExperimentSpec(prompt="qa", variants={"control": {"version": 1}, "candidate": {"version": 2}})


def test_assignment_is_sticky_within_and_across_processes() -> None:
    users = [f"user:{i}" for i in range(50)]
    here = [assign_variant("exp", SPEC, u) for u in users]
    assert here == [assign_variant("exp", SPEC, u) for u in users]
    code = (
        "import json, sys; from mm_litellm.policy.prompts import ExperimentSpec;"
        "from mm_litellm.prompts.experiments import assign_variant;"
        "spec = ExperimentSpec(prompt='qa', variants={'control': {'version': 1}, 'candidate': {'version': 2}});"
        "print(json.dumps([assign_variant('exp', spec, f'user:{i}') for i in range(50)]))"
    )
    for seed in ("0", "12345"):  # different hash seeds: Python's hash() would differ, sha256 does not
        out = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"},
        )
        assert json.loads(out.stdout) == here
    assert len(set(here)) == 2


def test_experiments_split_users_independently() -> None:
    same = sum(bucket("a", f"u{i}") < 0.5 and bucket("b", f"u{i}") < 0.5 for i in range(4000))
    assert abs(same / 4000 - 0.25) < 0.03


@pytest.mark.parametrize("weights", [(1, 1), (9, 1), (0.2, 0.3, 0.5)])
def test_weights_are_respected_over_10000_assignments(weights: tuple[float, ...]) -> None:
    spec = ExperimentSpec(
        prompt="qa", variants={f"v{i}": {"version": 1, "weight": w} for i, w in enumerate(weights)}
    )
    n = 10_000
    counts = dict.fromkeys(spec.variants, 0)
    for i in range(n):
        counts[assign_variant("weights", spec, f"user-{i}")] += 1
    total = sum(weights)
    for i, w in enumerate(weights):
        p = w / total
        sd = math.sqrt(n * p * (1 - p))
        assert abs(counts[f"v{i}"] - n * p) < 4 * sd, (counts, weights)  # 4 sigma: flaky never, wrong always


def test_random_assignment_without_a_unit_follows_weights() -> None:
    rng = random.Random(7)
    hits = sum(assign_variant("x", SPEC, None, rng) == "control" for _ in range(10_000))
    assert abs(hits - 5000) < 4 * 50


def _simulate(metric: str, a: float, b: float, n: int, rng: random.Random) -> dict[str, list[float]]:
    if metric == "success":
        return {
            "control": [float(rng.random() < a) for _ in range(n)],
            "candidate": [float(rng.random() < b) for _ in range(n)],
        }
    return {
        "control": [rng.gauss(a, 1.0) for _ in range(n)],
        "candidate": [rng.gauss(b, 1.0) for _ in range(n)],
    }


@pytest.mark.parametrize(
    ("metric", "a", "b"), [("success", 0.3, 0.3), ("success", 0.8, 0.8), ("score", 5.0, 5.0)]
)
def test_no_winner_on_identical_variants_in_95_percent_of_200_simulations(
    metric: str, a: float, b: float
) -> None:
    spec = ExperimentSpec(prompt="qa", variants=SPEC.variants, metric=metric, min_samples=200)
    rng = random.Random(20261127)
    winners = sum(
        decide(spec, "control", _simulate(metric, a, b, 300, rng)).winner is not None for _ in range(200)
    )
    assert winners <= 10, winners  # at least 95% of runs declare nothing


@pytest.mark.parametrize(("metric", "a", "b"), [("success", 0.30, 0.50), ("score", 5.0, 5.4)])
def test_the_better_variant_is_found_when_the_difference_is_large(metric: str, a: float, b: float) -> None:
    spec = ExperimentSpec(prompt="qa", variants=SPEC.variants, metric=metric, min_samples=200)
    rng = random.Random(99)
    verdicts = [decide(spec, "control", _simulate(metric, a, b, 400, rng)).winner for _ in range(200)]
    assert verdicts.count("candidate") >= 190, verdicts.count("candidate")
    assert "control" not in verdicts
    worse = [decide(spec, "control", _simulate(metric, b, a, 400, rng)).winner for _ in range(50)]
    assert worse.count("control") >= 45  # a worse candidate makes the control the winner


def test_no_decision_below_the_minimum_sample_size() -> None:
    spec = ExperimentSpec(prompt="qa", variants=SPEC.variants, min_samples=100)
    decision = decide(spec, "control", {"control": [0.0] * 99, "candidate": [1.0] * 150})
    assert decision.winner is None
    assert decision.reason == "not enough outcomes yet (need 100 per variant; have control: 99)"


def test_bonferroni_across_several_variants() -> None:
    spec = ExperimentSpec(
        prompt="qa",
        variants={"a": {"version": 1}, "b": {"version": 2}, "c": {"version": 2}},
        min_samples=10,
        alpha=0.05,
    )
    rng = random.Random(3)
    values = {
        "a": [float(rng.random() < 0.5) for _ in range(2000)],
        "b": [float(rng.random() < 0.5) for _ in range(2000)],
        "c": [float(rng.random() < 0.6) for _ in range(2000)],
    }
    decision = decide(spec, "a", values)
    assert decision.winner == "c"
    assert "corrected" not in decision.reason and "< 0.025" in decision.reason


def _policy_registry(make_registry: Any, **spec: Any) -> Any:
    experiment = ExperimentSpec(
        prompt="qa", variants={"control": {"label": "production"}, "candidate": {"version": 2}}, **spec
    )
    return make_registry(PromptsSettings(experiments={"qa-test": experiment}))


def test_report_per_variant_n_mean_ci_cost_latency(make_registry: Any) -> None:
    reg = _policy_registry(make_registry, min_samples=20)
    store = reg.store
    rng = random.Random(5)
    for i in range(120):
        variant = "control" if i % 2 else "candidate"
        call = f"call-{i}"
        store.add_assignment(
            call_id=call,
            experiment="qa-test",
            variant=variant,
            prompt_id="qa",
            version=1 if variant == "control" else 2,
            unit=None,
        )
        ok = i % 10 != 1  # 12 of the 60 control calls fail
        store.settle(
            call,
            ok=ok,
            cost_usd=(0.001 if variant == "control" else 0.002) if ok else None,
            latency_ms=100.0 + i,
            response_id=f"resp-{i}" if ok else None,
        )
        if i % 3:
            reg.record_outcome(
                call if i % 2 else f"resp-{i}", success=rng.random() < (0.5 if variant == "control" else 0.6)
            )
    report = reg.report("qa-test")
    control, candidate = report.variants
    assert (control.variant, control.versions, control.assigned) == ("control", (1,), 60)
    assert (candidate.variant, candidate.versions) == ("candidate", (2,))
    assert (control.errors, candidate.errors) == (12, 0)
    assert control.n == 40
    assert control.ci_low < control.mean < control.ci_high
    assert control.cost_usd_mean == pytest.approx(0.001) and candidate.cost_usd_mean == pytest.approx(0.002)
    assert control.cost_usd_total == pytest.approx(0.048)  # the 48 successful calls of 60
    assert control.latency_ms_mean is not None and control.latency_ms_p95 > control.latency_ms_mean
    assert report.decision.winner is None  # 40 per arm cannot separate 0.5 from 0.6


def test_record_outcome_errors(make_registry: Any) -> None:
    reg = _policy_registry(make_registry)
    with pytest.raises(LookupError, match="no experiment call 'nope'"):
        reg.record_outcome("nope", success=True)
    with pytest.raises(ValueError, match="exactly one of success= or score="):
        reg.record_outcome("x")
    with pytest.raises(LookupError, match="unknown experiment 'other'; known: qa-test"):
        reg.report("other")


def test_automatic_promotion_moves_the_label_to_a_significant_winner(make_registry: Any) -> None:
    reg = _policy_registry(make_registry, min_samples=30, promote_label="production")
    for i in range(60):
        variant = "control" if i < 30 else "candidate"
        reg.store.add_assignment(
            call_id=f"c{i}",
            experiment="qa-test",
            variant=variant,
            prompt_id="qa",
            version=1 if variant == "control" else 2,
            unit=None,
        )
    for i in range(59):
        reg.record_outcome(f"c{i}", success=i >= 30 or i % 5 == 0)
    assert reg.get("qa").spec.version == 1  # 29 candidate outcomes: below min_samples
    reg.record_outcome("c59", success=True)
    assert reg.get("qa").spec.version == 2  # significant: production moved to v2
    event = reg.label_history("qa")[-1]
    assert (event.to_version, event.by, event.note) == (2, "experiment", "winner of experiment 'qa-test'")
