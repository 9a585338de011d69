"""LiteLLM's plain proxy vs the mm_litellm proxy over the same fake upstream, in one run.

Both proxies run at once as real ``litellm`` processes in front of one loopback
``FakeUpstream`` (no latency, so the proxies' own work is what is measured):

- plain:     ``litellm --config`` with one model ``small``, master-key auth, no callbacks;
             clients ask for ``model="small"``.
- mm_litellm: ``mm-litellm proxy`` (config/proxy.yaml + a policy): custom auth against a
             hashed key, the pre-call hook routing ``model="auto"`` to ``small`` by a rule, a
             budget reservation per call and its ledger row (SQLite), x-mm-* response headers.

Throughput is requests/s at a fixed concurrency, measured in alternating rounds (which proxy
goes first alternates too) so that machine noise hits both alike; the median round of each is
reported, with their ratio. Target (issue 7): mm_litellm >= 0.90 of plain.

On a machine with two or more CPUs both proxies run on CPU 1 and this process (the client and
the fake upstream) on CPU 0, so the proxy under load never competes with its own client for a
core: two identical plain proxies then measure within 1% of each other, where unpinned they
differed by up to 9% on the shared 2-core machine. ``--no-pin`` turns that off.

    python bench/proxy.py [--concurrency 8] [--seconds 2] [--rounds 8] [--no-budgets] [--no-pin]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mm_litellm.proxy.keys import hash_key, new_key  # noqa: E402
from mm_litellm.testing.upstream import FakeUpstream  # noqa: E402

BODY_MESSAGES = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]

PLAIN_CONFIG = """
model_list:
  - model_name: small
    litellm_params: {{model: openai/fake-small, api_base: "{base}", api_key: sk-fake}}
general_settings:
  master_key: os.environ/LITELLM_MASTER_KEY
"""

POLICY = """
version: 1
models:
  small:
    litellm_params: {{model: openai/fake-small, api_base: "{base}", api_key: sk-fake}}
    tier: basic
    pricing: {{input_per_mtok: 0.15, output_per_mtok: 0.6}}
  big:
    litellm_params: {{model: openai/fake-big, api_base: "{base}", api_key: sk-fake}}
    tier: advanced
    pricing: {{input_per_mtok: 2.5, output_per_mtok: 10}}
router: {{num_retries: 0}}
database: {{url: "sqlite:///{db}"}}
{budgets}
routes:
  auto:
    rules:
      - {{name: vision, when: {{has_images: true}}, use: big}}
      - {{name: vip, when: {{priority: high}}, use: big}}
      - {{name: short, when: {{input_tokens: {{lt: 2000}}}}, use: small}}
    default: big
proxy:
  keys:
    bench: {{hash: "{key_hash}", user: bench, team: perf}}
"""

BUDGETS = """
budgets:                 # a generous budget: every call is reserved, settled and written to the ledger
  limits:
    - {name: bench-daily, scope: global, window: daily, limit_usd: 1000000}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(
    cmd: list[str], env: dict[str, str], log: Path, port: int, cpus: set[int] | None = None
) -> subprocess.Popen[bytes]:
    """Start a proxy (on ``cpus`` only, with every thread and child it makes) and wait until it answers."""
    pin = None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=pin)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{cmd[0]} exited:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/liveliness", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    proc.kill()
    raise SystemExit(f"proxy on port {port} did not start:\n{log.read_text()[-3000:]}")


