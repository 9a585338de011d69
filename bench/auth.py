"""A real user's latency against the real proxy, quiet and while strangers send random tokens.

One ``mm-litellm proxy`` over a loopback ``FakeUpstream`` (no latency). The policy declares the
user's key (scrypt-hashed, ``sk-mm.<id>.<secret>`` as ``mm-litellm keys new`` mints it), 20
other scrypt keys with ids, and one scrypt key issued before ids existed (an id-less token), so
every kind of guess has something expensive to aim at:

- quiet:  the user sends sequential chat requests for ``--seconds``;
- noisy:  the same, while ``--rate`` random-token requests a second (default 50) arrive from
          ``--addresses`` loopback source addresses (127.0.1.x), a third each: unknown ids,
          known ids with wrong secrets, and id-less tokens.

Prints p50 and p99 of both phases, their ratio (target: noisy p50 within 20% of quiet), and how
the strangers were answered (401 unknown key, 429 throttled).

    python bench/auth.py [--seconds 10] [--rate 50] [--addresses 50]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
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
    lines = ["keys:", f"  user: {{hash: '{hash_key(user_key, 'scrypt')}', user: user}}",
             f"  legacy: {{hash: '{hash_key(legacy_key, 'scrypt')}', user: legacy}}"]
    lines += [f"  k{i}: {{hash: '{hash_key(new_key(key_id=f'k{i}'), 'scrypt')}'}}" for i in range(20)]
    return "\n".join(lines) + "\n"


async def user_latencies(url: str, key: str, seconds: float) -> list[float]:
    out: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=30,
                                 headers={"Authorization": f"Bearer {key}"}) as client:
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


async def strangers(url: str, rate: float, addresses: int, stop: asyncio.Event,
                    answers: collections.Counter[int]) -> None:
    clients = [httpx.AsyncClient(base_url=url, timeout=30, transport=httpx.AsyncHTTPTransport(
        local_address=f"127.0.1.{1 + n % 250}")) for n in range(addresses)]
    tasks: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        try:
            r = await clients[i % addresses].post(
                "/v1/chat/completions", json={"model": "small", "messages": HI},
                headers={"Authorization": f"Bearer {stranger_token(i)}"})
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


async def run(url: str, key: str, seconds: float, rate: float, addresses: int) -> None:
    await user_latencies(url, key, 1.0)  # warm-up: the first request verifies the key (scrypt, once)
    quiet = await user_latencies(url, key, seconds)
    stop = asyncio.Event()
    answers: collections.Counter[int] = collections.Counter()
    noise = asyncio.create_task(strangers(url, rate, addresses, stop, answers))
    await asyncio.sleep(1.0)  # let the strangers reach their rate
    noisy = await user_latencies(url, key, seconds)
    stop.set()
    await noise
    q50, q99 = summary("quiet", quiet)
    n50, n99 = summary("noisy", noisy)
    print(f"strangers: {sum(answers.values())} requests at {rate:g}/s from {addresses} addresses; "
          f"answers {dict(sorted(answers.items()))}")
    print(f"ratio noisy/quiet: p50 {n50 / q50:.2f}  p99 {n99 / q99:.2f}  (target: p50 <= 1.20)")


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the proxy on `timeout` too
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--addresses", type=int, default=50)
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    user_key, legacy_key = new_key(key_id="user"), new_key()
    with tempfile.TemporaryDirectory() as tmp, FakeUpstream() as upstream:
        workdir = Path(tmp)
        (workdir / "policy.yaml").write_text(POLICY.format(base=upstream.base_url))
        (workdir / "keys.yaml").write_text(keys_file(user_key, legacy_key))
        proc, url, _ = start_proxy(workdir, {"LITELLM_MASTER_KEY": "sk-master-" + secrets.token_urlsafe(32),
                                             "LITELLM_LOG": "ERROR"})
        try:
            asyncio.run(run(url, user_key, args.seconds, args.rate, args.addresses))
        finally:
            stop_proxy(proc)


if __name__ == "__main__":
    main()
