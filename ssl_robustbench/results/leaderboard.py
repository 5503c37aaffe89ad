"""Leaderboard tables from result cards: one table per suite, rendered as markdown, LaTeX or rich.

Each suite's table has one line per (model, protocol): the suite's aggregates and, for suites of at most 12
conditions, the per-condition top-1, in percent.
Suites other than ``clean`` also get the clean-vs-shift difference (``Δ clean``, points) and the rank difference
(``Δ rank`` = clean rank − rank in this suite; positive means the model holds up better than its clean rank says),
against the same model's clean card on the same dataset and split. A card with sanity flags (signs of gradient
masking, say) gets a ``warning`` column naming them and is not ranked: it is listed after every unflagged card,
rank ``unranked``. Adversarial aggregates show their 95 % Wilson interval over the attacked images.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from ssl_robustbench.results.card import ResultCard
    from ssl_robustbench.results.rows import ResultRow

MAX_CONDITION_COLUMNS = 12  # suites with more conditions (ImageNet-C: 75) show their aggregates only


def _condition_label(row: ResultRow) -> str:
    label = row.condition if row.metric == "top1" else f"{row.condition} {row.metric}"
    return f"{label}/{row.severity}" if row.severity else label


def _base(card: ResultCard) -> dict[str, Any]:
    return {"model": card.model.id, "method": card.model.method, "arch": card.model.arch,
            "dataset": f"{card.protocol.dataset}/{card.protocol.eval_split}", "n": card.protocol.subset_size,
            "head": _head_label(card), "config": card.protocol.config_hash[:8]}


def _head_label(card: ResultCard) -> str:
    """The head's kind, with the fraction of labels it was fitted on when not all (``probe 1% labels``)."""
    fraction = (card.protocol.train_data or {}).get("label_fraction")
    return card.protocol.head.kind + (f" {100 * fraction:g}% labels" if fraction is not None else "")


def suite_tables(cards: list[ResultCard]) -> dict[str, pd.DataFrame]:
    """Suite name → table (values in %), sorted by the suite's ranking aggregate (``Benchmark.rank_metrics``, never
    a card's choice), best first. Cards without that aggregate are left out."""
    by_suite: dict[str, list[dict[str, Any]]] = {}
    rank_by: dict[str, str] = {}
    for card in cards:
        main = card.rank_metric
        if main is None:
            continue
        rank_by.setdefault(card.suite, main)
        if main != rank_by[card.suite]:
            continue  # ranked by another aggregate than the suite's other cards: not comparable in one column
        line = _base(card) | {k: 100 * v for k, v in card.aggregates.items()}
        if card.sanity_flags:
            line["warning"] = "⚠ " + ", ".join(card.sanity_flags)
        per_condition = [r for r in card.rows if r.metric == "top1" and r.condition != "clean"]
        if 1 < len(card.rows) and len(per_condition) <= MAX_CONDITION_COLUMNS:
            line |= {_condition_label(r): 100 * r.value for r in per_condition}
        own_clean = [r.value for r in card.rows if r.condition == "clean" and r.metric == "top1"]
        line["_own_clean"] = 100 * own_clean[0] if own_clean and card.suite != "clean" else float("nan")
        by_suite.setdefault(card.suite, []).append(line)
    clean = {(c.model.id, c.protocol.dataset, c.protocol.eval_split): 100 * c.aggregates[c.rank_metric]
             for c in cards if c.suite == "clean" and c.rank_metric}
    tables = {}
    for suite, lines in sorted(by_suite.items(), key=lambda kv: (kv[0] != "clean", kv[0])):
        frame = pd.DataFrame(lines)
        main = rank_by[suite]
        if suite != "clean":
            keys = [(m, *d.split("/", 1)) for m, d in zip(frame["model"], frame["dataset"], strict=True)]
            # the clean card of the same model and data, else the suite's own clean row (shift suites measure one)
            frame["clean"] = [clean.get(k, own) for k, own in zip(keys, frame["_own_clean"], strict=True)]
            frame["Δ clean"] = frame[main] - frame["clean"]
            frame["Δ rank"] = (frame["clean"].rank(ascending=False, method="min")
                               - frame[main].rank(ascending=False, method="min"))
        frame = _intervals(frame.drop(columns="_own_clean"))
        # a card with sanity flags is not ranked: it is listed after every unflagged card
        flagged = frame["warning"].notna() if "warning" in frame else pd.Series(False, index=frame.index)
        frame = frame.assign(_flagged=flagged).sort_values(["_flagged", main], ascending=[True, False], kind="stable")
        ranks: list[int | str] = list(range(1, int((~frame["_flagged"]).sum()) + 1))
        frame = frame.drop(columns="_flagged").reset_index(drop=True)
        frame.insert(0, "rank", ranks + ["unranked"] * (len(frame) - len(ranks)))
        frame.attrs["rank_by"] = main  # the aggregate the rank follows (a terminal keeps it beside the model)
        tables[suite] = frame
    return tables


