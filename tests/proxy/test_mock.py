"""`mm-litellm proxy --mock`: the policy rewritten onto a local fake upstream (proxy/mock.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mm_litellm import load_policy, parse_policy
from mm_litellm.cli.main import main
from mm_litellm.integrations.bundled_prices import facts_for_commands
from mm_litellm.proxy.mock import MOCK_API_KEY, mock_policy_text
from tests.conftest import EXAMPLE_POLICY

BASE = "http://127.0.0.1:9/v1"


def test_every_deployment_points_at_the_upstream_and_keeps_its_price(tmp_path: Path) -> None:
    original = load_policy(EXAMPLE_POLICY)
    mocked_path = tmp_path / "mock.yaml"
    mocked_path.write_text(mock_policy_text(original, EXAMPLE_POLICY, BASE))
    mocked = load_policy(mocked_path)
    assert set(mocked.models) == set(original.models)
    assert mocked.routes.keys() == original.routes.keys()
    assert mocked.ensembles.keys() == original.ensembles.keys()
    facts = facts_for_commands()  # what mock_policy_text priced them with
    for name, spec in mocked.models.items():
        for deployment in spec.all_deployments:
            params = dict(deployment.litellm_params)
            assert params == {"model": f"openai/{name}", "api_base": BASE, "api_key": MOCK_API_KEY}
        before, after = facts.price(original.models[name]), facts.price(spec)
        assert (after.input_per_mtok, after.output_per_mtok, after.context_window) == (
            before.input_per_mtok,
            before.output_per_mtok,
            before.context_window,
        ), name
    assert Path(mocked.proxy.keys_file or "").is_absolute()
    assert Path(mocked.prompts.dir).is_absolute() and (Path(mocked.prompts.dir) / "extraction.yaml").exists()


def test_deployment_lists_are_rewritten_too(tmp_path: Path) -> None:
    text = """
models:
  pool:
    deployments:
      - {litellm_params: {model: openai/gpt-4o-mini, api_key: os.environ/A}, rpm: 5}
      - {litellm_params: {model: azure/gpt-4o-mini, api_key: os.environ/B}}
    tier: basic
routes: {auto: {default: pool}}
"""
    path = tmp_path / "p.yaml"
    path.write_text(text)
    mocked = parse_policy(mock_policy_text(load_policy(path), path, BASE))
    deployments = mocked.models["pool"].all_deployments
    assert [d.litellm_params["model"] for d in deployments] == ["openai/pool", "openai/pool"]
    assert deployments[0].rpm == 5


def test_mock_cannot_be_combined_with_printing_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["proxy", "--mock", "--print-config"])
    assert "--mock starts the proxy" in capsys.readouterr().err
