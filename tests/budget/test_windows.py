"""Calendar windows in a declared time zone, and which budgets a call falls under."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from mm_litellm.budget.windows import CallContext, scope_keys, window_bounds
from mm_litellm.policy.budgets import BudgetLimit

BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


@pytest.mark.parametrize(
    ("window", "ts", "start", "end"),
    [
        # 23:30 UTC on 31 Jan is 00:30 on 1 Feb in Berlin: already the next local day and month
        ("daily", datetime(2026, 1, 31, 23, 30), datetime(2026, 1, 31, 23, 0), datetime(2026, 2, 1, 23, 0)),
        (
            "daily",
            datetime(2026, 1, 31, 22, 59, 59),
            datetime(2026, 1, 30, 23, 0),
            datetime(2026, 1, 31, 23, 0),
        ),
        (
            "monthly",
            datetime(2026, 1, 31, 23, 30),
            datetime(2026, 1, 31, 23, 0),
            datetime(2026, 2, 28, 23, 0),
        ),
        (
            "monthly",
            datetime(2026, 12, 15, 12, 0),
            datetime(2026, 11, 30, 23, 0),
            datetime(2026, 12, 31, 23, 0),
        ),
        # Wednesday 4 Feb 2026: the week started Monday 2 Feb, local midnight
        ("weekly", datetime(2026, 2, 4, 10, 0), datetime(2026, 2, 1, 23, 0), datetime(2026, 2, 8, 23, 0)),
        (
            "hourly",
            datetime(2026, 2, 4, 10, 59, 59),
            datetime(2026, 2, 4, 10, 0),
            datetime(2026, 2, 4, 11, 0),
        ),
        # DST starts 29 Mar 2026 in Berlin: that local day has 23 hours
        ("daily", datetime(2026, 3, 29, 12, 0), datetime(2026, 3, 28, 23, 0), datetime(2026, 3, 29, 22, 0)),
        # DST ends 25 Oct 2026: 25 hours
        (
            "daily",
            datetime(2026, 10, 25, 12, 0),
            datetime(2026, 10, 24, 22, 0),
            datetime(2026, 10, 25, 23, 0),
        ),
    ],
)
def test_window_bounds_in_berlin(window: str, ts: datetime, start: datetime, end: datetime) -> None:
    assert window_bounds(window, ts, BERLIN) == (start, end)


def test_boundary_instant_belongs_to_the_new_window() -> None:
    start, end = window_bounds("daily", datetime(2026, 5, 1, 0, 0), UTC)
    assert (start, end) == (datetime(2026, 5, 1), datetime(2026, 5, 2))
    before = window_bounds("daily", datetime(2026, 4, 30, 23, 59, 59, 999999), UTC)
    assert before[1] == start


def test_half_hour_zone_hours_start_at_half_past_utc() -> None:
    start, end = window_bounds("hourly", datetime(2026, 2, 4, 10, 45), ZoneInfo("Asia/Kolkata"))
    assert (start, end) == (datetime(2026, 2, 4, 10, 30), datetime(2026, 2, 4, 11, 30))


def _limit(**kw: object) -> BudgetLimit:
    return BudgetLimit(name="b", limit_usd=1, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("global", ("*",)),
        ("user", ("alice",)),
        ("team", ("red",)),
        ("key", ("k1",)),
        ("model", ("small",)),
        ("route", ("auto",)),
        ("tag", ("a", "b")),
    ],
)
def test_each_scope_picks_its_value(scope: str, expected: tuple[str, ...]) -> None:
    ctx = CallContext(model="small", route="auto", user="alice", team="red", key="k1", tags=("a", "b"))
    assert scope_keys(_limit(scope=scope), ctx) == expected


def test_scope_without_a_value_does_not_apply_and_match_filters() -> None:
    assert scope_keys(_limit(scope="user"), CallContext(model="small")) == ()
    assert scope_keys(_limit(scope="tag", match=("b",)), CallContext(tags=("a", "b"))) == ("b",)
    assert scope_keys(_limit(scope="user", match=("bob",)), CallContext(user="alice")) == ()