def _intervals(frame: pd.DataFrame) -> pd.DataFrame:
    """Aggregates with a 95 % interval (``<m>_ci95_low`` / ``_high``) shown as one column ``<m> 95% CI``."""
    for low in [c for c in frame.columns if str(c).endswith("_ci95_low")]:
        metric, high = str(low).removesuffix("_ci95_low"), str(low).replace("_low", "_high")
        if high in frame:
            frame[f"{metric} 95% CI"] = [("–" if lo != lo else f"{lo:.1f}–{hi:.1f}")
                                         for lo, hi in zip(frame[low], frame[high], strict=True)]
            frame = frame.drop(columns=[low, high])
    return frame


_LEGEND = {
    "rank": "position by the suite's ranking score; cards with sanity flags are listed after, unranked",
    "n": "images evaluated",
    "head": "the head scored: probe (linear probe fitted here), released (the authors' head), or a finetune; "
            "'N% labels' when fitted on a class-balanced fraction of the training labels",
    "config": "the suite's protocol hash (first 8 hex digits): only rows with the same hash compare",
    "mean_top1": "mean top-1 over the suite's shifted conditions",
    "mean_error": "1 − mean top-1 (unnormalized mean error)",
    "mce_alexnet": "mean corruption error normalized by AlexNet's (ImageNet-1k only)",
    "relative_mce_alexnet": "relative mCE: error increase over clean, normalized by AlexNet's",
    "drop": "clean top-1 of the same run's images minus the suite's mean top-1",
    "black": "mean top-1 of the four black-background PD views",
    "padded": "mean top-1 of the four padded PD views",
    "sa": "standard (clean) accuracy of the attacked subset under the suite's head",
    "ra": "robust accuracy under PGD",
    "aa": "robust accuracy under AutoAttack (ranks, as in RobustBench)",
    "clean": "the same model's clean top-1 (its clean card on the same data, else the suite's own clean row)",
    "Δ clean": "suite score minus clean (points)",
    "Δ rank": "clean rank minus suite rank (positive: holds up better than its clean rank says)",
    "warning": "sanity flags (signs of gradient masking or a misbehaving model): the card is not ranked",
}


def column_legend(column: str) -> str | None:
    """What a leaderboard column means (None for the plain identity columns and per-condition top-1)."""
    if column.endswith(" 95% CI"):
        return f"95 % Wilson interval of {column.removesuffix(' 95% CI')} over the n images"
    return _LEGEND.get(column)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.2f}"
    return str(value)


def escape_markdown(text: str) -> str:
    """Escapes HTML (GitHub renders inline HTML) and the markdown characters that break or format a table cell."""
    text = html.escape(text, quote=True)
    for ch in "\\|`*_[]#":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


def to_markdown(tables: dict[str, pd.DataFrame]) -> str:
    """All suites as GitHub-flavoured markdown tables, every cell escaped."""
    out = ["# Leaderboard", "", "Values are percentages (top-1 accuracy unless the column says otherwise); the "
           "derived columns are explained under each table.", ""]
    for suite, frame in tables.items():
        out += [f"## {escape_markdown(suite)}", ""]
        cols = list(frame.columns)
        out.append("| " + " | ".join(escape_markdown(str(c)) for c in cols) + " |")
        out.append("|" + "|".join("---:" if frame[c].dtype.kind in "fi" else "---" for c in cols) + "|")
        for rec in frame.itertuples(index=False):
            out.append("| " + " | ".join(escape_markdown(_cell(v)) for v in rec) + " |")
        out.append("")
        # legend texts are ours and only known column names get one (aggregates are recomputed by the suites)
        legend = [f"- `{c}`: {text}" for c in cols if (text := column_legend(str(c)))]
        out += legend + ([""] if legend else [])
    return "\n".join(out)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}"}


