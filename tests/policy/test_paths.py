"""Paths in a policy resolve relative to the policy file, from any working directory."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from mm_litellm import load_policy, parse_policy, storage
from mm_litellm.cli.main import main
from mm_litellm.policy.paths import resolve_database_url, resolve_path
from mm_litellm.proxy.keys_file import keys_file_of
from tests.conftest import ROOT, TEST_POLICY


@pytest.fixture
def elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """config/ copied under tmp_path/site, and the working directory somewhere unrelated."""
    shutil.copytree(ROOT / "config", tmp_path / "site" / "config")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    monkeypatch.delenv(storage.DATABASE_ENV, raising=False)
    return tmp_path / "site" / "config"


def test_prompts_keys_and_sqlite_resolve_next_to_the_policy(
    elsewhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    policy = load_policy(elsewhere / "policy.yaml")
    assert keys_file_of(policy) == elsewhere / "keys.yaml"
    assert storage.database_url(policy) == f"sqlite:///{elsewhere / 'mm_litellm.db'}"
    assert main(["prompts", "list", "--policy", str(elsewhere / "policy.yaml")]) == 0
    out = capsys.readouterr().out
    assert "extraction" in out and "reasoning" in out
    assert not list(Path.cwd().iterdir())  # nothing written to the unrelated working directory


def test_the_old_working_directory_meaning_still_works_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "config" / "prompts").mkdir(parents=True)
    policy_path = tmp_path / "policies" / "p.yaml"
    policy_path.write_text(TEST_POLICY)
    monkeypatch.chdir(tmp_path)
    policy = load_policy(policy_path)
    with caplog.at_level(logging.WARNING):
        assert resolve_path(policy, "config/prompts", field="prompts.dir") == tmp_path / "config" / "prompts"
    assert "relative to the policy file" in caplog.text


def test_text_policies_memory_and_absolute_urls_are_unchanged(tmp_path: Path) -> None:
    policy = parse_policy(TEST_POLICY)
    assert resolve_database_url(policy, "sqlite:///x.db") == "sqlite:///x.db"
    on_disk = tmp_path / "p.yaml"
    on_disk.write_text(TEST_POLICY)
    loaded = load_policy(on_disk)
    assert resolve_database_url(loaded, "sqlite:///:memory:") == "sqlite:///:memory:"
    assert resolve_database_url(loaded, "sqlite:////abs/x.db") == "sqlite:////abs/x.db"
    assert resolve_database_url(loaded, "postgresql+psycopg://h/db") == "postgresql+psycopg://h/db"
    with_query = resolve_database_url(loaded, "sqlite:///x.db?timeout=5")
    assert with_query == f"sqlite:///{tmp_path / 'x.db'}?timeout=5"


def test_empty_listings_say_so(elsewhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy = str(elsewhere / "policy.yaml")
    assert main(["prompts", "history", "extraction", "--policy", policy]) == 0
    assert "extraction: no label moves recorded yet" in capsys.readouterr().out
    shutil.rmtree(elsewhere / "prompts")
    (elsewhere / "prompts").mkdir()
    text = (elsewhere / "policy.yaml").read_text()
    cut = text.index("  experiments:")
    end = text.index("\n# Where the usage ledger")
    (elsewhere / "policy.yaml").write_text(text[:cut] + text[end:])
    assert main(["prompts", "list", "--policy", policy]) == 0
    assert "no prompts: none in" in capsys.readouterr().out
