"""Assignment rows written off the call path: flushed before reads, duplicates skipped, kept at exit."""

from __future__ import annotations

import subprocess
import sys
import threading

from mm_litellm import storage
from mm_litellm.prompts.store import PromptStore
from tests.conftest import ROOT


def row(i: int) -> dict[str, object]:
    return {
        "call_id": f"c{i}",
        "experiment": "e",
        "variant": "a",
        "prompt_id": "p",
        "version": 1,
        "unit": None,
    }


def test_queued_rows_are_visible_to_every_read_and_duplicates_keep_the_first(db_url: str) -> None:
    store = PromptStore(storage.engine_for(db_url))

    def worker(start: int) -> None:
        for i in range(start, start + 250):
            store.add_assignment(background=True, **row(i))

    threads = [threading.Thread(target=worker, args=(n * 250,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.add_assignment(background=True, **{**row(7), "variant": "b"})  # a retried call: ignored
    rows = store.assignments("e")  # waits for the queue
    assert len(rows) == 1000
    assert next(r for r in rows if r.call_id == "c7").variant == "a"
    assert store.settle("c999", ok=True, cost_usd=0.1, latency_ms=5.0, response_id="r999")


def test_rows_still_queued_at_exit_are_written(db_url: str) -> None:
    code = (
        "from mm_litellm import storage; from mm_litellm.prompts.store import PromptStore;"
        f"s = PromptStore(storage.engine_for({db_url!r}));"
        "[s.add_assignment(background=True, call_id=f'x{i}', experiment='exit', variant='a', prompt_id='p',"
        " version=1, unit=None) for i in range(300)]"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)
    assert len(PromptStore(storage.engine_for(db_url)).assignments("exit")) == 300
