"""Plain-text renderings of the evaluation reports (the JSON form is the report dict itself)."""

from __future__ import annotations

from typing import Any

__all__ = ["render_calibration", "render_curve", "render_diff", "render_evaluation"]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _header(r: dict[str, Any]) -> list[str]:
    by_data: dict[str, list[str]] = {}
    for policy_model, data_model in r["mapping"].items():
        by_data.setdefault(data_model, []).append(policy_model)
    mapping = "; ".join(f"{', '.join(p)} = {d}" for d, p in by_data.items())
    lines = [
        f"data:    {r['data']} (split {r['split']}, seed {r['seed']}): {r['rows_evaluated']:,} of "
        f"{r['rows_in_file']:,} rows",
        f"models:  {mapping}",
        f"prices:  {r.get('prices') or 'row cost_usd, else the prices of the policy models'}",
    ]
    if r["rows_dropped"]:
        lines.append("dropped: " + "; ".join(f"{n} rows: {why}" for why, n in r["rows_dropped"].items()))
    if r.get("metadata_labels"):
        lines.append(
            f"visible: labels {', '.join(r['metadata_labels'])} passed to the router as request metadata"
        )
    lines += [f"note:    {n}" for n in r["notes"]]
    return lines


def _row(name: str, quality: float, cost: float, strong_q: float, strong_c: float, extra: str = "") -> str:
    q_rel = quality / strong_q if strong_q else 0.0
    c_rel = cost / strong_c if strong_c else 0.0
    return f"  {name:<24} {quality:>8.4f} {q_rel * 100:>8.1f}% {cost:>10.4f} {c_rel * 100:>8.1f}%  {extra}"


def _table(r: dict[str, Any], label: str, res: dict[str, Any]) -> list[str]:
    b = r["baselines"]
    sq, sc = b["always_strongest"]["quality"], b["always_strongest"]["cost_per_1k"]
    share = ", ".join(f"{m} {v * 100:.1f}%" for m, v in res["share"].items())
    lines = [f"  {'':<24} {'quality':>8} {'of best':>9} {'$/1k req':>10} {'of best':>9}"]
    lines.append(_row(label, res["quality"], res["cost_per_1k"], sq, sc, share))
    for key, name in (
        ("always_cheapest", "always-cheapest"),
        ("always_strongest", "always-strongest"),
        ("random_matched_cost", "random, matched cost"),
        ("best_single_within_cost", "best single, cost <="),
        ("single_mix_matched_cost", "single-model mix, same $"),
        ("oracle", "oracle"),
    ):
        if b.get(key):
            lines.append(_row(name, b[key]["quality"], b[key]["cost_per_1k"], sq, sc, b[key]["detail"]))
    return lines


def render_evaluation(r: dict[str, Any]) -> str:
    res = r["result"]
    lines = [*_header(r), f"policy:  {r['policy']} (route {r['route']})", ""]
    lines += _table(r, "policy", res)
    lines.append(f"\n  performance gap recovered (PGR): {_pct(res['pgr'])}")
    rules = ", ".join(f"{k} {v * 100:.1f}%" for k, v in res["rules"].items())
    lines.append(f"  decided by: {rules}")
    tasks = res["per_task"]
    if len(tasks) > 1:
        lines.append(f"\n  per task ({len(tasks)}):        {'n':>6} {'quality':>8} {'$/1k':>9}  share")
        for task, t in sorted(tasks.items(), key=lambda kv: -kv[1]["n"]):
            share = ", ".join(f"{m} {v * 100:.0f}%" for m, v in t["share"].items())
            lines.append(
                f"  {task[:30]:<30} {t['n']:>6} {t['quality']:>8.4f} {t['cost_per_1k']:>9.4f}  {share}"
            )
    s = r["seconds"]
    lines.append(
        f"\nevaluated {r['rows_evaluated']:,} rows in {s['load'] + s['replay']:.2f} s "
        f"(load and price {s['load']:.2f} s, replay {s['replay']:.2f} s)"
    )
    return "\n".join(lines)


def render_curve(r: dict[str, Any]) -> str:
    b = r["baselines"]
    sq, sc = b["always_strongest"]["quality"], b["always_strongest"]["cost_per_1k"]
    lines = [*_header(r), f"policy:  {r['policy']}", f"knob:    {r['knob']}", ""]
    lines.append(f"  {'value':<22} {'quality':>8} {'of best':>9} {'$/1k req':>10} {'of best':>9}  {'PGR':>7}")
    for p in r["points"]:
        lines.append(
            _row(str(p["value"])[:22], p["quality"], p["cost_per_1k"], sq, sc, f"{_pct(p['pgr']):>7}")
        )
    m = r["metrics"]
    lo, hi = m["apgr_strong_share_range"]
    lines += [
        "",
        f"  APGR (RouteLLM, x = strong-model call share {lo * 100:.0f}-{hi * 100:.0f}%): "
        f"{_fmt(m['apgr_strong_share'])}",
        f"  APGR (x = cost normalised between the baselines): {_fmt(m['apgr_normalized_cost'])}",
        f"  CPT(50%): {_pct(m['cpt50_strong_share'])} strong calls, {_money(m['cpt50_cost_per_1k'])} per 1k "
        f"({_pct(m['cpt50_cost_vs_strongest'])} of always-strongest)",
        f"  CPT(80%): {_pct(m['cpt80_strong_share'])} strong calls, {_money(m['cpt80_cost_per_1k'])} per 1k "
        f"({_pct(m['cpt80_cost_vs_strongest'])} of always-strongest)",
        f"  AIQ (RouterBench, ${m['aiq_window'][0]:.4f}-${m['aiq_window'][1]:.4f} per 1k): {_fmt(m['aiq'])}"
        f"   random router {_fmt(m['aiq_random'])}, oracle {_fmt(m['aiq_oracle'])}",
    ]
    if "single_models" in b:
        n = len(b["single_models"])
        lines.append(
            f"  AIQ of the best mix of single models (the honest baseline for {n} models): "
            f"{_fmt(m.get('aiq_single_models'))}"
        )
    s = r["seconds"]
    lines.append(
        f"\n{len(r['points'])} points x {r['rows_evaluated']:,} rows in {s['sweep']:.2f} s "
        f"({s['per_point']:.2f} s per point; load {s['load']:.2f} s)"
    )
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _money(value: float | None) -> str:
    return "not reached" if value is None else f"${value:.4f}"


