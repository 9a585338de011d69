"""Batches split into shards (--shard K/N, --workers N) and merged back in input order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mm_litellm.batch.shards import Shard, merge_outputs, parse_shard
from mm_litellm.cli.main import main
from tests.conftest import EXAMPLE_POLICY, ROOT


def write_input(path: Path, n: int) -> Path:
    path.write_text("".join(json.dumps({"id": f"r{i}", "prompt": f"q{i}"}) + "\n" for i in range(n)))
    return path


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_shards_cover_every_row_once() -> None:
    for n in (1, 2, 3, 7):
        owners = [[k for k in range(1, n + 1) if Shard(k, n).owns(i)] for i in range(50)]
        assert all(len(o) == 1 for o in owners)
        assert sum(Shard(k, n).size(50) for k in range(1, n + 1)) == 50


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_bad_shard_says_what_is_allowed(text: str) -> None:
    with pytest.raises(ValueError, match="K/N"):
        parse_shard(text)


def test_shards_then_merge_give_the_whole_input_in_order_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_input(tmp_path / "in.jsonl", 9)
    parts = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for k, part in enumerate(parts, start=1):
        args = [
            "batch",
            str(source),
            "-o",
            str(part),
            "--shard",
            f"{k}/2",
            "--mock",
            "ok",
            "-q",
            "--policy",
            str(EXAMPLE_POLICY),
        ]
        assert main(args) == 0
        assert main(args) == 0  # a rerun of a finished shard has nothing to do
    assert sorted(r["index"] for r in rows(parts[0])) == [0, 2, 4, 6, 8]  # in completion order
    assert sorted(r["index"] for r in rows(parts[1])) == [1, 3, 5, 7]
    out = tmp_path / "out.jsonl"
    assert main(["batch-merge", str(out), *map(str, parts)]) == 0
    assert main(["batch-merge", str(out), *map(str, parts)]) == 0  # idempotent
    assert [r["id"] for r in rows(out)] == [f"r{i}" for i in range(9)]
    assert "merged 0 rows" in capsys.readouterr().out
    # the merged file is a normal batch output: a plain rerun has nothing left to do
    assert main(["batch", str(source), "-o", str(out), "--mock", "--policy", str(EXAMPLE_POLICY)]) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_merge_refuses_a_file_that_is_not_a_batch_output(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"no": "index"}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl:1: not a batch output row"):
        merge_outputs(tmp_path / "out.jsonl", [bad])


@pytest.mark.slow
def test_workers_run_shards_in_processes_and_merge(tmp_path: Path) -> None:
    source = write_input(tmp_path / "in.jsonl", 12)
    out = tmp_path / "out.jsonl"
    env_db = f"sqlite:///{tmp_path / 'ledger.db'}"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mm_litellm.cli.main",
            "batch",
            str(source),
            "-o",
            str(out),
            "--workers",
            "2",
            "--mock",
            "ok",
            "-q",
            "--policy",
            str(EXAMPLE_POLICY),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**__import__("os").environ, "MM_LITELLM_DATABASE_URL": env_db},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert [r["id"] for r in rows(out)] == [f"r{i}" for i in range(12)]
    assert "2 workers: merged 12 rows" in result.stdout
    assert not list(tmp_path.glob("out.jsonl.shard-*"))
    from sqlalchemy import create_engine, text

    with create_engine(env_db).connect() as conn:  # one ledger, both workers' rows
        assert conn.execute(text("select count(*) from mm_ledger")).scalar() == 12
