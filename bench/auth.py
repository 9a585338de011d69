"""A real user's latency against the real proxy, quiet and while strangers send random tokens.

One ``mm-litellm proxy`` over a loopback ``FakeUpstream`` (no latency). The policy declares the
user's key (scrypt-hashed, ``sk-mm.<id>.<secret>`` as ``mm-litellm keys new`` mints it), 20
other scrypt keys with ids, and one scrypt key issued before ids existed (an id-less token), so
every kind of guess has something expensive to aim at:

- quiet:  the user sends sequential chat requests for ``--seconds``;
- noisy:  the same, while ``--rate`` random-token requests a second (default 50) arrive from
          ``--addresses`` loopback source addresses (127.0.1.x), a third each: unknown ids,
          known ids with wrong secrets, and id-less tokens (sent by a separate process, so the
          user's client loop measures only the proxy).

``--pin`` runs the proxy on CPU 1 and the clients on CPU 0 (on 2 cores the two client processes
then starve each other, so it is off by default). Since the strangers' own client takes CPU from
the same machine, the proxy's CPU time per stranger request is printed too: that is what the
strangers cost the proxy.
Prints p50 and p99 of both phases, their ratio (target: noisy p50 within 20% of quiet), and how
the strangers were answered (401 unknown key, 429 throttled).

    python bench/auth.py [--seconds 10] [--rate 50] [--addresses 50] [--pin]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import multiprocessing
import multiprocessing.queues
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mm_litellm.proxy.keys import hash_key, new_key  # noqa: E402
from mm_litellm.testing.upstream import FakeUpstream  # noqa: E402
from tests.proxy.support import start_proxy, stop_proxy  # noqa: E402

POLICY = """
version: 1
models:
  small:
    litellm_params: {{model: openai/fake-small, api_base: "{base}", api_key: sk-fake}}
    pricing: {{input_per_mtok: 0.15, output_per_mtok: 0.6}}
router: {{num_retries: 0}}
proxy:
  keys_file: keys.yaml
"""

HI = [{"role": "user", "content": "hi"}]


def keys_file(user_key: str, legacy_key: str) -> str:
    lines = [
        "keys:",
        f"  user: {{hash: '{hash_key(user_key, 'scrypt')}', user: user}}",
        f"  legacy: {{hash: '{hash_key(legacy_key, 'scrypt')}', user: legacy}}",
    ]
    lines += [f"  k{i}: {{hash: '{hash_key(new_key(key_id=f'k{i}'), 'scrypt')}'}}" for i in range(20)]
    return "\n".join(lines) + "\n"


async def user_latencies(url: str, key: str, seconds: float) -> list[float]:
    out: list[float] = []
    async with httpx.AsyncClient(
        base_url=url, timeout=30, headers={"Authorization": f"Bearer {key}"}
    ) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            r = await client.post("/v1/chat/completions", json={"model": "small", "messages": HI})
            out.append((time.perf_counter() - started) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"the user was refused: {r.status_code} {r.text[:200]}")
    return out


def stranger_token(i: int) -> str:
    kind = i % 3
    if kind == 0:
        return f"sk-mm.{secrets.token_hex(4)}.{secrets.token_urlsafe(32)}"  # unknown id
    if kind == 1:
        return f"sk-mm.k{i % 20}.{secrets.token_urlsafe(32)}"  # a real id, a wrong secret
    return "sk-mm-" + secrets.token_urlsafe(32)  # no id: could be the id-less scrypt key


async def strangers(
    url: str, rate: float, addresses: int, stop: asyncio.Event, answers: collections.Counter[int]
) -> None:
    clients = [
        httpx.AsyncClient(
            base_url=url,
            timeout=30,
            transport=httpx.AsyncHTTPTransport(local_address=f"127.0.1.{1 + n % 250}"),
        )
        for n in range(addresses)
    ]
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        try:
            r = await clients[i % addresses].post(
                "/v1/chat/completions",
                json={"model": "small", "messages": HI},
                headers={"Authorization": f"Bearer {stranger_token(i)}"},
            )
            answers[r.status_code] += 1
        except httpx.HTTPError:
            answers[0] += 1

    i = 0
    started = time.monotonic()
    while not stop.is_set():
        i += 1
        task = asyncio.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
    await asyncio.gather(*tasks, return_exceptions=True)
    for client in clients:
        await client.aclose()


def summary(name: str, values: list[float]) -> tuple[float, float]:
    values = sorted(values)
    p50 = statistics.median(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    print(f"{name:<8} requests={len(values):>5}  p50={p50:7.2f} ms  p99={p99:7.2f} ms")
    return p50, p99


def strangers_process(
    url: str,
    rate: float,
    addresses: int,
    seconds: float,
    results: multiprocessing.queues.Queue[dict[int, int]],
) -> None:
    """The strangers in a process of their own, so the user's client loop measures only the proxy."""

    async def go() -> dict[int, int]:
        stop = asyncio.Event()
        answers: collections.Counter[int] = collections.Counter()
        task = asyncio.create_task(strangers(url, rate, addresses, stop, answers))
        await asyncio.sleep(seconds)
        stop.set()
        await task
        return dict(answers)

    results.put(asyncio.run(go()))


