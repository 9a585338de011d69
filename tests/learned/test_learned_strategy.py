"""``strategy: learned``: the route uses what the router learnt, rules first, in replay and live."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mm_litellm import load_policy, parse_policy
from mm_litellm.errors import PolicyError
from mm_litellm.evaluation import EvalConfig, Evaluation
from mm_litellm.routing.engine import RoutingEngine
from tests.learned.conftest import MAPPING, policy_text, prompt_for

RNG = __import__("random").Random(11)
BASE = prompt_for("plain", RNG)
ZEBRA = prompt_for("zebra", RNG)
LION = prompt_for("lion", RNG)


def chat(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def write(policy_dir: Path, knob: str = "lambda: 0.08", name: str = "policy.yaml") -> Path:
    path = policy_dir / name
    path.write_text(policy_text(knob), encoding="utf-8")
    return path


def test_route_sends_each_prompt_where_the_word_says(policy_dir: Path) -> None:
    engine = RoutingEngine(load_policy(write(policy_dir)))
    import random

    rng = random.Random(5)
    right = {"zebra": "strong", "lion": "mid", "plain": "weak"}
    hits = sum(
        engine.plan("smart", chat(prompt_for(kind, rng))).target == model
        for kind, model in right.items()
        for _ in range(40)
    )
    assert hits >= 0.9 * 120
    assert engine.plan("smart", chat(ZEBRA)).target == "strong"
    assert engine.plan("smart", chat(LION)).target == "mid"
    plan = engine.plan("smart", chat(BASE))
    assert plan.target == "weak" and plan.strategy == "learned"
    assert "learned (lambda 0.08)" in plan.reason and "predicted quality" in plan.reason
    assert plan.fallbacks and "weak" not in plan.fallbacks
    assert plan.candidates == ()  # built for explain only: the per-request path skips them
    explained = engine.plan("smart", chat(BASE), explain=True)
    assert {c.model for c in explained.candidates} == {"weak", "mid", "strong"}


def test_rules_still_go_first(policy_dir: Path) -> None:
    engine = RoutingEngine(load_policy(write(policy_dir)))
    image = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": BASE},
                {"type": "image_url", "image_url": {"url": "data:,"}},
            ],
        }
    ]
    plan = engine.plan("smart", image)
    assert plan.target == "strong" and plan.rule == "vision"


def test_quality_target_picks_the_cheapest_close_to_the_best(policy_dir: Path) -> None:
    engine = RoutingEngine(load_policy(write(policy_dir, "quality_target: 0.2")))
    assert engine.plan("smart", chat(ZEBRA)).target == "strong"
    assert engine.plan("smart", chat(LION)).target == "mid"
    relaxed = RoutingEngine(load_policy(write(policy_dir, "quality_target: 1.0", "loose.yaml")))
    assert relaxed.plan("smart", chat(ZEBRA)).target == "weak"


def test_a_large_lambda_is_always_cheapest_and_zero_is_best_quality(policy_dir: Path) -> None:
    cheap = RoutingEngine(load_policy(write(policy_dir, "lambda: 1000", "cheap.yaml")))
    assert cheap.plan("smart", chat(ZEBRA)).target == "weak"
    best = RoutingEngine(load_policy(write(policy_dir, "lambda: 0", "best.yaml")))
    assert best.plan("smart", chat(ZEBRA)).target == "strong"


def test_explain_shows_predictions_costs_and_margin(policy_dir: Path) -> None:
    from mm_litellm.routing.explain import explain_with

    engine = RoutingEngine(load_policy(write(policy_dir)), catalog=lambda: {})  # type: ignore[arg-type]
    explanation = explain_with(engine, "smart", chat(ZEBRA))
    text = explanation.render()
    assert "predicted q=" in text and "chosen" in text and "behind" in text and "utility margin" in text
    data = explanation.to_dict()
    chosen = [c for c in data["candidates"] if "chosen" in c["note"]]
    assert chosen[0]["model"] == "strong" and chosen[0]["predicted_quality"] > 0.5
    assert all(c["expected_cost"] > 0 for c in data["candidates"])


def test_replay_matches_the_oracle_with_no_provider_and_no_litellm(
    policy_dir: Path, trained: dict[str, Any]
) -> None:
    code = (
        "import sys\n"
        "from mm_litellm import load_policy\n"
        "from mm_litellm.evaluation import EvalConfig, Evaluation\n"
        f"p = load_policy({str(write(policy_dir))!r})\n"
        f"ev = Evaluation.from_file({str(trained['data'])!r}, p, EvalConfig(models={MAPPING!r}))\n"
        "r = ev.report(p)\n"
        "print(r['result']['quality'], r['result']['cost_per_1k'], r['baselines']['oracle']['quality'])\n"
        "assert 'litellm' not in sys.modules, 'LiteLLM imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stderr
    quality, cost, oracle = (float(v) for v in done.stdout.split())
    assert quality >= 0.95 * oracle and cost < 7.0  # always-strong costs $10 per 1k


def test_evaluating_train_rows_uses_out_of_fold_predictions(
    policy_dir: Path, trained: dict[str, Any]
) -> None:
    policy = load_policy(write(policy_dir))
    ev = Evaluation.from_file(trained["data"], policy, EvalConfig(models=MAPPING), split="train")
    report = ev.report(policy)
    assert any("out-of-fold" in n for n in report["notes"])
    test = Evaluation.from_file(trained["data"], policy, EvalConfig(models=MAPPING)).report(policy)
    assert not any("trained on" in n for n in test["notes"])


def test_trainer_and_evaluate_agree_on_the_same_lambda(policy_dir: Path, trained: dict[str, Any]) -> None:
    point = trained["report"]["test"]["curve"][len(trained["report"]["test"]["curve"]) // 2]
    policy = load_policy(write(policy_dir, f"lambda: {point['lambda']}", "same.yaml"))
    result = Evaluation.from_file(trained["data"], policy, EvalConfig(models=MAPPING)).run(policy).result
    assert result.quality == pytest.approx(point["quality"])
    assert result.cost_per_1k == pytest.approx(point["cost_per_1k"])


def test_calibrate_fits_lambda_with_auto_values(policy_dir: Path, trained: dict[str, Any]) -> None:
    from mm_litellm.cli.main import main

    out = policy_dir / "out" / "calibrated.yaml"
    out.parent.mkdir()
    code = main(
        [
            "policy",
            "calibrate",
            "--policy",
            str(write(policy_dir)),
            "--data",
            str(trained["data"]),
            *[f"--map={k}={v}" for k, v in MAPPING.items()],
            "--knob",
            "routes.smart.learned.lambda",
            "--values",
            "auto",
            "--target",
            "quality",
            "--min-quality",
            "0.95",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    calibrated = load_policy(out)  # its artifact path was rewritten relative to the new file
    assert calibrated.routes["smart"].learned.artifact == "../router"
    assert calibrated.routes["smart"].learned.cost_weight is not None


def test_sweep_with_auto_values_traces_the_curve(
    policy_dir: Path, trained: dict[str, Any], capsys: Any
) -> None:
    from mm_litellm.cli.main import main

    code = main(
        [
            "policy",
            "evaluate",
            "--policy",
            str(write(policy_dir)),
            "--data",
            str(trained["data"]),
            *[f"--map={k}={v}" for k, v in MAPPING.items()],
            "--sweep",
            "routes.smart.learned.lambda",
            "--values",
            "auto",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "AIQ" in text and "best mix of single models" in text


@pytest.mark.parametrize(
    ("knob", "extra", "message"),
    [
        ("lambda: 0.1, quality_target: 0.1", "", "exactly one of 'lambda'"),
        ("lambda: -1", "", "greater than or equal to 0"),
        ("lambda: 0.1, colour: red", "", "unknown key 'colour'; allowed: artifact, lambda"),
    ],
)
def test_settings_are_validated(policy_dir: Path, knob: str, extra: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        load_policy(write(policy_dir, knob))


def test_policy_problems_are_reported_with_their_line(policy_dir: Path, tmp_path: Path) -> None:
    text = policy_text().replace("artifact: router", "artifact: missing")
    with pytest.raises(
        PolicyError, match=r"p.yaml:\d+ routes.smart.learned.artifact: router artifact .*no such"
    ):
        parse_policy(text, source=str(policy_dir / "p.yaml"), base_dir=policy_dir)
    text = policy_text().replace("candidates: [weak, mid, strong]", "candidates: [weak, nope]")
    with pytest.raises(PolicyError, match="unknown model 'nope'"):
        parse_policy(text, base_dir=policy_dir)
    extra = (
        policy_text()
        .replace("models:\n", "models:\n  other: {litellm_params: {model: openai/other}}\n")
        .replace("candidates: [weak, mid, strong]", "candidates: [weak, other]")
    )
    with pytest.raises(PolicyError, match="'other' is not predicted by the router"):
        parse_policy(extra, base_dir=policy_dir)
    missing = policy_text().replace("    learned: {artifact: router, lambda: 0.08}\n", "")
    with pytest.raises(PolicyError, match="strategy 'learned' needs a 'learned:' section"):
        parse_policy(missing, base_dir=policy_dir)
    required = policy_text().replace("    rules:\n", "    require: {max_cost: 1}\n    rules:\n")
    with pytest.raises(PolicyError, match="'require' does not apply to a learned route"):
        parse_policy(required, base_dir=policy_dir)


def test_models_can_be_mapped_to_the_routers_names(policy_dir: Path) -> None:
    text = (
        policy_text()
        .replace("  weak:", "  cheap:")
        .replace("candidates: [weak, mid, strong]", "candidates: [cheap, mid, strong]")
        .replace(
            "learned: {artifact: router, lambda: 0.08}",
            "learned: {artifact: router, lambda: 0.08, models: {cheap: weak}}",
        )
    )
    engine = RoutingEngine(parse_policy(text, base_dir=policy_dir))
    assert engine.plan("smart", chat(BASE)).target == "cheap"


def test_a_broken_artifact_is_refused_and_hot_reload_keeps_the_last_good_policy(policy_dir: Path) -> None:
    from mm_litellm import runtime
    from mm_litellm.watch import PolicyWatcher

    path = write(policy_dir)
    runtime.configure(load_policy(path))
    watcher = PolicyWatcher(path)
    first = runtime.current().policy.routers["smart"].router
    manifest = policy_dir / "router" / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text.replace('"format": "mm-litellm-router"', '"format": "other"'))
    assert watcher.check() is False and watcher.refusals == 1
    assert runtime.current().policy.routers["smart"].router is first
    manifest.write_text(text.replace('"name": "router"', '"name": "retrained"'))
    assert watcher.check() is True
    assert runtime.current().policy.routers["smart"].router.name == "retrained"


def test_sdk_door_uses_the_learned_route(policy_dir: Path) -> None:
    import mm_litellm

    mm_litellm.configure(write(policy_dir))
    response = mm_litellm.completion(model="smart", messages=chat(ZEBRA), mock_response="ok")
    assert mm_litellm.decision_of(response)["model"] == "strong"


def test_the_example_policy_has_a_learned_route() -> None:
    from tests.conftest import EXAMPLE_POLICY

    policy = load_policy(EXAMPLE_POLICY)
    assert policy.routes["smart"].strategy == "learned"
    router = policy.routers["smart"].router
    assert set(router.models) == {"gpt-4o", "gpt-4o-mini"}
    size = sum(f.stat().st_size for f in router.path.iterdir())
    assert size < 2_000_000
    engine = RoutingEngine(policy)
    plan = engine.plan("smart", chat("What is 2 + 2?"))
    assert plan.target in {"gpt-4o", "gpt-4o-mini"} and plan.strategy == "learned"


def test_copying_a_policy_elsewhere_keeps_its_relative_artifact(policy_dir: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(policy_dir, moved)
    policy = load_policy(write(moved))
    assert policy.routers["smart"].router.path == (moved / "router").resolve()


def test_router_door_uses_the_learned_route(policy_dir: Path) -> None:
    import asyncio

    from mm_litellm.integrations.router_hook import routed_router

    text = policy_text().replace(
        "model: openai/strong-model}", "model: openai/strong-model, api_key: k, mock_response: from-strong}"
    )
    text = text.replace("openai/weak-model}", "openai/weak-model, api_key: k, mock_response: w}")
    text = text.replace("model: openai/mid-model}", "model: openai/mid-model, api_key: k, mock_response: m}")
    router = routed_router(parse_policy(text, base_dir=policy_dir))

    async def run() -> str:
        response = await router.acompletion(model="smart", messages=chat(ZEBRA))
        return str(response.choices[0].message.content)

    assert asyncio.run(run()) == "from-strong"
