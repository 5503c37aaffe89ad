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
        parts = [] if clean is None else [f"clean {100 * clean:.2f}"]
        for key, value in values.items():
            if key.endswith(("_ci95_low", "_ci95_high")):
                continue
            text = f"{key} {100 * value:.2f}"
            if f"{key}_ci95_low" in values:
                text += f" ({100 * values[key + '_ci95_low']:.1f}–{100 * values[key + '_ci95_high']:.1f})"
            parts.append(text)
        lines.append((suite, max(r.n for r in mine), " · ".join(parts)))
    return lines


def print_summary(rows: list[ResultRow], *, console: Console | None = None, title: str = "results",
                  full: bool = False) -> None:
    """Prints one line per suite with its scores, or (``full``) the summary pivot of every condition."""
    if not full:
        table = Table(title=title)
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


def plot_accuracy(rows: list[ResultRow], path: Path, *, metric: str = "top1") -> Path:
    """Bar chart of ``metric`` (in %) per suite/condition/severity, written atomically as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    frame = rows_to_frame([r for r in rows if r.metric == metric])
    labels = [f"{c}" + (f"/{s}" if s else "") for c, s in zip(frame["condition"], frame["severity"], strict=True)]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(labels) + 2), 3.2))
    ax.bar(labels, frame["value"] * 100, color="#4c72b0")
    ax.set_ylabel(f"{metric} (%)")
    ax.set_ylim(0, 100)
    ax.set_title(", ".join(sorted(set(frame["model_id"]))))
    ax.tick_params(axis="x", rotation=45 if len(labels) > 6 else 0)
    fig.tight_layout()
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png", dpi=120)
    plt.close(fig)
    return path
