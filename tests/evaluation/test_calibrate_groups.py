"""``policy calibrate --by``: every group fitted and shown, several facts, groups too small to fit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from mm_litellm.cli.main import main
from mm_litellm.evaluation import EvalConfig, Evaluation, EvaluationError, load_dataset
from mm_litellm.evaluation.calibrate import Target
from mm_litellm.evaluation.groups import calibrate_groups
from mm_litellm.evaluation.knobs import policy_from_document, read_document
from mm_litellm.policy import load_policy
from tests.evaluation.conftest import write_jsonl


def _rows(combos: dict[tuple[str, str], int], hard: set[tuple[str, str]]) -> list[dict[str, Any]]:
    """Rows per (category, size): the weak model is right except on the ``hard`` combinations."""
    rows = []
    for (category, size), n in combos.items():
        for i in range(n):
            wrong = (category, size) in hard
            rows.append(
                {
                    "id": f"{category}-{size}-{i}",
                    "split": "train" if i % 2 == 0 else "test",
                    "prompt": f"question {i} about {category}",
                    "labels": {"category": category, "size": size},
                    "outcomes": {
                        "weak-model": {"score": 0.0 if wrong else 1.0, "cost_usd": 0.001},
                        "strong-model": {"score": 1.0, "cost_usd": 0.010},
                    },
                }
            )
    return rows


def test_two_facts_fit_their_cross_product_as_rules_matching_both(synthetic: dict[str, Path]) -> None:
    combos = {("A", "s"): 20, ("A", "l"): 20, ("B", "s"): 20, ("B", "l"): 20, ("C", "l"): 6}
    data = write_jsonl(synthetic["dir"] / "two.jsonl", _rows(combos, hard={("B", "l")}))
    weak = load_policy(synthetic["weak"])
    config = EvalConfig(metadata_labels=("category", "size"))
    rows = load_dataset(data)
    train, test = (Evaluation(rows, weak, config, split=s) for s in ("train", "test"))
    facts = ["metadata.category", "metadata.size"]
    doc, fit = calibrate_groups(train, read_document(synthetic["weak"]), weak, facts, Target("cost", 0.5))
    # (B, l) alone needs the strong model: neither fact alone isolates it
    assert fit["assignment"] == {
        "metadata.category=A, metadata.size=l": "weak",
        "metadata.category=A, metadata.size=s": "weak",
        "metadata.category=B, metadata.size=l": "strong",
        "metadata.category=B, metadata.size=s": "weak",
    }
    assert fit["groups"] == 4 and fit["groups_left_to_default"] == 1  # (C, l): 3 train rows < 10
    small = [g for g in fit["groups_detail"] if not g["fitted"]]
    assert small == [
        {
            "group": "metadata.category=C, metadata.size=l",
            "values": ["C", "l"],
            "rows": 3,
            "model": "weak",  # as the route decides it: its default
            "fitted": False,
            "how": "route",
            "train_quality": 1.0,
            "train_cost_per_1k": pytest.approx(1.0),
        }
    ]
    rules = doc["routes"]["auto"]["rules"]  # the route has no rules: its default serves the other groups
    assert [(r["name"], r["when"], r["use"]) for r in rules] == [
        ("calibrated-strong-B", {"metadata.category": "B", "metadata.size": "l"}, "strong"),
    ]
    assert rules[0]["description"] == (
        "fitted by mm-litellm policy calibrate: 1 value(s) of metadata.size where metadata.category=B"
    )
    calibrated = policy_from_document(doc, "calibrated.yaml")
    result = test.run(calibrated).result
    assert result.share == pytest.approx({"weak": 33 / 43, "strong": 10 / 43})  # (B, l) rows only
    assert result.quality == 1.0


def test_cli_prints_every_group_on_its_own_line(
    synthetic: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # 45 categories: more than the 40 the report used to show; every one of them is fitted
    combos = {(f"c{k:02d}", "s"): 24 for k in range(45)} | {("tiny", "s"): 4}
    data = write_jsonl(synthetic["dir"] / "many.jsonl", _rows(combos, hard={("c07", "s"), ("c33", "s")}))
    out = synthetic["dir"] / "calibrated.yaml"
    args = ["policy", "calibrate", "--policy", str(synthetic["weak"]), "--data", str(data)]
    args += ["--by", "metadata.category", "--meta-label", "category", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert (
        "45 groups fitted, 1 left as the route decides them (under 10 train rows or a fact missing)" in text
    )
    lines = [line.split() for line in text.splitlines()]
    shown = {cells[0]: cells[1:] for cells in lines if cells and re.fullmatch(r"c\d\d", cells[0])}
    assert len(shown) == 45
    assert shown["c07"] == ["12", "strong", "1.0000", "10.0000"]
    assert shown["c08"] == ["12", "weak", "1.0000", "1.0000"]
    assert ["tiny", "2", "(weak:", "route)", "1.0000", "1.0000"] in lines
    rules = load_policy(out).routes["auto"].rules
    assert [(r.name, r.use) for r in rules] == [("calibrated-strong", "strong")]


def test_cli_takes_several_by_flags(synthetic: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    combos = {("A", "s"): 20, ("A", "l"): 20, ("B", "s"): 20, ("B", "l"): 20}
    data = write_jsonl(synthetic["dir"] / "two.jsonl", _rows(combos, hard={("B", "l")}))
    out = synthetic["dir"] / "calibrated.yaml"
    args = ["policy", "calibrate", "--policy", str(synthetic["weak"]), "--data", str(data)]
    args += ["--by", "metadata.category", "--by", "metadata.size", "--meta-label", "category"]
    args += ["--meta-label", "size", "--out", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "a model per value of metadata.category x metadata.size: 4 groups fitted" in text
    assert "metadata.category=B, metadata.size=l" in text
    assert re.search(r"metadata.category=B, metadata.size=l +10  strong ", text)
    assert re.search(r"metadata.category=A, metadata.size=l +10  weak ", text)


def test_an_unknown_fact_is_refused_naming_the_allowed_ones(synthetic: dict[str, Path]) -> None:
    weak = load_policy(synthetic["weak"])
    train = Evaluation(load_dataset(synthetic["data"]), weak, EvalConfig(), split="train")
    with pytest.raises(EvaluationError, match=r"--by 'lenght' is not a request fact; allowed: model, task"):
        calibrate_groups(
            train, read_document(synthetic["weak"]), weak, ["task", "lenght"], Target("cost", 0.5)
        )
    with pytest.raises(EvaluationError, match="names a fact twice"):
        calibrate_groups(train, read_document(synthetic["weak"]), weak, ["task", "task"], Target("cost", 0.5))
