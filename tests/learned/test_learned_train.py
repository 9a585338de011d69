"""The trainer learns the word that decides which model is right, and reports it held out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mm_litellm.evaluation.dataset import load_dataset
from mm_litellm.evaluation.table import select_split
from tests.learned.conftest import COSTS, FILLER, MAPPING, make_rows, write_jsonl


def test_predictions_follow_the_deciding_word(trained: dict[str, Any]) -> None:
    router = trained["router"]
    assert router.models == ("weak", "mid", "strong")
    base = " ".join(FILLER[:12])
    zebra = router.predict(base.replace("answer", "zebra"))
    lion = router.predict(base.replace("answer", "lion"))
    plain = router.predict(base)
    w, m, s = (router.column(x) for x in ("weak", "mid", "strong"))
    assert zebra[w] < 0.3 and zebra[m] < 0.3 and zebra[s] > 0.7
    assert lion[w] < 0.3 and lion[m] > 0.7
    assert plain[w] > max(zebra[w], lion[w]) + 0.2 and plain[m] > zebra[m] + 0.2
    assert np.all((zebra >= 0) & (zebra <= 1))


def test_heldout_report_reaches_the_oracle(trained: dict[str, Any]) -> None:
    report = trained["report"]
    test = report["test"]
    assert report["train_rows"] + report["test_rows"] == 1200
    assert test["rows"] == report["test_rows"]
    # the learned curve is (near) the oracle's, far above random and the single-model mix
    assert test["aiq"] > test["aiq_single_models"] + 0.15
    assert test["aiq"] > test["aiq_oracle"] - 0.02
    # the oracle costs exactly half of always-strong here; the router gets 95 % a little above
    assert test["cheapest_95pct_quality"]["cost_vs_strongest"] < 0.6
    assert set(test["fitted_on_train"]) == {"cost <= 50%", "cost <= 45%", "quality >= 95%"}


def test_split_is_the_evaluation_split(trained: dict[str, Any]) -> None:
    rows = load_dataset(trained["data"])
    train_ids = {r.id for r in select_split(rows, "train", seed=0, test_fraction=0.3)}
    from mm_litellm.learned.artifact import id_hash

    assert np.array_equal(trained["router"].trained_ids, id_hash(sorted(train_ids)))
    manifest = trained["router"].manifest
    assert manifest["data"]["split"] == {"seed": 0, "test_fraction": 0.3, "resplit": False}
    assert manifest["data"]["train_rows"] == len(train_ids)
    assert len(manifest["data"]["files"][0]["sha256"]) == 64


def test_cost_model_fits_the_recorded_costs(trained: dict[str, Any]) -> None:
    router = trained["router"]
    for name, data_model in (("weak", "weak-model"), ("strong", "strong-model")):
        assert router.cost_models[name].cost(20) == pytest.approx(COSTS[data_model], rel=1e-6)
        assert router.cost_models[name].completion_tokens == 10


def test_out_of_fold_predictions_are_stored_for_every_train_row(trained: dict[str, Any]) -> None:
    router = trained["router"]
    assert router.out_of_fold is not None
    assert router.out_of_fold.shape == (len(router.trained_ids), 3)


def test_knn_learner_is_an_option(trained: dict[str, Any], tmp_path: Any) -> None:
    from mm_litellm.learned.train import TrainOptions, train_router
    from tests.learned.conftest import MAPPING

    result = train_router(
        str(trained["data"]), tmp_path / "knn", TrainOptions(mapping=MAPPING, learner="knn")
    )
    assert result.router.learner == "knn"
    assert result.report["test"]["aiq"] > result.report["test"]["aiq_single_models"] + 0.1
    z = result.router.predict(" ".join(FILLER[:12]).replace("answer", "zebra"))
    assert z[result.router.column("strong")] > z[result.router.column("weak")]


def test_bad_options_are_refused(trained: dict[str, Any], tmp_path: Any) -> None:
    from mm_litellm.evaluation.errors import EvaluationError
    from mm_litellm.learned.train import TrainOptions, train_router

    with pytest.raises(EvaluationError, match="unknown learner"):
        train_router(str(trained["data"]), tmp_path / "x", TrainOptions(learner="forest"))
    with pytest.raises(EvaluationError, match="does not have"):
        train_router(str(trained["data"]), tmp_path / "x", TrainOptions(mapping={"a": "nope"}))


def test_two_trainings_are_identical(tmp_path: Path) -> None:
    """liblinear's solver is seeded: the same data and options give the same weights, bit for bit."""
    from mm_litellm.learned.train import TrainOptions, train_router

    data = write_jsonl(tmp_path / "data.jsonl", make_rows(n=600, seed=3))
    arrays = []
    for name in ("a", "b"):
        router = train_router(str(data), tmp_path / name, TrainOptions(mapping=MAPPING, C=1.0)).router
        with np.load(router.path / "weights.npz") as npz:
            arrays.append({k: npz[k] for k in npz.files})
    assert arrays[0].keys() == arrays[1].keys()
    for k in arrays[0]:
        assert np.array_equal(arrays[0][k], arrays[1][k]), k
