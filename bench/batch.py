"""Batch throughput against the fake upstream, beside the ideal and beside LiteLLM alone, in one run.

The fake OpenAI-compatible upstream (``mm_litellm.testing.upstream.FakeUpstream``) answers
every request after ``--latency`` seconds; it runs in its own process so that its work does
not share this process's interpreter lock. With ``--concurrency`` calls in flight the ideal
is ``concurrency / latency`` requests per second. Variants, each ``--requests`` calls after a
warm-up (interleaved in ``--rounds`` so that load changes hit every variant alike),
all over LiteLLM's real HTTP path (its aiohttp transport by default):

- raw aiohttp client           the upstream and loopback alone (no LiteLLM): the ceiling here
- litellm.acompletion          LiteLLM alone, under an asyncio.Semaphore
- Router.acompletion           the very Router mm_litellm routes through, called directly
- mm_litellm.abatch            the batch API: policy route, arun, RunResult, metrics

Target (issue 9): abatch at least 70% of ideal.

With ``--workers N``: ``mm-litellm batch --workers 1`` against ``--workers N`` on one input of
``--requests`` rows (default 5000; whole commands, interleaved in ``--rounds``), and the same
commands on a 2-row input (start-up and exit alone), printing rows/s whole and once started, the
speed-ups and their share of the ideal N x (issue 18 target: >= 1.7x with 2 workers on 2
cores). The upstream's own CPU shares those cores.

    python bench/batch.py [--requests 1000] [--concurrency 50] [--latency 0.05] [--rounds 4]
                          [--httpx] [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # measure this checkout's mm_litellm
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm

import mm_litellm
from mm_litellm.testing._upstream_app import measure_throughput

SERVER = """
import signal, sys
from mm_litellm.testing.upstream import FakeUpstream
up = FakeUpstream(latency=float(sys.argv[1])).start()
print(up.url, flush=True)
signal.sigwait({signal.SIGTERM, signal.SIGINT})
up.stop()
"""

POLICY = """
version: 1
router: {{num_retries: 0}}
models:
  bench-model:
    litellm_params: {{model: openai/bench-model, api_base: "{base}", api_key: sk-fake}}
    pricing: {{input_per_mtok: 0.15, output_per_mtok: 0.6}}
routes:
  auto: {{default: bench-model}}
