"""Regenerate the measured figures of docs/evaluation.md from the recorded data, so they cannot go stale.

Every figure lives in docs/evaluation.md between ``<!-- figures:NAME -->`` and
``<!-- /figures:NAME -->``; this script runs the commands behind it (``mm-litellm policy evaluate``
and ``calibrate`` as documented, in process, from the repository root, and ``bench/learned_routing.py``
for the learned routes) on ``../shared/data/routing`` and rewrites the region. Timings are not
figures here: they depend on the machine (``bench/evaluation.py`` measures them).

    python scripts/eval_figures.py                  # rewrite the regions
    python scripts/eval_figures.py --check          # exit 1 and print a diff when the doc is stale
    python scripts/eval_figures.py --only sweep,calibrated [--check]

CI runs ``--check`` through tests/docs/test_eval_figures.py. About 1.5 minutes on a shared 2-core
machine, most of it training the learned routers.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib.util
import io
import json
import os
import re
import sys
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "evaluation.md"
DATA = Path("..") / "shared" / "data" / "routing"  # from the repository root, as the docs write it
MMLU = str(DATA / "routellm_mmlu_gpt4_vs_mixtral.jsonl.gz")
GSM8K = str(DATA / "routellm_gsm8k_gpt4_vs_mixtral.jsonl.gz")
ARENA = str(DATA / "arena_bench_v1_15models_judged.jsonl.gz")
EXAMPLE, TWO = "config/policy.yaml", "config/evaluation/gpt4_mixtral_policy.yaml"
ROUTELLM, ARENA_CONFIG = "config/evaluation/routellm.yaml", "config/evaluation/arena_bench.yaml"
LENGTH = "routes.auto.rules[long-prompt].when.input_tokens.gt"
SETS = {  # name in the tables: (data, eval config, extra options)
    "MMLU": (MMLU, ROUTELLM, []),
    "GSM8K": (GSM8K, ROUTELLM, ["--resplit"]),  # its rows all say split: test
    "arena-bench": (ARENA, ARENA_CONFIG, []),
}
SHORT = {
    "mistralai/Mixtral-8x7B-Instruct-v0.1": "Mixtral",
    "gpt-4-1106-preview": "GPT-4-turbo",
    "gpt-4-turbo-2024-04-09": "GPT-4-turbo",
    "mistralai/Mistral-7B-Instruct-v0.1": "Mistral-7B",
}


def cli(*args: str) -> tuple[dict[str, Any], str]:
    """``mm-litellm ARGS --json -o FILE`` in this process: the JSON report and the printed text."""
    from mm_litellm.cli.main import main

    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main([*args, "-o", str(report)])
        if code:
            raise SystemExit(f"mm-litellm {' '.join(args)} exited {code}:\n{out.getvalue()}")
        return json.loads(report.read_text(encoding="utf-8")), out.getvalue()


def evaluate(policy: str, data_set: str, *extra: str) -> dict[str, Any]:
    data, config, options = SETS[data_set]
    args = ["policy", "evaluate", "--policy", policy, "--data", data, "--eval-config", config]
    return cli(*args, *options, *extra)[0]


def calibrate(policy: str, data_set: str, *extra: str) -> dict[str, Any]:
    data, config, options = SETS[data_set]
    with tempfile.TemporaryDirectory() as tmp:
        args = ["policy", "calibrate", "--policy", policy, "--data", data, "--eval-config", config]
        return cli(*args, *options, *extra, "--out", str(Path(tmp) / "calibrated.yaml"))[0]


def money(value: float) -> str:
    return f"${value:.2f}" if value >= 10 else f"${value:.4f}"


def pct(value: float) -> str:
    return f"{value * 100:.1f} %"


def recorded(report: dict[str, Any], which: str) -> str:
    model = report["mapping"].get(report["baselines"][which]["detail"].split("/")[0], "")
    return SHORT.get(model, model)


# --- the figures -----------------------------------------------------------------------------


def fig_evaluate_example() -> list[str]:
    """The table `policy evaluate` prints for the two-model policy on MMLU."""
    _report, text = cli(*("policy", "evaluate", "--policy", TWO, "--data", MMLU, "--eval-config", ROUTELLM))
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "quality   of best" in line)
    end = next(i for i in range(start, len(lines)) if not lines[i].strip())
    return ["```", *lines[start:end], "```"]


def fig_baselines() -> list[str]:
    out = [
        "| data (test rows) | always-cheapest | always-strongest | oracle |",
        "|---|---|---|---|",
    ]
    for name in SETS:
        r = evaluate(EXAMPLE, name)
        b = r["baselines"]
        dropped = sum(r["rows_dropped"].values())
        rows = f"{r['rows_evaluated']:,}" + (f"; {dropped} rows without a score dropped" if dropped else "")
        cells = [
            f"{b[k]['quality']:.4f} @ {money(b[k]['cost_per_1k'])} ({recorded(r, k)})"
            for k in ("always_cheapest", "always_strongest")
        ]
        oracle = f"{b['oracle']['quality']:.4f} @ {money(b['oracle']['cost_per_1k'])}"
        out.append(f"| {name} ({rows}) | {cells[0]} | {cells[1]} | {oracle} |")
    return out


def _note(name: str, route: str, r: dict[str, Any]) -> str:
    res, b = r["result"], r["baselines"]
    escalation = (res.get("replayed") or {}).get("escalation")
    if escalation and escalation["escalated"] == 0:
        silent = escalation["no_answer_recorded"]
        return f"{r['rows_evaluated']:,} rows, {silent:,} without a recorded answer: nothing escalates"
    if escalation:
        times = res["cost_per_1k"] / b["always_strongest"]["cost_per_1k"]
        return (
            f"recorded answers are bare numbers, which the default scorer reads as unsure: "
            f"{escalation['escalated']} of {escalation['rows_with_chain']} rows escalate "
            f"({escalation['hops']:,} hops), at {times:.1f}x always-strongest's cost"
        )
    if route == "auto":
        rules = {k: v for k, v in res["rules"].items() if k != "(route default)"}
        shown = ", ".join(f"`{k}` {pct(v)}" for k, v in sorted(rules.items(), key=lambda kv: -kv[1]))
        return f"rules deciding: {shown}" if shown else "every row goes to the route's default"
    return ""


def fig_example_policy() -> list[str]:
    out = [
        "| data | route | quality | cost | random at that cost | note |",
        "|---|---|---|---|---|---|",
    ]
    kinds = {
        "auto": "`auto` (task rules)",
        "cheap": "`cheap` (cost_optimized)",
        "careful": "`careful` (escalation)",
    }
    for name in SETS:
        for route in ("auto", "cheap", "careful") if name != "arena-bench" else ("auto", "cheap"):
            r = evaluate(EXAMPLE, name, "--route", route)
            res, b = r["result"], r["baselines"]
            over = res["cost_per_1k"] > b["always_strongest"]["cost_per_1k"]
            rnd = "-" if over else f"{b['random_matched_cost']['quality']:.4f}"
            out.append(
                f"| {name} | {kinds[route]} | {res['quality']:.4f} | {money(res['cost_per_1k'])} | {rnd} "
                f"| {_note(name, route, r)} |"
            )
    return out


CALIBRATIONS: list[tuple[str, str, str, list[str]]] = [  # data, policy, what, options
    ("MMLU", EXAMPLE, "example, `--by metadata.mmlu_domain` (subject as caller metadata), cost <= 50 %",
     ["--by", "metadata.mmlu_domain", "--meta-label", "mmlu_domain"]),
    ("MMLU", TWO, "two-model, `--by metadata.mmlu_domain`, quality >= 95 %",
     ["--by", "metadata.mmlu_domain", "--meta-label", "mmlu_domain",
      "--target", "quality", "--min-quality", "0.95"]),
    ("MMLU", EXAMPLE, "example, `--by task` (text classifier), cost <= 50 %",
     ["--by", "task"]),
    ("MMLU", EXAMPLE, "example, `--by task --by tier` (classifier task and tier), cost <= 50 %",
     ["--by", "task", "--by", "tier"]),
    ("MMLU", TWO, "two-model, `--knob` prompt-length threshold (fitted: {value} tokens), cost <= 50 %",
     ["--knob", LENGTH, "--values", "0:400:21"]),
    ("GSM8K", EXAMPLE, "example, `--by task`, cost <= 50 %", ["--by", "task"]),
    ("GSM8K", TWO, "two-model, prompt-length threshold (fitted: {value} tokens), cost <= 50 %",
     ["--knob", LENGTH, "--values", "0:200:21"]),
    ("arena-bench", EXAMPLE, "example, `--by task`, cost <= 50 %", ["--by", "task"]),
]  # fmt: skip


def fig_calibrated() -> list[str]:
    out = [
        "| data | policy, fitted signal, target | quality (of strongest) | cost (of strongest) "
        "| random at that cost |",
        "|---|---|---|---|---|",
    ]
    for name, policy, what, options in CALIBRATIONS:
        r = calibrate(policy, name, *options)
        cal, goal = r["calibrated"], r["goal"]
        met = goal["quality_vs_strongest"] >= 0.95 and goal["cost_vs_strongest"] <= 0.5
        bold = "**" if met else ""
        out.append(
            f"| {name} | {what.format(value=r['fit'].get('value'))} | {cal['quality']:.4f} "
            f"({bold}{pct(goal['quality_vs_strongest'])}{bold}) | {money(cal['cost_per_1k'])} "
            f"({bold}{pct(goal['cost_vs_strongest'])}{bold}) | {r['random_at_calibrated']['quality']:.4f} |"
        )
    return out


def fig_sweep() -> list[str]:
    values = "0,40,60,80,100,120,160,200,300,500,100000"
    r = evaluate(TWO, "MMLU", "--sweep", LENGTH, "--values", values)
    m = r["metrics"]
    same = abs(m["aiq"] - m["aiq_random"]) < 5e-5
    text = (
        f"The MMLU prompt-length sweep (`gpt4_mixtral_policy.yaml`, {len(r['points'])} values) scores APGR "
        f"{m['apgr_strong_share']:.3f} on RouteLLM's strong-call axis but {m['apgr_normalized_cost']:.3f} on "
        f"normalised cost, CPT(50 %) at {pct(m['cpt50_strong_share'])} strong calls "
        f"({pct(m['cpt50_cost_vs_strongest'])} of GPT-4's cost), CPT(80 %) at {pct(m['cpt80_strong_share'])} "
        f"({pct(m['cpt80_cost_vs_strongest'])}), and AIQ {m['aiq']:.4f}, "
        + (
            f"exactly the random router's {m['aiq_random']:.4f} (its points lie under the random chord; "
            if same
            else f"beside the random router's {m['aiq_random']:.4f} ("
        )
        + f"the oracle's AIQ is {m['aiq_oracle']:.4f})."
    )
    return textwrap.wrap(text, width=108, break_on_hyphens=False)


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("learned_routing", ROOT / "bench" / "learned_routing.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fig_learned() -> list[str]:
    bench = _bench()
    out = [
        "| data | lambda fitted on train for | quality (of strongest) | cost (of strongest) "
        "| AIQ: learned / random / best rules | curve vs single-model mix |",
        "|---|---|---|---|---|---|",
    ]
    names = {
        "mmlu": "MMLU",
        "gsm8k": "GSM8K",
        "mt-bench": "MT-bench",
        "arena-bench": "arena-bench (11 models)",
    }
    targets = {"mmlu": "cost <= 45%", "gsm8k": "quality >= 95%", "mt-bench": "cost <= 45%"}
    with tempfile.TemporaryDirectory() as tmp:
        for key, name in names.items():
            r = bench.run(key, ROOT / DATA, Path(tmp))
            label = targets.get(key, "cost <= 50%")
            f = r["fitted_on_train"][label]
            x = r["above_single_mix"]
            bold = "**" if f["quality_vs_strongest"] >= 0.95 and f["cost_vs_strongest"] <= 0.5 else ""
            mix = f" (single-model mix {r['aiq_single_models']:.4f})" if key == "arena-bench" else ""
            check = (
                f"on or above at all {x['points']} points"
                if x["ok"]
                else f"**under it at {len(x['below'])} of {x['points']} points** "
                f"(worst {x['worst_gap']:+.4f})"
            )
            out.append(
                f"| {name} | {label.replace('%', ' %')} | {f['quality']:.4f} "
                f"({bold}{pct(f['quality_vs_strongest'])}{bold}) | {money(f['cost_per_1k'])} "
                f"({bold}{pct(f['cost_vs_strongest'])}{bold}) | "
                f"{r['aiq_learned']:.4f} / {r['aiq_random']:.4f} / {r['aiq_best_rules']:.4f}{mix} | {check} |"
            )
    return out


FIGURES: dict[str, Callable[[], list[str]]] = {
    "evaluate-example": fig_evaluate_example,
    "baselines": fig_baselines,
    "example-policy": fig_example_policy,
    "calibrated": fig_calibrated,
    "sweep": fig_sweep,
    "learned": fig_learned,
}


def replace_region(text: str, name: str, body: list[str]) -> str:
    """``text`` with the lines between the markers of ``name`` replaced by ``body``."""
    pattern = re.compile(
        rf"(<!-- figures:{re.escape(name)} -->\n)(.*?)(<!-- /figures:{re.escape(name)} -->)", re.S
    )
    found = pattern.findall(text)
    if len(found) != 1:
        raise SystemExit(
            f"{DOC.relative_to(ROOT)}: expected one region <!-- figures:{name} --> ... "
            f"<!-- /figures:{name} -->, found {len(found)}"
        )
    return pattern.sub(lambda m: m.group(1) + "\n".join(body) + "\n" + m.group(3), text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff when the doc is stale")
    parser.add_argument("--only", help="comma-separated figures: " + ", ".join(FIGURES))
    args = parser.parse_args(argv)
    names = args.only.split(",") if args.only else list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        parser.error(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(FIGURES)}")
    os.chdir(ROOT)  # the commands use the paths the docs show
    if not DATA.is_dir():
        print(f"no recorded data in {(ROOT / DATA).resolve()}: nothing to regenerate", file=sys.stderr)
        return 2
    old = DOC.read_text(encoding="utf-8")
    new = old
    for name in names:
        new = replace_region(new, name, FIGURES[name]())
    if new == old:
        print(f"{DOC.relative_to(ROOT)}: figures up to date ({', '.join(names)})")
        return 0
    if args.check:
        diff = difflib.unified_diff(
            old.splitlines(True), new.splitlines(True), "docs/evaluation.md", "regenerated"
        )
        sys.stdout.writelines(diff)
        print(f"\n{DOC.relative_to(ROOT)} is stale: run python scripts/eval_figures.py", file=sys.stderr)
        return 1
    DOC.write_text(new, encoding="utf-8")
    print(f"{DOC.relative_to(ROOT)}: rewrote {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