async def run(url: str, key: str, seconds: float, rate: float, addresses: int, pid: int) -> None:
    from bench.proxy import cpu_seconds  # the proxy process tree's CPU time, from /proc

    await user_latencies(url, key, 1.0)  # warm-up: the first request verifies the key (scrypt, once)
    cpu0 = cpu_seconds(pid)
    quiet = await user_latencies(url, key, seconds)
    cpu1 = cpu_seconds(pid)
    results: multiprocessing.queues.Queue[dict[int, int]] = multiprocessing.Queue()
    noise = multiprocessing.Process(
        target=strangers_process, args=(url, rate, addresses, seconds + 2, results)
    )
    noise.start()
    await asyncio.sleep(1.5)  # let the strangers reach their rate
    cpu2 = cpu_seconds(pid)
    noisy = await user_latencies(url, key, seconds)
    cpu3 = cpu_seconds(pid)
    answers = results.get(timeout=120)
    noise.join()
    q50, q99 = summary("quiet", quiet)
    n50, n99 = summary("noisy", noisy)
    print(
        f"strangers: {sum(answers.values())} requests at {rate:g}/s from {addresses} addresses; "
        f"answers {dict(sorted(answers.items()))}"
    )
    print(f"ratio noisy/quiet: p50 {n50 / q50:.2f}  p99 {n99 / q99:.2f}  (target: p50 <= 1.20)")
    if None not in (cpu0, cpu1, cpu2, cpu3):
        assert cpu0 is not None and cpu1 is not None and cpu2 is not None and cpu3 is not None
        per_user = (cpu1 - cpu0) / len(quiet)
        noisy_cpu = cpu3 - cpu2
        stranger_cpu = max(0.0, noisy_cpu - per_user * len(noisy))
        sent = sum(answers.values()) * seconds / (seconds + 2)  # the strangers' share inside the window
        print(
            f"proxy CPU: {per_user * 1000:.1f} ms per user request; during the noise {noisy_cpu:.2f} s "
            f"in {seconds:g} s, of which the strangers ~{stranger_cpu:.2f} s = "
            f"{stranger_cpu / max(sent, 1) * 1000:.2f} ms per stranger request"
        )


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the proxy on `timeout` too
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--addresses", type=int, default=50)
    parser.add_argument(
        "--pin", action="store_true", help="pin the proxy to CPU 1 and the clients and upstream to CPU 0"
    )
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    pin = args.pin and len(cpus) >= 2
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    user_key, legacy_key = new_key(key_id="user"), new_key()
    with tempfile.TemporaryDirectory() as tmp, FakeUpstream() as upstream:
        workdir = Path(tmp)
        (workdir / "policy.yaml").write_text(POLICY.format(base=upstream.base_url))
        (workdir / "keys.yaml").write_text(keys_file(user_key, legacy_key))
        if pin:
            os.sched_setaffinity(0, {cpus[1]})  # inherited by the proxy started now
        proc, url, _ = start_proxy(
            workdir, {"LITELLM_MASTER_KEY": "sk-master-" + secrets.token_urlsafe(32), "LITELLM_LOG": "ERROR"}
        )
        if pin:
            os.sched_setaffinity(0, {cpus[0]})
        try:
            asyncio.run(run(url, user_key, args.seconds, args.rate, args.addresses, proc.pid))
        finally:
            stop_proxy(proc)


if __name__ == "__main__":
    main()