def escape_latex(text: str) -> str:
    """Escapes LaTeX's special characters."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in text)


def to_latex(tables: dict[str, pd.DataFrame]) -> str:
    """One ``tabular`` per suite (booktabs rules), ready to paste into a paper."""
    out = ["% generated by `robustbench leaderboard build --format latex`; needs \\usepackage{booktabs}"]
    for suite, frame in tables.items():
        cols = [c for c in frame.columns if c != "config"]
        spec = "".join("r" if frame[c].dtype.kind in "fi" else "l" for c in cols)
        out += [f"% suite: {escape_latex(suite)}", f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
                " & ".join(escape_latex(str(c)).replace("Δ", "$\\Delta$") for c in cols) + r" \\", "\\midrule"]
        for rec in frame[cols].itertuples(index=False):
            out.append(" & ".join(escape_latex(_cell(v)) for v in rec) + r" \\")
        out += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(out)


def terminal_safe(text: str) -> str:
    """``text`` without control characters (escape sequences must not reach the terminal)."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


#: the columns a narrow terminal keeps first (then the suite's ranking aggregate, then the rest in table order)
PRIORITY = ("rank", "model")
#: the columns a narrow terminal drops first
LOW_PRIORITY = ("method", "arch", "dataset", "n", "head", "config", "warning")


def _column_width(frame: pd.DataFrame, col: str) -> int:
    """Characters a column takes in a rich table: its widest cell or header, plus padding and border."""
    return max([len(_cell(v)) for v in frame[col]] + [len(str(col))]) + 3


def fitting_columns(frame: pd.DataFrame, width: int, *, main: str | None = None) -> list[str]:
    """The columns of ``frame`` to show in ``width`` characters: rank, model and the ranking aggregate first,
    then the others by priority, each whole (never a cut number); columns that do not fit are left out."""
    rest = [c for c in frame.columns if c not in PRIORITY and c != main]
    order = [c for c in PRIORITY if c in frame] + ([main] if main in frame else [])
    order += [c for c in rest if c not in LOW_PRIORITY] + [c for c in rest if c in LOW_PRIORITY]
    chosen, used = [], 1
    for col in order:
        if used + _column_width(frame, col) <= width or len(chosen) < 2:
            chosen.append(col)
            used += _column_width(frame, col)
    return [c for c in frame.columns if c in chosen]


def print_tables(tables: dict[str, pd.DataFrame], *, console: Any = None, wide: bool = False) -> None:
    """Prints every suite's table with rich (markup in cells is shown as text, not interpreted), fitted to the
    terminal: columns are dropped by priority (``fitting_columns``) unless ``wide``; a cell is never cut."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    for suite, frame in tables.items():
        columns = list(frame.columns) if wide else fitting_columns(frame, console.width,
                                                                   main=frame.attrs.get("rank_by"))
        out = console
        if wide:  # as wide as the table needs (for a pager or a file), whatever the terminal
            out = Console(file=console.file, width=max(console.width, 1 + sum(_column_width(frame, c)
                                                                               for c in columns)))
        hidden = len(frame.columns) - len(columns)
        title = f"leaderboard: {suite}" + (f" ({hidden} more columns with --wide)" if hidden else "")
        table = Table(title=Text(terminal_safe(title)))
        for col in columns:
            numeric = frame[col].dtype.kind in "fi"
            table.add_column(Text(terminal_safe(str(col))), justify="right" if numeric else "left", no_wrap=True,
                             overflow="ignore" if wide else "ellipsis")
        for rec in frame[columns].itertuples(index=False):
            table.add_row(*(Text(terminal_safe(_cell(v))) for v in rec))
        out.print(table)
