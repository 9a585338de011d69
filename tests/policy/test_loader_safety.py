"""Hostile policy files: bombs, absurd nesting, bad encodings, and half-written files under hot reload."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from structlog.testing import capture_logs

from mm_litellm import runtime
from mm_litellm.errors import PolicyError
from mm_litellm.policy import loader
from mm_litellm.policy.loader import load_complete_policy, load_policy, parse_policy
from mm_litellm.watch import PolicyWatcher
from tests.conftest import TEST_POLICY


def billion_laughs(levels: int = 9) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels):
        prev, name = chr(96 + i), chr(97 + i)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def problems(exc: pytest.ExceptionInfo[PolicyError]) -> list[str]:
    return [str(issue) for issue in exc.value.issues]


def test_billion_laughs_is_refused_at_once_with_its_line() -> None:
    started = time.perf_counter()
    with pytest.raises(PolicyError) as info:
        parse_policy(billion_laughs(), source="bomb.yaml")
    assert time.perf_counter() - started < 1
    assert problems(info) == [
        "bomb.yaml:1: YAML anchors and aliases (&name, *name, <<:) are not allowed "
        "in a policy; write the values out"
    ]


def test_merge_keys_are_aliases_too() -> None:
    text = "version: 1\nbase: {x: 1}\nmodels:\n  a:\n    <<: *b\n"
    with pytest.raises(PolicyError) as info:
        parse_policy(text.replace("{x: 1}", "&b {x: 1}"), source="p.yaml")
    assert problems(info)[0].startswith("p.yaml:2: YAML anchors and aliases")


@pytest.mark.parametrize(
    "text",
    [
        "a: " + "[" * 5000 + "]" * 5000,
        "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 200)) + "  " * 200 + "v: 1\n",
    ],
)
def test_absurd_nesting_is_one_issue(text: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="deep.yaml")
    assert len(info.value.issues) == 1 and "nested deeper than 64 levels" in problems(info)[0]


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(b"version: 1\nmodels: {}\n# caf\xe9\n")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert problems(info) == [f"{path}:3: not valid UTF-8 (byte 27); save the file as UTF-8"]


def test_oversized_file_is_refused_unread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(loader, "MAX_POLICY_BYTES", 100)
    path = tmp_path / "p.yaml"
    path.write_text("version: 1\n" + "# padding\n" * 20)
    with pytest.raises(PolicyError, match="over 100 bytes"):
        load_policy(path)


def test_policy_check_prints_one_line_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mm_litellm.cli.main import main

    for name, data in {
        "deep.yaml": ("a: " + "[" * 5000 + "]" * 5000).encode(),
        "utf8.yaml": b"version: 1\n\xff\n",
        "bomb.yaml": billion_laughs().encode(),
    }.items():
        (tmp_path / name).write_bytes(data)
        assert main(["policy", "check", str(tmp_path / name)]) != 0
        err = capsys.readouterr()
        text = err.out + err.err
        assert "Traceback" not in text and f"{tmp_path / name}:" in text, text


# --- hot reload ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "the file is empty"),
        ("version: 1\nmodels:\n", "no models declared"),
        ("version: 1\n", "no 'models' section"),
        (TEST_POLICY.split("models:")[0] + "models:\n", "no models declared"),
    ],
)
def test_reload_refuses_empty_or_cut_files(tmp_path: Path, text: str, reason: str) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match=reason):
        load_complete_policy(path, settle=0)
    path.write_text(TEST_POLICY)
    assert load_complete_policy(path, settle=0).models


def test_reload_refuses_a_file_still_being_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(TEST_POLICY)

    def writer_appends(_: float) -> None:  # the settle pause, during which a writer adds to the file
        with path.open("a") as f:
            f.write("# more\n")

    monkeypatch.setattr(loader.time, "sleep", writer_appends)
    with pytest.raises(PolicyError, match="changed while it was read"):
        load_complete_policy(path)


def test_watcher_keeps_the_last_good_policy_on_an_emptied_file(policy_file: Any) -> None:
    import os

    path = policy_file()
    runtime.configure(path)
    good = runtime.current()
    watcher = PolicyWatcher(path)
    with capture_logs() as logs:
        path.write_text("")  # open(path, "w") before the new text is written
        os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 1_000_000_000))
        assert watcher.check() is False
    assert runtime.current() is good
    assert logs[0]["event"] == "policy.reload_refused" and "the file is empty" in logs[0]["problems"][0]
