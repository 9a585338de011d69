"""Predictions are shrunk toward each model's mean by how much they are worth out of fold: a model
whose quality is noise with respect to the prompt gets a factor near 0 (its mean for every
prompt), one the words really decide keeps a factor near 1."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mm_litellm.learned.calibration import fit_shrinkage, shrink
from tests.learned.conftest import FILLER, MAPPING, make_rows, write_jsonl


def test_factor_is_zero_for_noise_and_one_for_signal() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    truth = rng.uniform(0.1, 0.9, n)
    scores = np.stack([rng.binomial(1, truth), rng.binomial(1, 0.4, n)], axis=1).astype(float)
    oof = np.stack([truth, rng.uniform(0.1, 0.9, n)], axis=1)  # model 1: predictions unrelated to it
    mean, factor = fit_shrinkage(oof, scores)
    assert np.allclose(mean, scores.mean(axis=0))
    assert factor[0] == pytest.approx(1.0, abs=0.1)
    assert factor[1] < 0.05
    corrected = shrink(oof, mean, factor)
    assert np.ptp(corrected[:, 1]) < 0.05 and corrected[:, 0].std() > 0.2


def test_overconfident_predictions_are_shrunk_and_factors_stay_in_range() -> None:
    rng = np.random.default_rng(1)
    truth = rng.uniform(0.3, 0.7, 4000)
    scores = rng.binomial(1, truth).astype(float)[:, None]
    overconfident = np.clip(0.5 + 3 * (truth - 0.5), 0, 1)[:, None]  # right direction, 3x too far
    _, factor = fit_shrinkage(overconfident, scores)
    assert factor[0] == pytest.approx(1 / 3, abs=0.08)
    _, anti = fit_shrinkage(1 - overconfident, scores)  # wrong direction: clipped to 0, not negative
    assert anti[0] == 0.0


def test_constant_predictions_and_empty_data() -> None:
    mean, factor = fit_shrinkage(np.full((10, 1), 0.3), np.full((10, 1), 1.0))
    assert mean[0] == 1.0 and factor[0] == 0.0
    mean, factor = fit_shrinkage(np.empty((0, 2)), np.empty((0, 2)))
    assert mean.shape == factor.shape == (2,)


@pytest.fixture(scope="module")
def with_coin(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The synthetic words data plus a 'coin' model whose score is a fair coin, whatever the prompt."""
    from mm_litellm.learned.train import TrainOptions, train_router

    rng = random.Random(11)
    rows = make_rows()
    for row in rows:
        row["outcomes"]["coin-model"] = {"score": float(rng.random() < 0.5), "cost_usd": 0.002}
    root: Path = tmp_path_factory.mktemp("coin")
    data = write_jsonl(root / "data.jsonl", rows)
    mapping = {**MAPPING, "coin": "coin-model"}
    return train_router(str(data), root / "router", TrainOptions(mapping=mapping)).router


def test_trained_router_ignores_a_noise_model_and_keeps_real_signal(with_coin: Any) -> None:
    router = with_coin
    assert router.calibration is not None
    mean, factor = router.calibration
    by_model = dict(zip(router.models, factor, strict=True))
    assert by_model["coin"] < 0.15, by_model
    assert by_model["weak"] > 0.8 and by_model["mid"] > 0.8, by_model
    assert mean[router.column("coin")] == pytest.approx(0.5, abs=0.06)
    base = " ".join(FILLER[:12])
    texts = [base, base.replace("answer", "zebra"), base.replace("answer", "lion"), " ".join(FILLER[5:17])]
    Q = router.predict_many(texts)
    assert np.ptp(Q[:, router.column("coin")]) < 0.05  # about its mean for every prompt
    assert np.ptp(Q[:, router.column("weak")]) > 0.5  # the words still decide the others
    manifest = router.manifest["learner"]["calibration"]
    assert set(manifest["factor"]) == set(router.models) and "out-of-fold" in manifest["by"]


def test_stored_out_of_fold_predictions_are_corrected_like_the_router(with_coin: Any) -> None:
    oof = with_coin.out_of_fold
    assert oof is not None
    coin = with_coin.column("coin")
    mean, factor = with_coin.calibration
    assert np.all(np.abs(oof[:, coin] - mean[coin]) <= factor[coin] + 1e-6)
