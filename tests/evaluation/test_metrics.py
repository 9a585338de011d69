"""APGR, CPT and AIQ on curves whose values are known by construction."""

from __future__ import annotations

import pytest

from mm_litellm.evaluation.metrics import CurvePoint, aiq, apgr, cpt, nondecreasing_hull, pgr


def share(p: CurvePoint) -> float:
    return p.strong_share


def line(qualities: list[float]) -> list[CurvePoint]:
    n = len(qualities) - 1
    return [CurvePoint(i, q, i / n, i / n) for i, q in enumerate(qualities)]


def test_pgr() -> None:
    assert pgr(0.7, 0.6, 0.8) == pytest.approx(0.5)
    assert pgr(0.6, 0.6, 0.6) is None


def test_apgr_of_random_router_is_one_half() -> None:
    value, lo, hi = apgr(line([0.6, 0.65, 0.7, 0.75, 0.8]), 0.6, 0.8, share)
    assert value == pytest.approx(0.5)
    assert (lo, hi) == (0.0, 1.0)


def test_apgr_of_oracle_like_router_is_one_and_of_weak_model_zero() -> None:
    assert apgr(line([0.8, 0.8, 0.8]), 0.6, 0.8, share)[0] == pytest.approx(1.0)
    assert apgr(line([0.6, 0.6, 0.6]), 0.6, 0.8, share)[0] == pytest.approx(0.0)


def test_apgr_single_point_is_its_pgr() -> None:
    assert apgr([CurvePoint(1, 0.7, 0.3, 0.3)], 0.6, 0.8, share)[0] == pytest.approx(0.5)


def test_cpt_interpolates_and_reports_unreached() -> None:
    points = line([0.6, 0.65, 0.7, 0.75, 0.8])
    assert cpt(points, 0.6, 0.8, 0.5, share) == pytest.approx(0.5)
    assert cpt(points, 0.6, 0.8, 0.8, share) == pytest.approx(0.8)
    assert cpt(line([0.6, 0.62]), 0.6, 0.8, 0.5, share) is None
    assert cpt(line([0.8, 0.8]), 0.6, 0.8, 0.5, share) == 0.0


def test_hull_drops_points_under_the_chord_and_is_cut_at_the_top() -> None:
    hull = nondecreasing_hull([(0, 0.6), (1, 0.61), (2, 0.9), (3, 0.8), (4, 0.85)])
    assert hull == [(0, 0.6), (2, 0.9)]


def test_aiq_of_random_router_is_mean_of_the_two_models() -> None:
    assert aiq([(1.0, 0.6), (10.0, 0.8)], 1.0, 10.0) == pytest.approx(0.7)


def test_aiq_is_flat_after_the_best_point_and_zero_before_the_first() -> None:
    # a single configuration at the cheapest cost with the strong quality: flat at 0.8 all along
    assert aiq([(1.0, 0.8)], 1.0, 10.0) == pytest.approx(0.8)
    # a single configuration half way: nothing before it, 0.8 after it
    assert aiq([(5.5, 0.8)], 1.0, 10.0) == pytest.approx(0.4)
    # a point below the chord does not change the hull
    assert aiq([(1.0, 0.6), (5.5, 0.65), (10.0, 0.8)], 1.0, 10.0) == pytest.approx(0.7)