default_route: auto
"""

MESSAGES = [{"role": "user", "content": "ping"}]


async def timed(total: int, concurrency: int, call: Callable[[int], Awaitable[object]]) -> float:
    """Requests/s of ``total`` calls of ``call`` with at most ``concurrency`` in flight."""
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with gate:
            await call(i)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(total)))
    return total / (time.perf_counter() - start)


async def measure(args: argparse.Namespace, url: str) -> dict[str, tuple[float, float]]:
    """Requests/s and CPU milliseconds per request of each variant.

    The requests are split into rounds and each round runs every variant once, in a rotating
    order, so that the machine's changing load hits them alike. CPU time (this process, all
    threads) hardly depends on what else runs on the machine, so it shows the per-call cost
    even when the wall-clock rate is squeezed by other work."""
    base = url + "/v1"
    runtime = mm_litellm.configure(mm_litellm.parse_policy(POLICY.format(base=base)))
    assert runtime is not None
    router = runtime.router
    c = args.concurrency

    async def bare(i: int) -> object:
        return await litellm.acompletion(
            model="openai/bench-model", api_base=base, api_key="sk-fake", messages=MESSAGES
        )

    async def routed(i: int) -> object:
        return await router.acompletion(model="bench-model", messages=MESSAGES)

    async def raw(n: int) -> float:
        return n / await measure_throughput(url, n, c, "aiohttp")

    async def litellm_alone(n: int) -> float:
        return n / await timed(n, c, bare)

    async def router_alone(n: int) -> float:
        return n / await timed(n, c, routed)

    async def batched(n: int) -> float:
        report = await mm_litellm.abatch(["ping"] * n, max_concurrency=c)
        assert report.metrics.succeeded == n, report.summary()
        return report.metrics.wall_time

    variants = {
        "raw aiohttp client": raw,
        "litellm.acompletion": litellm_alone,
        "Router.acompletion": router_alone,
        "mm_litellm.abatch": batched,
    }
    for run in variants.values():  # warm-up: clients, connection pools, caches
        await run(c)
    seconds = dict.fromkeys(variants, 0.0)
    cpu = dict.fromkeys(variants, 0.0)
    per_round = args.requests // args.rounds
    order = list(variants)
    for r in range(args.rounds):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            await asyncio.sleep(0.3)  # let LiteLLM's background logging of the last variant finish
            started = time.process_time()
            seconds[name] += await variants[name](per_round)
            cpu[name] += time.process_time() - started
    total = per_round * args.rounds
    return {name: (total / seconds[name], cpu[name] * 1000 / total) for name in variants}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, help="calls (default 1000; 5000 with --workers)")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.05, help="fake upstream latency, seconds")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    parser.add_argument("--uvloop", action="store_true", help="run the client side on uvloop")
    parser.add_argument("--httpx", action="store_true", help="LiteLLM's httpx transport instead of aiohttp")
    parser.add_argument("--workers", type=int, help="compare mm-litellm batch --workers 1 with --workers N")
    args = parser.parse_args()
    if args.requests is None:
        args.requests = 5000 if args.workers else 1000
    if args.workers:
        compare_workers(args)
        return
    litellm.suppress_debug_info = True
    litellm.disable_aiohttp_transport = args.httpx
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(args.latency)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        if args.uvloop:
            import uvloop

            results = uvloop.run(measure(args, url))
        else:
            results = asyncio.run(measure(args, url))
    finally:
        server.terminate()
        server.wait(timeout=10)
    ideal = args.concurrency / args.latency
    transport = "httpx" if args.httpx else "aiohttp"
    print(
        f"{args.requests} requests, concurrency {args.concurrency}, "
        f"upstream latency {args.latency * 1000:.0f} ms, "
        f"LiteLLM {transport} transport, {'uvloop' if args.uvloop else 'asyncio'} loop, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'variant':<22} {'req/s':>8} {'of ideal':>9} {'CPU ms/req':>11} {'CPU-bound req/s':>16}")
    print(f"{'ideal':<22} {ideal:>8.0f} {'100%':>9}")
    for name, (rate, cpu_ms) in results.items():
        print(f"{name:<22} {rate:>8.0f} {rate / ideal:>9.0%} {cpu_ms:>11.2f} {1000 / cpu_ms:>16.0f}")
    rates = {name: rate for name, (rate, _) in results.items()}
    ratio = rates["mm_litellm.abatch"] / rates["litellm.acompletion"]
    cpu_ratio = results["mm_litellm.abatch"][1] / results["litellm.acompletion"][1]
    print(
        f"CPU per request, abatch / litellm.acompletion: {cpu_ratio:.2f}x "
        "(CPU-bound req/s: one core's worth of this process's CPU time per request)"
    )
    print(
        f"abatch / litellm.acompletion: {ratio:.2f}x; "
        f"abatch / ideal: {rates['mm_litellm.abatch'] / ideal:.0%} "
        "(target >= 70%)"
    )


def compare_workers(args: argparse.Namespace) -> None:
    import json
    import statistics
    import tempfile

    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, str(args.latency)], stdout=subprocess.PIPE, text=True
    )
    sizes = {"full": args.requests, "start-up": 2}  # a 2-row input: start-up and shut-down alone
    times: dict[tuple[str, int], list[float]] = {
        (size, workers): [] for size in sizes for workers in (1, args.workers)
    }
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "policy.yaml").write_text(POLICY.format(base=url + "/v1"))
            for size, rows in sizes.items():
                lines = "".join(json.dumps({"id": i, "prompt": f"q {i}"}) + "\n" for i in range(rows))
                (work / f"in-{size}.jsonl").write_text(lines)
            env = dict(os.environ, MM_LITELLM_DATABASE_URL=f"sqlite:///{work / 'ledger.db'}")
            for _ in range(args.rounds):
                for size, workers in times:
                    out = work / f"out-{workers}.jsonl"
                    out.unlink(missing_ok=True)
                    started = time.perf_counter()
                    cmd = [
                        sys.executable,
                        "-m",
                        "mm_litellm.cli.main",
                        "batch",
                        str(work / f"in-{size}.jsonl"),
                        "-o",
                        str(out),
                        "--workers",
                        str(workers),
                        "-q",
                        "--policy",
                        str(work / "policy.yaml"),
                        "--max-concurrency",
                        str(args.concurrency),
                    ]
                    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
                    times[size, workers].append(time.perf_counter() - started)
    finally:
        server.terminate()
        server.wait(timeout=10)
    median = {key: statistics.median(t) for key, t in times.items()}
    print(
        f"{args.requests} rows, concurrency {args.concurrency} per worker, upstream latency "
        f"{args.latency * 1000:.0f} ms, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}; "
        f"median of {args.rounds} interleaved rounds of whole commands"
    )
    print(f"{'':<14}{'whole command':>22}{'start-up + exit':>18}{'rows alone':>22}")
    work_s = {}
    for workers in (1, args.workers):
        whole, start = median["full", workers], median["start-up", workers]
        work_s[workers] = whole - start
        print(
            f"--workers {workers:<4}{args.requests / whole:>8.0f} rows/s ({whole:5.1f} s){start:>16.1f} s"
            f"{args.requests / work_s[workers]:>10.0f} rows/s ({work_s[workers]:5.1f} s)"
        )
    whole_speedup = median["full", 1] / median["full", args.workers]
    rows_speedup = work_s[1] / work_s[args.workers]
    print(
        f"speed-up with {args.workers} workers: {whole_speedup:.2f}x whole command "
        f"({whole_speedup / args.workers:.0%} of ideal), {rows_speedup:.2f}x once started "
        f"({rows_speedup / args.workers:.0%} of ideal); target >= 1.7x with 2 workers on 2 cores. "
        "Each worker pays LiteLLM's import; the fake upstream shares the same cores."
    )


if __name__ == "__main__":
    main()