def cpu_seconds(pid: int) -> float | None:
    """User+system CPU seconds of ``pid`` and its descendants (Linux ``/proc``; ``None`` elsewhere).

    Throughput on a shared machine swings with the neighbours' load; the proxies' own CPU per
    request is a second, steadier view of what each proxy costs.
    """
    proc = Path("/proc")
    if not proc.is_dir():
        return None
    stats: dict[int, tuple[int, float]] = {}
    for d in proc.iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        stats[int(d.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"))
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        if p in stats:
            total += stats[p][1]
        todo.extend(c for c, (parent, _) in stats.items() if parent == p)
    return total


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def measure(
    url: str, key: str, model: str, concurrency: int, seconds: float, check: str | None
) -> float:
    """Requests/s over ``seconds`` with ``concurrency`` workers, each waiting for its answer."""
    headers = {"Authorization": f"Bearer {key}"}
    body = {"model": model, "messages": BODY_MESSAGES, "max_tokens": 16}
    done = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=60) as client:
        first = await client.post("/v1/chat/completions", json=body)
        first.raise_for_status()
        if check is not None and first.headers.get("x-mm-model") != check:
            raise SystemExit(f"mm_litellm proxy did not route as expected: {dict(first.headers)}")
        end = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                r = await client.post("/v1/chat/completions", json=body)
                r.raise_for_status()
                done += 1

        start_t = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start_t
    return done / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=2.0, help="length of one measured round")
    parser.add_argument("--rounds", type=int, default=8, help="rounds per proxy (alternating)")
    parser.add_argument(
        "--no-budgets",
        action="store_true",
        help="policy without budgets (no reservation, no ledger): routing and auth only",
    )
    parser.add_argument(
        "--no-pin", action="store_true", help="do not pin the proxies to CPU 1 and the client to CPU 0"
    )
    args = parser.parse_args()

    proxy_cpus: set[int] | None = None
    available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if not args.no_pin and len(available) >= 2:
        proxy_cpus = {available[1]}
        os.sched_setaffinity(0, {available[0]})  # the client and the fake upstream (a thread of this process)

    master = "sk-master-" + secrets.token_urlsafe(32)
    key = new_key()
    os.environ.pop("MM_LITELLM_DATABASE_URL", None)  # the policy names the ledger
    env = dict(
        os.environ,
        LITELLM_MASTER_KEY=master,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p),
    )
    litellm_exe = str(Path(sys.executable).with_name("litellm"))
    with tempfile.TemporaryDirectory(prefix="bench-proxy-") as tmp, FakeUpstream() as upstream:
        work = Path(tmp)
        (work / "plain.yaml").write_text(PLAIN_CONFIG.format(base=upstream.base_url))
        (work / "policy.yaml").write_text(
            POLICY.format(
                base=upstream.base_url,
                key_hash=hash_key(key),
                db=work / "ledger.db",
                budgets="" if args.no_budgets else BUDGETS,
            )
        )
        plain_port, mm_port = free_port(), free_port()
        print("starting both proxies ...", flush=True)
        plain = start(
            [
                litellm_exe,
                "--config",
                str(work / "plain.yaml"),
                "--port",
                str(plain_port),
                "--host",
                "127.0.0.1",
            ],
            env,
            work / "plain.log",
            plain_port,
            proxy_cpus,
        )
        try:
            mm = start(
                [
                    sys.executable,
                    "-m",
                    "mm_litellm.cli.main",
                    "proxy",
                    "--config",
                    str(ROOT / "config" / "proxy.yaml"),
                    "--policy",
                    str(work / "policy.yaml"),
                    "--port",
                    str(mm_port),
                ],
                env,
                work / "mm.log",
                mm_port,
                proxy_cpus,
            )
            try:
                results: dict[str, list[float]] = {"plain": [], "mm_litellm": []}
                cpu_ms: dict[str, list[float]] = {"plain": [], "mm_litellm": []}
                both = [
                    ("plain", f"http://127.0.0.1:{plain_port}", master, "small", None, plain.pid),
                    ("mm_litellm", f"http://127.0.0.1:{mm_port}", key, "auto", "small", mm.pid),
                ]
                for i in range(args.rounds):
                    for name, url, k, model, check, pid in both if i % 2 == 0 else both[::-1]:
                        cpu0 = cpu_seconds(pid)
                        rps = asyncio.run(measure(url, k, model, args.concurrency, args.seconds, check))
                        cpu1 = cpu_seconds(pid)
                        results[name].append(rps)
                        per = ""
                        if cpu0 is not None and cpu1 is not None and rps > 0:
                            cpu_ms[name].append((cpu1 - cpu0) * 1000 / (rps * args.seconds + 1))
                            per = f"  {cpu_ms[name][-1]:5.1f} ms CPU/req"
                        print(f"  round {i + 1} {name:<10} {rps:7.1f} req/s{per}", flush=True)
            finally:
                stop(mm)
        finally:
            stop(plain)
    plain_rps = statistics.median(results["plain"])
    mm_rps = statistics.median(results["mm_litellm"])
    ratios = [m / p for p, m in zip(results["plain"], results["mm_litellm"], strict=True)]
    what = (
        "routing + keys, no budgets" if args.no_budgets else "routing + keys + budget reservation and ledger"
    )
    pinning = (
        "unpinned"
        if proxy_cpus is None
        else f"proxies on CPU {min(proxy_cpus)}, client on CPU {available[0]}"
    )
    print(
        f"\nmm_litellm proxy with {what}; concurrency {args.concurrency}, "
        f"{args.rounds} x {args.seconds:g} s rounds each ({pinning}), medians:"
    )
    print(f"  plain LiteLLM proxy   {plain_rps:7.1f} req/s")
    print(f"  mm_litellm proxy      {mm_rps:7.1f} req/s")
    print(
        f"  ratio mm/plain        {mm_rps / plain_rps:7.3f}   (target >= 0.90; "
        f"median of per-round ratios {statistics.median(ratios):.3f})"
    )
    if cpu_ms["plain"] and cpu_ms["mm_litellm"]:
        p_cpu, m_cpu = statistics.median(cpu_ms["plain"]), statistics.median(cpu_ms["mm_litellm"])
        print(
            f"  proxy CPU per request plain {p_cpu:.1f} ms, mm_litellm {m_cpu:.1f} ms, "
            f"ratio plain/mm {p_cpu / m_cpu:.3f}   (steadier than req/s on a shared machine)"
        )


if __name__ == "__main__":
    main()
