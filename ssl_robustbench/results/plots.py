"""Leaderboard plots (PNG): clean accuracy per model, clean vs robust scatter per suite, accuracy vs severity,
and per-condition bars (e.g. the PD subsets)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ssl_robustbench.fileio import atomic_open

if TYPE_CHECKING:
    from ssl_robustbench.results.card import ResultCard


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    fig.tight_layout()
    with atomic_open(path) as fh:
        fig.savefig(fh, format="png", dpi=110)
    _pyplot().close(fig)
    return path


def plain_label(text: str) -> str:
    """``text`` as literal plot text: matplotlib parses ``$…$`` as mathtext (a card's ``\\foo`` inside dollars
    would crash the renderer), so dollars are escaped."""
    return str(text).replace("$", r"\$")


MAX_BOARDS = 10  # boards plotted (the first in board order: full benchmarks first)
MAX_MODELS = 12  # models per plot (the board's best by rank)


def render_plots(cards: list[ResultCard], directory: Path, *, tables: dict | None = None) -> list[Path]:
    """Writes the plots of each board (its best ``MAX_MODELS`` cards; the first ``MAX_BOARDS`` boards) into
    ``directory`` as ``<board id>_<kind>.png``; returns their paths. A board's cards share their images and head,
    so its clean-vs-shift scatter uses each card's own clean top-1."""
    from ssl_robustbench.benchmarks import BENCHMARKS
    from ssl_robustbench.results.leaderboard import board_tables

    plt = _pyplot()
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*.png"):
        old.unlink()
    tables = tables if tables is not None else board_tables(cards)
    by_name = {c.filename: c for c in cards}
    paths = []
    for board, frame in list(tables.items())[:MAX_BOARDS]:
        members = [by_name[f] for f in frame.attrs.get("cards", []) if f in by_name][:MAX_MODELS]
        if not members:
            continue
        suite, main = members[0].suite, members[0].rank_metric
        if suite == "clean":
            fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(members) + 1.2))
            bars = ax.barh([plain_label(c.model.id) for c in members[::-1]],
                           [100 * c.aggregates[main] for c in members[::-1]], color="#4c72b0")
            ax.bar_label(bars, fmt="%.1f", padding=3, fontsize=8)
            ax.set_xlabel("clean top-1 (%)")
            ax.set_xlim(0, 100)
            ax.set_title(plain_label(f"{board}: clean top-1"))
            paths.append(_save(fig, directory / f"{board}_top1.png"))
            continue
        bench = BENCHMARKS.get(suite)()
        points = [(100 * own, 100 * c.aggregates[main], c.model.id) for c in members
                  if (own := bench.own_clean(list(c.rows))) is not None]
        if points:
            fig, ax = plt.subplots(figsize=(6.4, 4))
            markers = "osD^vP*X"
            for i, (x, y, name) in enumerate(points):  # a legend, not labels beside points that may coincide
                ax.scatter(x, y, marker=markers[i % len(markers)], s=40, label=plain_label(name))
            ax.plot([0, 100], [0, 100], color="#999", lw=0.8, ls="--")
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
            ax.set_xlabel("clean top-1 on the same images (%)")
            ax.set_ylabel(plain_label(f"{suite}: {main} (%)"))
            ax.set_title(plain_label(f"{board}: {suite} vs clean"))
            paths.append(_save(fig, directory / f"{board}_vs_clean.png"))
        top1 = [r for c in members for r in c.rows if r.metric == "top1"]
        severity_rows = [r for r in top1 if r.severity > 0]
        if severity_rows:
            fig, ax = plt.subplots(figsize=(5, 3.4))
            for model in dict.fromkeys(r.model_id for r in severity_rows):
                levels = sorted({r.severity for r in severity_rows if r.model_id == model})
                means = [100 * _mean([r.value for r in severity_rows if r.model_id == model and r.severity == s])
                         for s in levels]
                ax.plot(levels, means, marker="o", label=plain_label(model))
            ax.set_xticks(sorted({r.severity for r in severity_rows}))
            ax.set_xlabel("severity")
            ax.set_ylabel("top-1 (%), mean over conditions")
            ax.set_title(plain_label(f"{board}: accuracy by severity"))
            ax.legend(fontsize=7)
            paths.append(_save(fig, directory / f"{board}_by_severity.png"))
        elif len({r.condition for r in top1 if r.condition != "clean"}) > 1:
            conditions = list(dict.fromkeys(r.condition for r in top1 if r.condition != "clean"))
            fig, ax = plt.subplots(figsize=(min(11.0, max(5.0, 0.3 * len(conditions) * len(members) + 3)), 3.6))
            width = 0.8 / len(members)
            for i, card in enumerate(members):
                values = {r.condition: 100 * r.value for r in card.rows if r.metric == "top1"}
                ax.bar([j + i * width for j in range(len(conditions))],
                       [values.get(cond, float("nan")) for cond in conditions], width,
                       label=plain_label(card.model.id))
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(conditions))],
                          [plain_label(c.removeprefix(f"{suite}:")) for c in conditions], rotation=20, ha="right")
            ax.set_ylabel("top-1 (%)")
            ax.grid(axis="y", color="#ddd", lw=0.6)
            ax.set_axisbelow(True)
            ax.set_title(plain_label(f"{board}: top-1 per condition"))
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over
            paths.append(_save(fig, directory / f"{board}_by_condition.png"))
    return paths


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)
