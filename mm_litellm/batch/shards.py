"""Splitting one batch input between processes or machines, and merging their outputs.

Shard ``K/N`` owns the input rows whose position ``i`` has ``i % N == K - 1`` (positions count
non-blank lines, as resume keys do), so N shards cover every row exactly once whatever the rows
say. Each shard writes its own output file and resumes from it like any batch run; ``merge``
appends the rows of shard outputs to one output in input order, skipping rows already there, so
it can be rerun after an interrupted shard is resumed. Budgets and the ledger are shared
through the policy's database (SQLite for processes on one machine, PostgreSQL across machines).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from mm_litellm.batch.journal import OutputJournal, row_key

__all__ = ["Shard", "merge_outputs", "parse_shard", "shard_output"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class Shard:
    """Shard ``number`` of ``count`` (1-based)."""

    def __init__(self, number: int, count: int) -> None:
        if count < 1 or not 1 <= number <= count:
            raise ValueError(f"shard {number}/{count}: K/N needs 1 <= K <= N")
        self.number, self.count = number, count

    def owns(self, index: int) -> bool:
        return index % self.count == self.number - 1

    def size(self, total: int) -> int:
        """Rows of ``total`` this shard owns."""
        return len(range(self.number - 1, total, self.count))

    def __str__(self) -> str:
        return f"{self.number}/{self.count}"


def parse_shard(text: str) -> Shard:
    """``"K/N"`` -> :class:`Shard` (``ValueError`` saying what is allowed)."""
    match = _SHARD.match(text)
    if match is None:
        raise ValueError(f"--shard '{text}': expected K/N, e.g. 1/4 (this process takes rows K, K+N, ...)")
    return Shard(int(match.group(1)), int(match.group(2)))


def shard_output(output: Path, shard: Shard) -> Path:
    """Where ``--workers`` puts shard ``shard``'s rows before merging them into ``output``."""
    return output.with_name(f"{output.name}.shard-{shard.number}-of-{shard.count}")


def _rows(path: Path) -> Iterable[dict[str, Any]]:
    data = path.read_bytes() if path.exists() else b""
    good = data[: data.rfind(b"\n") + 1] if not data.endswith(b"\n") else data  # never a torn line
    for number, line in enumerate(good.splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
                row_key(row["index"], row.get("id"))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a batch output row ({exc})") from exc
            yield row


def merge_outputs(output: Path, parts: Iterable[Path]) -> tuple[int, int]:
    """Append the rows of ``parts`` missing from ``output``, in input order. Returns (added, present)."""
    rows = sorted((row for part in parts for row in _rows(part)), key=lambda r: int(r["index"]))
    with OutputJournal(output) as journal:
        seen = set(journal.done)
        missing = []
        for row in rows:
            key = row_key(row["index"], row.get("id"))
            if key not in seen:
                seen.add(key)
                missing.append(row)
        journal.write_many(missing)  # one fsync: the shard files still hold every row until then
    return len(missing), len(rows) - len(missing)