def render_diff(r: dict[str, Any]) -> str:
    conf = int(r["bootstrap"]["confidence"] * 100)
    lines = [*_header(r), ""]
    for side in ("old", "new"):
        s = r[side]
        share = ", ".join(f"{m} {v * 100:.1f}%" for m, v in s["share"].items())
        lines.append(
            f"  {side}: {s['policy']}: quality {s['quality']:.4f}, ${s['cost_per_1k']:.4f} per 1k ({share})"
        )
    lines.append(
        f"\n  {r['changed']:,} of {r['rows_evaluated']:,} requests change model ({_pct(r['changed_share'])})"
    )
    for t, n in r["transitions"].items():
        lines.append(f"    {t}: {n:,}")
    q, c = r["delta_quality_ci"], r["delta_cost_per_1k_ci"]
    lines += [
        f"  quality change:   {r['delta_quality']:+.4f}  ({conf}% CI {q[0]:+.4f} .. {q[1]:+.4f})",
        f"  cost change:      {r['delta_cost_per_1k']:+.4f} $ per 1k requests  "
        f"({conf}% CI {c[0]:+.4f} .. {c[1]:+.4f})",
        f"  (paired bootstrap over rows: {r['bootstrap']['samples']} resamples, "
        f"seed {r['bootstrap']['seed']})",
    ]
    if r["changed_by_task"]:
        lines.append(
            "  most changed tasks: " + ", ".join(f"{t} {n}" for t, n in r["changed_by_task"].items())
        )
    return "\n".join(lines)


def render_calibration(r: dict[str, Any]) -> str:
    fit = r["fit"]
    lines = [*_header(r["test"]), ""]
    if fit["method"] == "knob":
        lines.append(f"fitted on train ({r['train_rows']:,} rows): {fit['knob']} = {fit['value']}")
    else:
        lines += _groups(fit, r["train_rows"])
    met = "met" if fit["met_on_train"] else "NOT met (closest configuration kept)"
    lines.append(f"target: {r['target']} on train: {met}\n\ntest split:")
    lines += _table(r["test"], "original policy", r["test"]["result"])
    cal = r["calibrated"]
    b = r["test"]["baselines"]
    lines.append(
        _row(
            "calibrated policy",
            cal["quality"],
            cal["cost_per_1k"],
            b["always_strongest"]["quality"],
            b["always_strongest"]["cost_per_1k"],
            ", ".join(f"{m} {v * 100:.1f}%" for m, v in cal["share"].items()),
        )
    )
    lines.append(f"  random at the calibrated cost: {r['random_at_calibrated']['quality']:.4f}")
    goal = r["goal"]
    lines.append(
        f"\non test: {_pct(goal['quality_vs_strongest'])} of always-strongest quality at "
        f"{_pct(goal['cost_vs_strongest'])} of its cost; PGR {_pct(cal['pgr'])}"
    )
    lines.append(f"wrote {r['output']}")
    return "\n".join(lines)


def _groups(fit: dict[str, Any], train_rows: int) -> list[str]:
    """One line per group: its facts' values, train rows, the model it gets, train quality and cost."""
    kept = fit["rows_kept_as_before"]
    if fit["position"] == "first":
        left = "left as the route decides them"
        before = f"; the fitted rules come before the route's own rules (default '{fit['default']}')"
    else:
        left = f"left to the default '{fit['default']}'"
        before = f"; {kept:,} rows decided by the route's own rules as before" if kept else ""
    lines = [
        f"fitted on train ({train_rows:,} rows): a model per value of {fit['fact']}: {fit['groups']} groups "
        f"fitted, {fit['groups_left_to_default']} {left} (under {fit['min_rows']} train rows or a fact "
        f"missing){before}",
        f"  {'group':<40} {'rows':>6}  {'model':<24} {'quality':>8} {'$/1k req':>10}",
    ]
    for g in fit["groups_detail"]:
        model = g["model"] if g["fitted"] else f"({g['model']}: {g.get('how', 'default')})"
        lines.append(
            f"  {g['group'][:40]:<40} {g['rows']:>6,}  {model[:24]:<24} {g['train_quality']:>8.4f} "
            f"{g['train_cost_per_1k']:>10.4f}"
        )
    return lines
