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


def print_summary(rows: list[ResultRow], *, console: Console | None = None, title: str = "results") -> None:
    """Prints the summary pivot as a rich table."""
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
