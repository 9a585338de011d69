"""``mm-litellm usage``: seed 001's token and cost dashboard, and seed 003's cost report export."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import Any

from mm_litellm.cli.common import add_policy_option, fail, resolve_policy

__all__ = ["register", "render"]

BAR = 28


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "usage",
        help="token usage, cost by model/route/user/team/tag/day, and budget use, from the ledger",
        description="Print the usage dashboard from the policy's ledger: totals, cost and tokens broken "
        "down --by a dimension, each budget's current window with alerts, and calls of models with no "
        "known price (listed separately, never counted as free). 'usage export' writes the ledger rows.",
    )
    _common(p)
    p.add_argument(
        "--by",
        default="model",
        help="model, route, user, team, key, tag, day, deployment, task or status (default: model)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=handle)
    verbs = p.add_subparsers(dest="usage_command", metavar="export")
    e = verbs.add_parser(
        "export",
        help="write every ledger row of the period as CSV or JSON",
        description="Write the ledger rows of the period (one per LiteLLM call) as CSV or JSON.",
    )
    _common(e)
    e.add_argument(
        "--format", choices=("csv", "json"), default=None, help="default: csv (or from --output's suffix)"
    )
    e.add_argument("--csv", metavar="FILE", help="shorthand for --format csv --output FILE")
    e.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    e.set_defaults(handler=handle_export)


def _common(p: argparse.ArgumentParser) -> None:
    add_policy_option(p)
    p.add_argument(
        "--since",
        default="24h",
        help="start: 30m, 24h, 7d, 2w or an ISO date (default: 24h); 'all' for everything",
    )
    p.add_argument("--until", help="end (exclusive): same forms as --since (default: now)")


def _period(args: argparse.Namespace) -> tuple[Any, Any]:
    from mm_litellm.budget.report import parse_time

    try:
        since = None if args.since in (None, "all") else parse_time(args.since)
        until = parse_time(args.until) if args.until else None
    except ValueError as exc:
        fail(str(exc))
    return since, until


def handle(args: argparse.Namespace) -> int:
    from mm_litellm.budget.report import BY
    from mm_litellm.usage import usage_report

    if args.by not in BY:
        fail(f"--by '{args.by}' is not known; allowed: {', '.join(BY)}")
    policy = resolve_policy(args.policy)
    since, until = _period(args)
    report = usage_report(policy, since=since, until=until, by=args.by)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(render(report, args.since))
        _say_where(report.totals.requests, storage_url(policy))
    return 0


def storage_url(policy: Any) -> str:
    from mm_litellm.storage import database_url

    return database_url(policy)


def _say_where(requests: int, url: str) -> None:
    """Name the ledger read; with nothing in it, point at the scratch ledger of ``--mock`` runs."""
    from mm_litellm.cli.common import mock_ledger_path

    print(f"\nledger: {url}", file=sys.stderr)
    scratch = mock_ledger_path()
    if requests == 0 and scratch.exists() and url != f"sqlite:///{scratch}":
        print(
            f"--mock runs are recorded apart, in {scratch}; see them with: "
            f"MM_LITELLM_DATABASE_URL=sqlite:///{scratch} mm-litellm usage",
            file=sys.stderr,
        )


def handle_export(args: argparse.Namespace) -> int:
    from mm_litellm.budget.report import EXPORT_COLUMNS, ledger_rows
    from mm_litellm.storage import engine_for

    policy = resolve_policy(args.policy)
    since, until = _period(args)
    output, fmt = args.output, args.format
    if args.csv:
        output, fmt = args.csv, "csv"
    fmt = fmt or ("json" if output and output.endswith(".json") else "csv")
    rows = ledger_rows(engine_for(policy), since, until)
    out = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout  # noqa: SIM115
    count = 0
    try:
        if fmt == "csv":
            writer = csv.DictWriter(out, fieldnames=list(EXPORT_COLUMNS))
            writer.writeheader()
            for row in rows:
                writer.writerow(row)
                count += 1
        else:
            items = list(rows)
            count = len(items)
            json.dump(items, out, indent=2)
            out.write("\n")
    finally:
        if output:
            out.close()
    if output:
        print(f"wrote {count} ledger rows to {output} ({fmt})", file=sys.stderr)
    return 0


def _money(value: float) -> str:
    """Dollars with the precision a value needs (LLM calls often cost fractions of a cent)."""
    if value >= 1:
        return f"${value:,.2f}"
    return f"${value:.4f}" if value >= 0.01 or value == 0 else f"${value:.6f}"


def _bar(fraction: float, width: int = BAR) -> str:
    filled = max(0, min(width, round(fraction * width)))
    return "█" * filled + "░" * (width - filled)


def _tok(n: int) -> str:
    return f"{n / 1000:.0f}K" if n >= 10_000 else f"{n:,}"


def render(report: Any, period: str | None = "24h") -> str:
    """The terminal dashboard (seed 001's layout) for a :class:`UsageReport`."""
    t = report.totals
    lines = [f"Token Usage & Cost ({'all time' if period in (None, 'all') else 'last ' + period})", ""]
    priced_note = f"  (+ {t.unpriced_calls} unpriced calls, not included)" if t.unpriced_calls else ""
    lines += [
        f"Total Tokens:  {t.total_tokens:,}",
        f"Total Cost:    {_money(t.cost_usd)}{priced_note}",
        f"Requests:      {t.requests:,}" + (f" ({t.errors} failed)" if t.errors else ""),
    ]
    if report.avg_latency_ms is not None:
        lines.append(f"Avg Latency:   {report.avg_latency_ms / 1000:.2f}s")
    lines += ["", f"Cost by {report.by}"]
    top = max((g.cost_usd for g in report.groups), default=0.0)
    total_cost = t.cost_usd or 1.0
    width = max([len(g.key) for g in report.groups] + [len(report.by), 5])
    for g in report.groups:
        bar = "█" * (round(g.cost_usd / top * 20) if top else 0)
        if g.unpriced_calls == g.requests:
            lines.append(f"  {bar:<20} {g.key:<{width}} unpriced")
            continue
        lines.append(f"  {bar:<20} {g.key:<{width}} {_money(g.cost_usd)} ({g.cost_usd / total_cost:.0%})")
    if not report.groups:
        lines.append("  (no calls in this period)")
    lines += [
        "",
        f"Token usage by {report.by}",
        f"  {report.by:<{width}} {'Input':>9} {'Output':>9} {'Total':>9} {'Cost':>10}",
    ]
    for g in report.groups:
        cost = _money(g.cost_usd) if g.unpriced_calls < g.requests else "unpriced"
        lines.append(
            f"  {g.key:<{width}} {_tok(g.prompt_tokens):>9} {_tok(g.completion_tokens):>9} "
            f"{_tok(g.total_tokens):>9} {cost:>10}"
        )
    if report.quarantined:
        lines += [
            "",
            f"{report.quarantined} ledger rows quarantined; see table mm_ledger_quarantine "
            "(each with its error and the row as JSON; their calls' holds expire at their estimate)",
        ]
    if report.unpriced:
        lines += ["", "Unpriced calls (no price in the policy or LiteLLM's table; cost unknown, not zero)"]
        for g in report.unpriced:
            lines.append(f"  {g.key:<{width}} {g.requests} calls, {g.total_tokens:,} tokens")
    for b in report.budgets:
        scope = b.budget if b.scope == "global" else f"{b.budget} ({b.scope}={b.scope_key})"
        usd = b.unit == "usd"

        def amount(v: float, usd: bool = usd) -> str:
            if not usd:
                return f"{int(v):,} tok"
            return f"${v:,.2f}" if v >= 1 or v == 0 else _money(v)

        lines += [
            "",
            f"Budget {scope}, {b.window}: {amount(b.spent)} / {amount(b.limit)} ({b.fraction:.0%} used)"
            + (f", {amount(b.reserved)} reserved in flight" if b.reserved > 1e-9 else ""),
            f"  [{_bar(b.fraction)}]  resets {b.resets_at}; on exceed: {b.on_exceed}",
        ]
        if b.alerts_sent:
            lines.append("  alerts sent at " + ", ".join(f"{a:.0%}" for a in b.alerts_sent))
    return "\n".join(lines)
