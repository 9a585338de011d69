"""A PNG of a cost-quality curve with its hull and the baselines (needs the ``eval`` extra)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mm_litellm.evaluation.errors import EvaluationError
from mm_litellm.evaluation.metrics import CurvePoint, nondecreasing_hull

__all__ = ["INSTALL_HINT", "plot_curve"]

INSTALL_HINT = "plotting needs matplotlib: pip install 'mm-litellm[eval]' (or pip install matplotlib)"


def plot_curve(
    path: str | os.PathLike[str],
    points: Sequence[CurvePoint],
    baselines: dict[str, Any],
    *,
    title: str,
    label: str = "policy",
) -> None:
    """Write the curve (quality against dollars per 1,000 requests) and the baselines to ``path``."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display needed
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise EvaluationError(INSTALL_HINT) from exc
    weak, strong, oracle = baselines["always_cheapest"], baselines["always_strongest"], baselines["oracle"]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    pts = sorted(points, key=lambda p: p.cost_per_1k)
    ax.plot([p.cost_per_1k for p in pts], [p.quality for p in pts], "o-", label=f"{label} (sweep)", zorder=3)
    step = max(1, len(pts) // 12)  # a long sweep (e.g. --values auto) labels every few points
    for i, p in enumerate(pts):
        if i % step and i != len(pts) - 1:
            continue
        ax.annotate(
            f"{p.value:.3g}" if isinstance(p.value, float) else str(p.value),
            (p.cost_per_1k, p.quality),
            textcoords="offset points",
            xytext=(4, 4 if i % 2 else -10),
            fontsize=7,
        )
    hull = nondecreasing_hull([(p.cost_per_1k, p.quality) for p in pts])
    ax.plot(
        [h[0] for h in hull],
        [h[1] for h in hull],
        "--",
        color="tab:blue",
        alpha=0.5,
        label="non-decreasing hull (AIQ)",
    )
    ax.plot(
        [weak["cost_per_1k"], strong["cost_per_1k"]],
        [weak["quality"], strong["quality"]],
        ":",
        color="grey",
        label="random mix (matched cost)",
    )
    ax.scatter(
        [weak["cost_per_1k"]],
        [weak["quality"]],
        marker="s",
        color="tab:green",
        label=f"always-cheapest ({weak['detail']})",
        zorder=4,
    )
    ax.scatter(
        [strong["cost_per_1k"]],
        [strong["quality"]],
        marker="s",
        color="tab:red",
        label=f"always-strongest ({strong['detail']})",
        zorder=4,
    )
    ax.scatter(
        [oracle["cost_per_1k"]],
        [oracle["quality"]],
        marker="*",
        s=120,
        color="gold",
        edgecolor="black",
        label="oracle",
        zorder=4,
    )
    singles = baselines.get("single_models")
    if singles:  # more than two models: the best mix of single models is the honest reference
        points_ = [(v["cost_per_1k"], v["quality"]) for v in singles.values()]
        ax.scatter(
            [c for c, _ in points_],
            [q for _, q in points_],
            marker="x",
            color="grey",
            s=20,
            label="single models",
            zorder=3,
        )
        mix = nondecreasing_hull(points_)
        ax.plot(
            [c for c, _ in mix],
            [q for _, q in mix],
            "-.",
            color="grey",
            alpha=0.6,
            label="best mix of single models",
        )
    ax.axhline(
        0.95 * strong["quality"], color="tab:red", alpha=0.25, linewidth=1, label="95% of always-strongest"
    )
    ax.set_xlabel("cost, USD per 1,000 requests")
    ax.set_ylabel("quality (mean score)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
