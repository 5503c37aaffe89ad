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


def _clean_by_model(cards: list[ResultCard]) -> dict[str, float]:
    return {c.model.id: 100 * c.aggregates[c.rank_metric] for c in cards if c.suite == "clean" and c.rank_metric}


def render_plots(cards: list[ResultCard], directory: Path) -> list[Path]:
    """Writes every plot that the cards support into ``directory``; returns their paths."""
    plt = _pyplot()
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    clean = _clean_by_model(cards)
    if clean:
        names = sorted(clean, key=clean.get, reverse=True)
        fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(names) + 1.2))
        bars = ax.barh([plain_label(n) for n in names[::-1]], [clean[n] for n in names[::-1]], color="#4c72b0")
        ax.bar_label(bars, fmt="%.1f", padding=3, fontsize=8)
        ax.set_xlabel("clean top-1 (%)")
        ax.set_xlim(0, 100)
        ax.set_title("clean top-1 per model")
        paths.append(_save(fig, directory / "clean_top1.png"))
    for suite in sorted({c.suite for c in cards} - {"clean"}):
        suite_cards = [c for c in cards if c.suite == suite and c.rank_metric]
        points = [(clean[c.model.id], 100 * c.aggregates[c.rank_metric], c.model.id)
                  for c in suite_cards if c.model.id in clean]
        if points:
            fig, ax = plt.subplots(figsize=(6.4, 4))
            markers = "osD^vP*X"
            for i, (x, y, name) in enumerate(points):  # a legend, not labels beside points that may coincide
                ax.scatter(x, y, marker=markers[i % len(markers)], s=40, label=plain_label(name))
            ax.plot([0, 100], [0, 100], color="#999", lw=0.8, ls="--")
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
            ax.set_xlabel("clean top-1 (%)")
            ax.set_ylabel(plain_label(f"{suite}: {suite_cards[0].rank_metric} (%)"))
            ax.set_title(plain_label(f"{suite} vs clean"))
            paths.append(_save(fig, directory / f"{suite}_vs_clean.png"))
        top1 = [r for c in suite_cards for r in c.rows if r.metric == "top1"]
        severity_rows = [r for r in top1 if r.severity > 0]
        if severity_rows:
            fig, ax = plt.subplots(figsize=(5, 3.4))
            for model in sorted({r.model_id for r in severity_rows}):
                levels = sorted({r.severity for r in severity_rows if r.model_id == model})
                means = [100 * _mean([r.value for r in severity_rows if r.model_id == model and r.severity == s])
                         for s in levels]
                ax.plot(levels, means, marker="o", label=plain_label(model))
            ax.set_xticks(sorted({r.severity for r in severity_rows}))
            ax.set_xlabel("severity")
            ax.set_ylabel("top-1 (%), mean over conditions")
            ax.set_title(plain_label(f"{suite}: accuracy by severity"))
            ax.legend(fontsize=7)
            paths.append(_save(fig, directory / f"{suite}_by_severity.png"))
        elif len({r.condition for r in top1 if r.condition != "clean"}) > 1:
            # the suite's own conditions (clean has its plot); a condition a card did not measure gets no bar
            conditions = list(dict.fromkeys(r.condition for r in top1 if r.condition != "clean"))
            fig, ax = plt.subplots(figsize=(min(11.0, max(5.0, 0.3 * len(conditions) * len(suite_cards) + 3)), 3.6))
            width = 0.8 / len(suite_cards)
            for i, card in enumerate(suite_cards):
                values = {r.condition: 100 * r.value for r in card.rows if r.metric == "top1"}
                ax.bar([j + i * width for j in range(len(conditions))],
                       [values.get(cond, float("nan")) for cond in conditions], width,
                       label=plain_label(card.model.id))
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(conditions))],  # the title names the suite
                          [plain_label(c.removeprefix(f"{suite}:")) for c in conditions], rotation=20, ha="right")
            ax.set_ylabel("top-1 (%)")
            ax.grid(axis="y", color="#ddd", lw=0.6)
            ax.set_axisbelow(True)
            ax.set_title(plain_label(f"{suite}: top-1 per condition (no bar: not measured)"))
            ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))  # beside the bars, never over
            paths.append(_save(fig, directory / f"{suite}_by_condition.png"))
    return paths


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)
