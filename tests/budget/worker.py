"""A separate process making budgeted calls through mm_litellm (for the multi-process tests).

usage: python worker.py POLICY_FILE CALLS THREADS DELAY [--print-reservations]
Prints one JSON line at the end: {"admitted": n, "blocked": n, "errors": n}. With
--print-reservations, prints "reserved <id>" as soon as each call is admitted.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import mm_litellm
from mm_litellm.budget import service as service_module
from mm_litellm.testing import MockLLM

MESSAGES = [{"role": "user", "content": "Summarise the quarterly report in two sentences."}]


def main() -> int:
    policy, calls, threads, delay = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    if "--print-reservations" in sys.argv:
        original = service_module.BudgetService.reserve
        lock = threading.Lock()

        def reserve(self, *args, **kwargs):  # type: ignore[no-untyped-def]
            rid, denial = original(self, *args, **kwargs)
            if rid is not None:  # admitted: from here on the call must stay counted
                with lock:
                    sys.stdout.write(f"reserved {rid}\n")
                    sys.stdout.flush()
            return rid, denial

        service_module.BudgetService.reserve = reserve  # type: ignore[method-assign]
    mm_litellm.configure(policy)
    from mm_litellm.integrations.prices import count_prompt_tokens

    prompt = count_prompt_tokens("openai/gpt-4o-mini", MESSAGES)
    mock = MockLLM()
    mock.script("small", "ok", prompt_tokens=prompt, completion_tokens=50, delay=delay or None)
    counts = {"admitted": 0, "blocked": 0, "errors": 0}

    def one(_: int) -> str:
        try:
            mm_litellm.completion(model="small", messages=MESSAGES, max_tokens=50)
            return "admitted"
        except mm_litellm.BudgetExceeded:
            return "blocked"
        except Exception as exc:  # reported, so a test sees it
            print(f"error {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            return "errors"

    if "--wait-for-go" in sys.argv:  # the test starts both processes at once
        print("ready", flush=True)
        sys.stdin.readline()
    with mock.installed(), ThreadPoolExecutor(threads) as pool:
        for outcome in pool.map(one, range(calls)):
            counts[outcome] += 1
    from mm_litellm.usage import flush

    flush()
    print(json.dumps(counts), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
