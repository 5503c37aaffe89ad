"""The summary pivot printed after a run, and its plot."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from ssl_robustbench.fileio import atomic_open
from ssl_robustbench.results.rows import ResultRow, rows_to_frame


def summary_frame(rows: list[ResultRow]) -> pd.DataFrame:
    """One line per (model, suite, condition, severity), one column per metric (values in %), plus ``n``."""
    frame = rows_to_frame(rows)
    table = frame.pivot_table(index=["model_id", "suite", "condition", "severity"], columns="metric",
                              values="value", aggfunc="first", sort=False) * 100
    table["n"] = frame.groupby(["model_id", "suite", "condition", "severity"], sort=False)["n"].first()
    return table.reset_index()


def compact_lines(rows: list[ResultRow]) -> list[tuple[str, int, str]]:
    """One line per suite: (suite, images, its scores in %) — the clean top-1 of the suite's images, then its
    aggregates (ranking one first; an interval as ``low–high``)."""
    from ssl_robustbench.results.card import aggregate

    lines = []
    for suite in dict.fromkeys(r.suite for r in rows):
        mine = [r for r in rows if r.suite == suite]
        values = aggregate(suite, mine)
        clean = next((r.value for r in mine if r.condition in ("clean", "e:ori") and r.metric == "top1"), None)
        if suite == "clean":
            lines.append((suite, max(r.n for r in mine), f"top1 {100 * clean:.2f}" if clean is not None else ""))
            continue
        n_clean = next((r.n for r in mine if r.condition in ("clean", "e:ori") and r.metric == "top1"), None)
        parts = [] if clean is None else [f"clean {100 * clean:.2f} (same {n_clean} images)"]
        for key, value in values.items():
            if key.endswith(("_ci95_low", "_ci95_high")):
                continue
            text = f"{key} {100 * value:.2f}"
            if f"{key}_ci95_low" in values:
                text += f" ({100 * values[key + '_ci95_low']:.1f}–{100 * values[key + '_ci95_high']:.1f})"
            parts.append(text)
        if suite == "c" and "mean_top1" in values and "mce_alexnet" not in values:
            parts.append("mCE n/a (only on ImageNet-1k val)")
        lines.append((suite, max(r.n for r in mine), " · ".join(parts)))
    return lines


def print_summary(rows: list[ResultRow], *, console: Console | None = None, title: str = "results",
                  full: bool = False) -> None:
    """Prints one line per suite with its scores, or (``full``) the summary pivot of every condition."""
    if not full:
        table = Table(title=title, min_width=len(title) + 4)  # the title on one line
        for col, justify in (("suite", "left"), ("n", "right"), ("scores (%)", "left")):
            table.add_column(col, justify=justify)
        for suite, n, scores in compact_lines(rows):
            table.add_row(suite, str(n), scores)
        (console or Console()).print(table)
        return
    frame = summary_frame(rows)
    table = Table(title=title)
    for col in frame.columns:
        table.add_column(str(col), justify="right" if frame[col].dtype.kind in "fi" else "left")
    for rec in frame.itertuples(index=False):
        table.add_row(*(f"{v:.2f}" if isinstance(v, float) else str(v) for v in rec))
    (console or Console()).print(table)


def plot_accuracy(rows: list[ResultRow], path: Path) -> Path:
    """One panel per suite, written atomically as PNG: clean top-1; ImageNet-C mean top-1 vs severity per
    corruption group; PD top-1 per view, black vs padded; E top-1 per attribute edit; adversarial SA / RA / AA;
    any other suite top-1 per condition. All in %, integer severity ticks."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ssl_robustbench.results.plots import plain_label

    suites = list(dict.fromkeys(r.suite for r in rows))
    cols = min(3, len(suites))
    lines = -(-len(suites) // cols)
    fig, axes = plt.subplots(lines, cols, figsize=(4.6 * cols, 3.4 * lines), squeeze=False)
    for ax, suite in zip(axes.flat, suites, strict=False):
        _panel(ax, suite, [r for r in rows if r.suite == suite])
        ax.set_title(plain_label(suite if suite != "c" else "c (ImageNet-C)"))
    for ax in list(axes.flat)[len(suites):]:
        ax.axis("off")
    fig.suptitle(plain_label(", ".join(sorted({r.model_id for r in rows}))), fontsize=10)
    fig.tight_layout()
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png", dpi=110)
    plt.close(fig)
    return path


def _panel(ax, suite: str, rows: list[ResultRow]) -> None:
    """One suite's panel of ``plot_accuracy``."""
    top1 = {(r.condition, r.severity): 100 * r.value for r in rows if r.metric == "top1"}
    clean = top1.get(("clean", 0))
    ax.set_ylim(0, 100)
    ax.set_ylabel("top-1 (%)")
    if suite == "adversarial":
        summary = {r.metric: 100 * r.value for r in rows if r.condition == "adversarial:all"}
        names = [m for m in ("sa", "ra", "aa") if m in summary]
        bars = ax.bar([m.upper() for m in names], [summary[m] for m in names], color=["#4c72b0", "#dd8452", "#c44e52"])
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        ax.set_ylabel("accuracy (%)")
        return
    severities = sorted({s for (_, s) in top1 if s > 0})
    if severities:  # ImageNet-C: mean over each corruption group per severity
        from ssl_robustbench.transforms.corruptions import group_of

        groups: dict[str, dict[int, list[float]]] = {}
        for (cond, sev), value in top1.items():
            if sev > 0 and cond.startswith("c:"):
                groups.setdefault(group_of(cond[2:]), {}).setdefault(sev, []).append(value)
        for group, by_sev in groups.items():
            levels = sorted(by_sev)
            ax.plot(levels, [sum(by_sev[s]) / len(by_sev[s]) for s in levels], marker="o", label=group)
        if clean is not None:
            ax.axhline(clean, color="#999", ls="--", lw=0.8, label="clean")
        ax.set_xticks(severities)
        ax.set_xlabel("severity")
        ax.legend(fontsize=7, ncols=2, loc="lower left")
        return
    shifted = [(c, v) for (c, _), v in top1.items() if c != "clean"]
    if suite == "pd" and shifted:
        views = list(dict.fromkeys(c.split(":", 1)[1].split("/")[0] for c, _ in shifted))
        for i, background in enumerate(("black", "padded")):
            values = [top1.get((f"pd:{v}/{background}", 0), float("nan")) for v in views]
            ax.bar([j + (i - 0.5) * 0.38 for j in range(len(views))], values, 0.38, label=background)
        ax.set_xticks(range(len(views)), views)
        ax.legend(fontsize=7)
    else:
        labels = [c.split(":", 1)[-1] for c, _ in shifted] or ["clean"]
        bars = ax.bar(labels, [v for _, v in shifted] or [clean or 0.0], color="#4c72b0",
                      width=0.8 if shifted else 0.4)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
        ax.tick_params(axis="x", rotation=30 if len(labels) > 3 else 0, labelsize=8)
    if clean is not None and shifted:
        ax.axhline(clean, color="#999", ls="--", lw=0.8)
