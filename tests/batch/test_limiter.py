"""RateLimiter: start slots spaced by rpm and by tokens per minute, FIFO, corrected by real usage."""

from __future__ import annotations

import asyncio

import pytest

from mm_litellm.batch.limiter import RateLimiter


class Clock:
    """A fake clock whose sleep advances it (no real waiting)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


def grants(limiter: RateLimiter, clock: Clock, tokens: list[int]) -> list[float]:
    """Seconds after the start at which each call (in order, concurrently queued) was let go."""
    start = clock.now
    out: list[float] = []

    async def one(n: int) -> None:
        await limiter.acquire(n)
        out.append(round(clock.now - start, 6))

    async def main() -> None:
        await asyncio.gather(*(one(n) for n in tokens))

    asyncio.run(main())
    return out


def test_rpm_spaces_starts_evenly_with_no_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=120, clock=clock, sleep=clock.sleep)  # one start per 0.5 s
    assert grants(limiter, clock, [0] * 4) == [0.0, 0.5, 1.0, 1.5]
    clock.now += 10  # idle time grants no burst afterwards
    assert grants(limiter, clock, [0] * 2) == [0.0, 0.5]


def test_a_late_wake_up_keeps_the_spacing_for_the_next_calls() -> None:
    clock = Clock()

    async def slow_sleep(seconds: float) -> None:
        clock.now += seconds + 0.3  # the event loop was busy: every wait overruns by 0.3 s

    limiter = RateLimiter(rpm=600, clock=clock, sleep=slow_sleep)  # one per 0.1 s
    assert grants(limiter, clock, [0] * 3) == [0.0, 0.4, 0.8]  # never two starts closer than 0.1 s


def test_tpm_spaces_by_tokens_and_settles_to_real_usage() -> None:
    clock = Clock()
    limiter = RateLimiter(tpm=6000, clock=clock, sleep=clock.sleep)  # 100 tokens per second
    assert grants(limiter, clock, [50, 200, 10]) == [0.0, 0.5, 2.5]
    limiter.settle(-5)  # the last call used 5 tokens fewer than estimated
    assert grants(limiter, clock, [10]) == [pytest.approx(0.05)]


def test_both_limits_the_stricter_wins() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=60, tpm=60_000, clock=clock, sleep=clock.sleep)  # 1 req/s, 1000 tokens/s
    assert grants(limiter, clock, [3000, 1, 1]) == [0.0, 3.0, 4.0]  # tokens bind, then requests


def test_no_limit_never_waits_and_bad_limits_are_refused() -> None:
    clock = Clock()
    limiter = RateLimiter(clock=clock, sleep=clock.sleep)
    assert not limiter.active and grants(limiter, clock, [10**9, 10**9]) == [0.0, 0.0]
    with pytest.raises(ValueError, match="rpm must be a positive number, got 0"):
        RateLimiter(rpm=0)
