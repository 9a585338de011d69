"""RateLimiter: start slots spaced by rpm and by tokens per minute, FIFO, corrected by real usage."""

from __future__ import annotations

import pytest

from mm_litellm.batch.limiter import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rpm_spaces_starts_evenly_with_no_burst() -> None:
    clock = Clock()
    limiter = RateLimiter(rpm=120, clock=clock)  # one start per 0.5 s
    assert [limiter.reserve() for _ in range(4)] == [0.0, 0.5, 1.0, 1.5]
    clock.now += 10  # idle time grants no burst afterwards
    assert [limiter.reserve() for _ in range(2)] == [0.0, 0.5]


def test_tpm_spaces_by_tokens_and_settles_to_real_usage() -> None:
    clock = Clock()
    limiter = RateLimiter(tpm=6000, clock=clock)  # 100 tokens per second
    assert limiter.reserve(50) == 0.0
    assert limiter.reserve(200) == pytest.approx(0.5)
    assert limiter.reserve(10) == pytest.approx(2.5)
    limiter.settle(-100)  # the last-but-one call used 100 tokens fewer than estimated
    assert limiter.reserve(10) == pytest.approx(1.6)


def test_both_limits_the_stricter_wins() -> None:
    limiter = RateLimiter(rpm=60, tpm=60_000, clock=Clock())  # 1 req/s, 1000 tokens/s
    assert limiter.reserve(3000) == 0.0
    assert limiter.reserve(1) == pytest.approx(3.0)  # tokens bind
    assert limiter.reserve(1) == pytest.approx(4.0)  # then requests bind


def test_no_limit_never_waits_and_bad_limits_are_refused() -> None:
    limiter = RateLimiter()
    assert not limiter.active and limiter.reserve(10**9) == 0.0
    with pytest.raises(ValueError, match="rpm must be a positive number, got 0"):
        RateLimiter(rpm=0)
