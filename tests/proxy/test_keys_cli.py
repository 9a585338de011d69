"""`mm-litellm keys add`, `policy check` on the keys file, and the master-key preflight."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mm_litellm.cli.main import main
from mm_litellm.proxy.keys import KeyStore, load_keys_file
from mm_litellm.proxy.preflight import master_key_problem
from mm_litellm.proxy.requirements import missing_proxy_requirements
from tests.conftest import ROOT


@pytest.fixture
def config_copy(tmp_path: Path) -> Path:
    """A copy of config/ (policy + keys file) to change."""
    target = tmp_path / "config"
    shutil.copytree(ROOT / "config", target)
    return target


def test_keys_add_appends_a_loadable_entry_and_prints_only_the_key(
    config_copy: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(config_copy.parent.parent)  # the policy's keys_file is relative to the policy
    policy = str(config_copy / "policy.yaml")
    assert (
        main(["keys", "add", "--id", "bob", "--user", "bob", "--team", "research", "--policy", policy]) == 0
    )
    out = capsys.readouterr()
    secret = out.out.strip()
    keys = load_keys_file(config_copy / "keys.yaml")
    assert set(keys) == {"alice-laptop", "ci-batch", "bob"}
    found = KeyStore(keys).lookup(secret)
    assert found is not None and found.key_id == "bob" and found.spec.team == "research"
    assert secret not in (config_copy / "keys.yaml").read_text()
    assert main(["policy", "check", policy]) == 0
    with pytest.raises(SystemExit):
        main(["keys", "add", "--id", "bob", "--policy", policy])
    assert "key id 'bob' exists already" in capsys.readouterr().err


def test_keys_add_creates_a_missing_file_and_refuses_to_break_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fresh = tmp_path / "keys.yaml"
    assert main(["keys", "add", "--id", "a", "--keys-file", str(fresh)]) == 0
    assert set(load_keys_file(fresh)) == {"a"}
    odd = tmp_path / "odd.yaml"
    text = "keys: {x: {hash: sha256$" + "0" * 64 + "}}\n"  # flow style: an entry cannot be appended
    odd.write_text(text)
    with pytest.raises(SystemExit):
        main(["keys", "add", "--id", "b", "--keys-file", str(odd)])
    assert odd.read_text() == text  # restored
    assert "'keys:' is not the last section" in capsys.readouterr().err


def test_keys_new_output_appends_under_keys(config_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "new", "--id", "carol", "--user", "carol"]) == 0
    with (config_copy / "keys.yaml").open("a") as handle:
        handle.write(capsys.readouterr().out)
    assert "carol" in load_keys_file(config_copy / "keys.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("keys:\n  a: {hash: my-secret-key}\n", "keys.a.hash: must be a hash, never the key itself"),
        ("keys:\n  a: {hash: sha256$" + "1" * 64 + ", owner: x}\n", "keys.a.owner"),
        (
            "keys:\n  a: {hash: sha256$" + "1" * 64 + "}\n  a: {hash: sha256$" + "2" * 64 + "}\n",
            "duplicate key",
        ),
        (
            "keys:\n  a: {hash: sha256$" + "1" * 64 + "}\n  b: {hash: sha256$" + "1" * 64 + "}\n",
            "keys.b: same secret hash as key 'a'",
        ),
    ],
)
def test_policy_check_reports_keys_file_problems(
    config_copy: Path, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    (config_copy / "keys.yaml").write_text(text)
    assert main(["policy", "check", str(config_copy / "policy.yaml")]) == 1
    out = capsys.readouterr().out
    assert expected in out and "problem(s) in the keys file" in out


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "LITELLM_MASTER_KEY is not set"),
        ("  ", "LITELLM_MASTER_KEY is empty"),
        ("sk-1234", "LITELLM_MASTER_KEY is LiteLLM's publicly known example key"),
        ("sk-short", "LITELLM_MASTER_KEY is too short (8 characters; at least 16)"),
        ("sk-" + "x" * 40, None),
    ],
)
def test_master_key_problem(value: str | None, problem: str | None) -> None:
    assert master_key_problem(value) == problem


def test_mm_litellm_proxy_says_in_one_line_what_the_master_key_needs(tmp_path: Path) -> None:
    env = dict(os.environ, LITELLM_MASTER_KEY="sk-1234")
    config = str(ROOT / "config" / "proxy.yaml")
    cmd = [sys.executable, "-m", "mm_litellm.cli.main", "proxy", "--config", config]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "mm-litellm: the proxy cannot start: LITELLM_MASTER_KEY is LiteLLM's publicly known example key; "
        "set it to a long random secret, e.g. export LITELLM_MASTER_KEY=\"sk-$(python3 -c 'import secrets; "
        "print(secrets.token_urlsafe(32))')\""
    ]


@pytest.mark.skipif(
    not missing_proxy_requirements(),
    reason="the proxy extra is installed here (the base install in CI runs this test)",
)
def test_without_the_proxy_extra_mm_litellm_proxy_says_what_to_install(tmp_path: Path) -> None:
    env = dict(os.environ, LITELLM_MASTER_KEY="sk-" + "x" * 40)
    config = str(ROOT / "config" / "proxy.yaml")
    cmd = [sys.executable, "-m", "mm_litellm.cli.main", "proxy", "--config", config]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, check=False)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].endswith("pip install 'mm-litellm[proxy]'"), lines
