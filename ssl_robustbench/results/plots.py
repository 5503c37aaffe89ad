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


def _title(frame: Any, board: str, what: str) -> str:
    """A plot's title: the board's protocol in words (suite, data, head, settings — so SLF and SLF × 10 boards
    never look alike), wrapped, then what the plot shows."""
    import textwrap

    return plain_label("\n".join(textwrap.wrap(f"{frame.attrs.get('title', board)} [{board}]", 70)) + f"\n{what}")


def _fit(values: list[float], *, floor: float = 0.0, ceiling: float = 100.0) -> tuple[float, float]:
    """Axis limits around ``values`` (with a margin of 10 % of their range, at least 1 point), within the
    possible range [floor, ceiling]: points between 0 and 4 % are not drawn on a 0–100 axis."""
    low, high = min(values), max(values)
    pad = max(0.1 * (high - low), 1.0)
    return max(floor, low - pad), min(ceiling, high + pad)


def _label_bars(ax: Any, bars: Any, values: list[float]) -> None:
    """Marks what a bar of height 0 cannot show: a measured 0 reads "0", a condition not measured "n/m"."""
    labels = ["n/m" if v != v else ("0" if v == 0 else "") for v in values]
    ax.bar_label(bars, labels=labels, fontsize=7, padding=1)


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
            ax.set_title(_title(frame, board, "clean top-1"), fontsize=9)
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
            (x0, x1), (y0, y1) = _fit([p[0] for p in points]), _fit([p[1] for p in points])
            ax.set_xlim(x0, x1)
            ax.set_ylim(y0, y1)
            if max(x0, y0) < min(x1, y1):  # the no-loss diagonal, where it crosses the plotted range
                ax.plot([max(x0, y0), min(x1, y1)], [max(x0, y0), min(x1, y1)], color="#999", lw=0.8, ls="--",
                        label="no loss (y = x)")
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
            ax.set_xlabel("clean top-1 on the same images (%)")
            ax.set_ylabel(plain_label(f"{suite}: {main} (%)"))
            ax.set_title(_title(frame, board, f"{main} vs clean"), fontsize=9)
            paths.append(_save(fig, directory / f"{board}_vs_clean.png"))
        if "eff. robustness" in frame:
            paths.append(_effective_robustness_plot(points, frame, board, suite, main, directory))
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
            ax.set_title(_title(frame, board, "accuracy by severity"), fontsize=9)
            ax.legend(fontsize=7)
            paths.append(_save(fig, directory / f"{board}_by_severity.png"))
        elif len({r.condition for r in top1 if r.condition != "clean"}) > 1:
            conditions = list(dict.fromkeys(r.condition for r in top1 if r.condition != "clean"))
            fig, ax = plt.subplots(figsize=(min(11.0, max(5.0, 0.3 * len(conditions) * len(members) + 3)), 3.6))
            width = 0.8 / len(members)
            for i, card in enumerate(members):
                values = {r.condition: 100 * r.value for r in card.rows if r.metric == "top1"}
                heights = [values.get(cond, float("nan")) for cond in conditions]
                bars = ax.bar([j + i * width for j in range(len(conditions))],
                              [0.0 if h != h else h for h in heights], width, label=plain_label(card.model.id))
                _label_bars(ax, bars, heights)
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(conditions))],
                          [plain_label(c.removeprefix(f"{suite}:")) for c in conditions], rotation=20, ha="right")
            ax.set_ylabel("top-1 (%)")
            ax.grid(axis="y", color="#ddd", lw=0.6)
            ax.set_axisbelow(True)
            ax.set_title(_title(frame, board, 'top-1 per condition ("0": measured zero, "n/m": not measured)'),
                         fontsize=9)
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over
            paths.append(_save(fig, directory / f"{board}_by_condition.png"))
    return paths


def _effective_robustness_plot(points: list[tuple[float, float, str]], frame: Any, board: str, suite: str,
                               main: str, directory: Path) -> Path:
    """Score vs clean top-1 on logit axes with the linear fit over the board's ranked cards (Taori et al. 2020;
    the table's column leaves each card out of its own fit)."""
    import numpy as np

    from ssl_robustbench.results.effective_robustness import linear_fit, logit

    plt = _pyplot()
    clean, score = [p[0] / 100 for p in points], [p[1] / 100 for p in points]
    ranked = {m for m, r in zip(frame["model"], frame["rank"], strict=True) if isinstance(r, (int, np.integer))}
    base = [i for i, p in enumerate(points) if p[2] in ranked] or list(range(len(points)))
    slope, intercept = linear_fit([clean[i] for i in base], [score[i] for i in base])
    fig, ax = plt.subplots(figsize=(6.4, 4))
    markers = "osD^vP*X"
    for i, (x, y, name) in enumerate(points):
        ax.scatter(logit(x / 100), logit(y / 100), marker=markers[i % len(markers)], s=40, label=plain_label(name))
    xs = np.linspace(min(map(logit, clean)) - 0.2, max(map(logit, clean)) + 0.2, 50)
    ax.plot(xs, slope * xs + intercept, color="#999", lw=0.8, ls="--", label="fit over the ranked cards")
    for axis, values in ((ax.xaxis, clean), (ax.yaxis, score)):  # ticks read as accuracies
        ticks = np.linspace(min(values), max(values), 4)
        (ax.set_xticks if axis is ax.xaxis else ax.set_yticks)([logit(t) for t in ticks],
                                                               [f"{100 * t:.1f}" for t in ticks])
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    ax.set_xlabel("clean top-1 (%), logit axis")
    ax.set_ylabel(plain_label(f"{suite}: {main} (%), logit axis"))
    ax.set_title(_title(frame, board, "effective robustness: height above the fit"), fontsize=9)
    return _save(fig, directory / f"{board}_effective_robustness.png")


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)
