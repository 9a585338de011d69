"""The generated LiteLLM proxy config and the ``mm-litellm proxy`` / ``keys`` commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mm_litellm.cli.main import main
from mm_litellm.policy import load_policy
from mm_litellm.policy.proxy import KeySpec
from mm_litellm.proxy.config import build_proxy_config, listed_names, read_base_config
from mm_litellm.proxy.keys import KeyStore, verify

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_POLICY = ROOT / "config" / "policy.yaml"
BASE = ROOT / "config" / "proxy.yaml"


def test_generated_config_carries_the_policy() -> None:
    base = read_base_config(BASE)
    base["model_list"] = [{"model_name": "extra", "litellm_params": {"model": "openai/extra"}}]
    base["router_settings"] = {"num_retries": 5}
    config = build_proxy_config(base, load_policy(EXAMPLE_POLICY), EXAMPLE_POLICY)
    assert "mm_litellm" not in config
    assert config["litellm_settings"]["callbacks"] == [
        "mm_litellm.proxy.preflight.master_key_check",
        "mm_litellm.proxy.hooks.proxy_handler",
    ]
    assert config["general_settings"]["custom_auth"] == "mm_litellm.proxy.auth.user_api_key_auth"
    names = [entry["model_name"] for entry in config["model_list"]]
    assert names[0] == "gpt-4o-mini" and names[-1] == "extra"
    assert len(names) == 11 + 6 + 1  # the policy's models, its ensembles as groups, the base file's entry
    assert "ensemble/panel" in names
    assert config["litellm_settings"]["custom_provider_map"] == [
        {"provider": "ensemble", "custom_handler": "mm_litellm.integrations.ensemble_provider.handler"}
    ]
    settings = config["router_settings"]
    assert settings["num_retries"] == 5  # the base file wins over the policy's router section
    assert settings["fallbacks"] == [{"gpt-4o": ["claude-sonnet"]}, {"claude-sonnet": ["gpt-4o"]}]
    assert settings["model_group_alias"]["auto"] == "gpt-4o-mini"
    assert settings["model_group_alias"]["gpt-4"] == "gpt-4o"
    assert config["environment_variables"]["MM_LITELLM_POLICY"] == str(EXAMPLE_POLICY.resolve())


def test_listed_names_for_a_route_without_default(policy_file) -> None:  # type: ignore[no-untyped-def]
    policy = load_policy(
        policy_file(
            "models: {m: {litellm_params: {model: openai/x}}}\n"
            "routes: {r: {rules: [{name: a, when: {priority: high}, use: m}]}}\n"
        )
    )
    assert listed_names(policy) == {"r": "m"}


def test_print_config_uses_the_config_policy_entry(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proxy", "--config", str(BASE), "--print-config"]) == 0
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["environment_variables"]["MM_LITELLM_POLICY"] == str(
        (ROOT / "config" / "policy.yaml").resolve()
    )
    assert len(config["model_list"]) == 11 + 6


def test_proxy_refuses_to_start_without_a_master_key(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "mm_litellm.cli.main", "proxy", "--config", str(BASE)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert result.returncode == 1 and "LITELLM_MASTER_KEY" in result.stderr


def test_proxy_reports_a_bad_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("routes: {auto: {default: nowhere}}\n")
    with pytest.raises(SystemExit) as info:
        main(["proxy", "--config", str(BASE), "--policy", str(bad), "--print-config"])
    assert info.value.code == 1
    assert "invalid policy" in capsys.readouterr().err


def test_keys_new_and_hash(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["keys", "new", "--id", "alice", "--user", "alice", "--tag", "web"]) == 0
    captured = capsys.readouterr()
    secret = captured.err.split("#   ", 1)[1].split()[0]
    entry = yaml.safe_load("keys:\n" + captured.out)["keys"]["alice"]  # appendable under keys:
    assert entry["user"] == "alice" and entry["tags"] == ["web"] and secret not in captured.out
    assert KeyStore({"alice": KeySpec(**entry)}).lookup(secret) is not None
    assert secret.startswith("sk-mm.alice.")  # names its key: an unknown id costs no hashing

    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO(secret + "\n"))
    assert main(["keys", "hash", "--scheme", "scrypt"]) == 0
    assert verify(secret, capsys.readouterr().out.strip())
