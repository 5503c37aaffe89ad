"""Leaderboard boards from result cards: one board per suite *and protocol*, rendered as markdown, LaTeX or rich.

A board holds the cards of one suite with one protocol hash (data identity and split, subset, head and its recipe,
threat model, engine): only they compare. Ranks and every derived column exist within a board and come from its
own cards: ``Δ clean`` subtracts the card's own clean top-1 on the same images with the same head (the suite's
``own_clean``; empty where the suite measured none), ``Δ rank`` compares ranks within the board. A card of another
protocol can never change a row of this one. Each board's title is built from its protocol; boards on the full
released benchmarks (ImageNet-1k val, 50,000 images) come first.

Ranks: only cards verified by a record signed by one of the store's operators are ranked (``results.trust``);
unverified, private and cannot-verify cards are listed below them as ``self-reported``, verified cards with sanity
flags as ``unranked``, failed ones last as ``failed``. Neighbours are compared with McNemar's exact test on their
per-image evidence (``significance``; a board's cards share one image set, so they are paired image by image): a
card whose difference from the first card of its group is not significant at 5 % shares that card's rank.
``status`` says whether and how a card was checked.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ssl_robustbench.results.effective_robustness import effective_robustness

if TYPE_CHECKING:
    from ssl_robustbench.results.card import ResultCard
    from ssl_robustbench.results.rows import ResultRow

MAX_CONDITION_COLUMNS = 12  # suites with more conditions (ImageNet-C: 75) show their aggregates only
SUITE_TITLES = {"clean": "Clean", "c": "ImageNet-C", "pd": "ImageNet-PD", "e": "ImageNet-E", "v2": "ImageNet-V2",
                "r": "ImageNet-R", "a": "ImageNet-A", "sketch": "ImageNet-Sketch", "3dcc": "ImageNet-3DCC",
                "adversarial": "Adversarial"}
FULL_BENCHMARKS = {("imagenet", "val"): 50000}
#: suites of natural or synthetic distribution shift: their boards get effective robustness (Taori et al. 2020)
SHIFT_SUITES = ("c", "pd", "e", "v2", "r", "a", "sketch", "3dcc")


def _condition_label(row: ResultRow) -> str:
    label = row.condition if row.metric == "top1" else f"{row.condition} {row.metric}"
    return f"{label}/{row.severity}" if row.severity else label


def _head_label(card: ResultCard) -> str:
    """The head's kind and solver, with the fraction of labels it was fitted on when not all."""
    head = card.protocol.head
    solver = head.recipe.get("solver") if isinstance(head.recipe, dict) else None
    if head.kind == "knn" and isinstance(head.recipe, dict):
        label = f"weighted k-NN (k={head.recipe.get('k')}, T={head.recipe.get('temperature')})"
    else:
        label = {"probe": "linear probe"}.get(head.kind, head.kind) + (f" ({solver})" if solver else "")
    fraction = (card.protocol.train_data or {}).get("label_fraction")
    return label + (f", {100 * fraction:g}% labels" if fraction is not None else "")


BOARD_ID_DIGITS = 12


def board_id(card: ResultCard) -> str:
    """``<suite>-<protocol hash[:12]>``: the board's name in ``leaderboard show --board`` and in HTML anchors
    (boards are keyed by the full hash; ``board_tables`` lengthens a name two boards would share)."""
    return f"{card.suite}-{card.protocol.config_hash[:BOARD_ID_DIGITS]}"


def is_full_benchmark(card: ResultCard) -> bool:
    """Whether the card ran on a whole released evaluation set (ImageNet-1k val, 50,000 images)."""
    size = FULL_BENCHMARKS.get((card.protocol.dataset, card.protocol.eval_split))
    return size is not None and card.protocol.subset_size == size


def board_title(card: ResultCard) -> str:
    """A readable name of the board's protocol, e.g. ``ImageNet-C · imagenet val, 50,000 images · linear probe
    (lbfgs) · on the fly, hendrycks reference, imagenet table, JPEG 85 as released``."""
    p = card.protocol
    parts = [SUITE_TITLES.get(card.suite, card.suite), f"{p.dataset} {p.eval_split}, {p.subset_size:,} images",
             _head_label(card)]
    details = p.details
    if isinstance(details.get("engine"), str):
        parts.append(details["engine"])
    threat = details.get("threat_model")
    if isinstance(threat, dict) and isinstance(threat.get("label"), str):
        attacks = details.get("attacks")
        names = ", ".join(a for a in attacks if isinstance(a, str)) if isinstance(attacks, list) else ""
        parts.append(f"{threat['label']}" + (f" ({names})" if names else ""))
    return " · ".join(parts)


def _line(card: ResultCard, status: str) -> dict[str, Any]:
    from ssl_robustbench.benchmarks import BENCHMARKS

    line: dict[str, Any] = {"model": card.model.id, "method": card.model.method, "arch": card.model.arch,
                            "status": status}
    line |= {k: 100 * v for k, v in card.aggregates.items()}
    if card.sanity_flags:
        line["warning"] = "⚠ " + ", ".join(card.sanity_flags)
    bench = BENCHMARKS.get(card.suite)()
    per_condition = [r for r in card.rows if r.metric == "top1" and r.condition not in ("clean", bench.clean_condition)]
    if bench.condition_columns and 1 < len(card.rows) and len(per_condition) <= MAX_CONDITION_COLUMNS:
        line |= {_condition_label(r): 100 * r.value for r in per_condition if _condition_label(r) not in line}
    clean = bench.own_clean(list(card.rows)) if card.suite != "clean" else None
    line["_clean"] = 100 * clean if clean is not None else float("nan")
    return line


#: what a row that is not ranked shows in the rank column, by its place under the ranked rows
STANDING = {0: None, 1: "self-reported", 2: "unranked", 3: "failed"}
SELF_REPORTED = ("unverified", "private", "cannot verify")


def standing(status: str, flagged: bool) -> int:
    """0: ranked (verified, no sanity flag); 1: self-reported (unverified, private, cannot verify); 2: unranked (a
    verified card with sanity flags); 3: failed verification."""
    if status == "failed":
        return 3
    if status in SELF_REPORTED:
        return 1
    return 2 if flagged else 0


def _ranks(frame: pd.DataFrame, cards: list[ResultCard],
           compare: Callable[[ResultCard, ResultCard], float | None] | None) -> list[int | str]:
    """Ranks of the (sorted) rows: ranked rows first, a row sharing the rank of its group's first row when
    McNemar's test finds no significant difference from it; the rest say why they are not ranked."""
    from ssl_robustbench.results.significance import ALPHA

    ranks: list[int | str] = []
    leader = None
    for pos, (place, card) in enumerate(zip(frame["_standing"], cards, strict=True)):
        if place:
            ranks.append(STANDING[place])
            continue
        p = compare(cards[leader], card) if compare is not None and leader is not None else None
        if leader is None or p is None or p < ALPHA:
            leader = pos
        ranks.append(ranks[leader] if leader != pos else pos + 1)
    return ranks


def board_tables(cards: list[ResultCard], *, statuses: Mapping[str, str] | None = None,
                 compare: Callable[[ResultCard, ResultCard], float | None] | None = None) -> dict[str, pd.DataFrame]:
    """Board id → table (values in %), one per (suite, protocol hash), best first by the suite's ranking aggregate
    (``Benchmark.rank_metrics``, never a card's choice). ``statuses``: card file name → verification status
    (default ``unverified``, ``private`` for private weights); ``compare(a, b)``: McNemar's p of two cards of one
    board, for shared ranks. ``frame.attrs`` holds the board's ``title``, ``suite``, ``rank_by`` and ``protocol``."""
    from ssl_robustbench.benchmarks import BENCHMARKS

    statuses = statuses or {}
    keyed: dict[tuple[str, str], list[ResultCard]] = {}
    for card in cards:  # keyed by the full derived protocol hash
        if card.rank_metric is not None:
            keyed.setdefault((card.suite, card.protocol.config_hash), []).append(card)
    boards: dict[str, list[ResultCard]] = {}
    for (suite, digest), members in sorted(keyed.items()):
        digits = BOARD_ID_DIGITS
        while f"{suite}-{digest[:digits]}" in boards:
            digits += 4
        boards[f"{suite}-{digest[:digits]}"] = members
    order = sorted(boards, key=lambda b: (not is_full_benchmark(boards[b][0]),
                                          list(SUITE_TITLES).index(boards[b][0].suite)
                                          if boards[b][0].suite in SUITE_TITLES else len(SUITE_TITLES),
                                          board_title(boards[b][0]), b))
    tables = {}
    for name in order:
        members = boards[name]
        main = members[0].rank_metric
        members = [c for c in members if c.rank_metric == main]
        status = [statuses.get(c.filename) or ("private" if c.model.weights.get("kind") == "private"
                                                else "unverified") for c in members]
        frame = pd.DataFrame([_line(c, s) for c, s in zip(members, status, strict=True)])
        frame["_standing"] = [standing(s, bool(c.sanity_flags)) for c, s in zip(members, status, strict=True)]
        if frame["_clean"].notna().any():
            # no number twice: the suite's own clean aggregate (SA, ori) is the clean column, and a ``drop``
            # aggregate is already Δ clean with the opposite sign
            clean = BENCHMARKS.get(members[0].suite)().clean_aggregate
            if clean not in frame:
                frame["clean"] = frame["_clean"]
                clean = "clean"
            if "drop" not in frame:
                frame["Δ clean"] = frame[main] - frame[clean]
            if len(frame) > 1:  # with one card every rank is 1: the column would only be a zero
                frame["Δ rank"] = (frame[clean].rank(ascending=False, method="min")
                                   - frame[main].rank(ascending=False, method="min")).astype("Int64")
            if members[0].suite in SHIFT_SUITES and frame[clean].notna().all():
                er = effective_robustness(list(frame[clean] / 100), list(frame[main] / 100),
                                          baseline=[place == 0 for place in frame["_standing"]])
                if er is not None:
                    frame["eff. robustness"] = [float("nan") if v is None else 100 * v for v in er]
        frame = _intervals(frame.drop(columns="_clean"))
        order_rows = frame.sort_values(["_standing", main], ascending=[True, False], kind="stable").index
        frame, members = frame.loc[order_rows].reset_index(drop=True), [members[i] for i in order_rows]
        frame.insert(0, "rank", _ranks(frame, members, compare))
        frame = frame.drop(columns="_standing")
        # who, then the score that ranks, then whether it was checked; method and arch last
        first = ["rank", "model", main, "status"]
        frame = frame[first + [c for c in frame.columns if c not in first + ["method", "arch"]] + ["method", "arch"]]
        details = ["method", "arch"] + [c for c in frame.columns if c not in SUMMARY_COLUMNS
                                        and (":" in str(c) or "/" in str(c))]
        frame.attrs.update(rank_by=main, title=board_title(members[0]), suite=members[0].suite, details=details,
                           protocol=members[0].protocol.config_hash, cards=[c.filename for c in members])
        tables[name] = frame
    return tables


def model_summary(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per model, its score on every board it is on, side by side (one column per board, headed by the suite and
    the board id: clean, C, PD, E, V2, R, A, Sketch, 3DCC, adversarial …). Boards of different protocols are never
    averaged or merged: two boards of one suite are two columns."""
    columns: dict[str, dict[str, Any]] = {}
    for board, frame in tables.items():
        suite = frame.attrs.get("suite", board)
        label = f"{SUITE_TITLES.get(suite, suite)} {frame.attrs['rank_by']} [{board}]"
        warnings = frame["warning"] if "warning" in frame else [None] * len(frame)
        columns[label] = {model: _marked(value, rank, warning) for model, value, rank, warning in zip(
            frame["model"], frame[frame.attrs["rank_by"]], frame["rank"], warnings, strict=True)}
    models = list(dict.fromkeys(m for col in columns.values() for m in col))
    out = pd.DataFrame({"model": models, **{label: [col.get(m, float("nan")) for m in models]
                                            for label, col in columns.items()}})
    out.attrs.update(title="Models across boards (each board's ranking score; –: not on that board)")
    return out


def _marked(value: float, rank: Any, warning: Any) -> Any:
    """A board's score as the models table shows it: the number where the card is ranked, else the number with
    why it is not (self-reported, unranked with its sanity flag, failed), so it never reads as a ranked score."""
    if isinstance(rank, (int, np.integer)) or rank is None:
        return value
    flag = f" {warning}" if isinstance(warning, str) else ""
    return f"{_cell(value)} ({rank}{flag})"


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
    "rank": "position by the board's ranking score among verified cards; a model whose difference from the first "
            "model of its group is not significant (McNemar's exact test on the per-image results, 5 %) shares "
            "that rank; below them, apart: self-reported cards (not verified), unranked ones (sanity flags) and "
            "failed ones",
    "status": "verified: a verification signed by one of the store's operators reproduced a fresh random sample "
              "of every condition from the card's named weights; unverified: no signed verification yet; private: "
              "the weights are not published, so it cannot be; cannot verify: the operator could not re-run it; "
              "failed: the re-run disagreed",
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
    "clean": "the card's own clean top-1: the same images with the same head",
    "ori": "top-1 on the unedited images (ImageNet-E's reference), the same head",
    "Δ clean": "suite score minus clean (points)",
    "Δ rank": "clean rank minus rank on this board's score, within the board (positive: holds up better than its "
              "clean rank says)",
    "eff. robustness": "score minus the linear fit of score vs clean on logit axes (Taori et al., 2020; points), "
                       "the fit over this board's ranked cards (verified, no sanity flag) other than the one scored "
                       "(leave-one-out; at least 3 of them); no published fit is applied",
    "warning": "sanity flags (signs of gradient masking or a misbehaving model): the card is not ranked",
}


#: legends that differ by suite
_SUITE_LEGEND = {("clean", "mean_top1"): "top-1 of the head on the evaluation split"}


def column_legend(column: str, suite: str | None = None) -> str | None:
    """What a leaderboard column means on a ``suite``'s board (None for the plain identity columns and
    per-condition top-1)."""
    if (suite, column) in _SUITE_LEGEND:
        return _SUITE_LEGEND[suite, column]
    if column.endswith(" 95% CI"):
        return f"95 % Wilson interval of {column.removesuffix(' 95% CI')} over the n images"
    return _LEGEND.get(column)


def _cell(value: Any) -> str:
    if value is None or value is pd.NA:
        return "–"
    if isinstance(value, float):
        return "–" if value != value else f"{value:.2f}"
    return str(value)


def escape_markdown(text: str) -> str:
    """Escapes HTML (GitHub renders inline HTML) and the markdown characters that break or format a table cell."""
    text = html.escape(text, quote=True)
    for ch in "\\|`*_[]#":
        text = text.replace(ch, "\\" + ch)
    return text.replace("\n", " ")


def _markdown_table(frame: pd.DataFrame) -> list[str]:
    """A frame as GitHub-flavoured markdown table lines (numbers right-aligned, every cell escaped)."""
    lines = ["| " + " | ".join(escape_markdown(str(c)) for c in frame.columns) + " |",
             "|" + "|".join("---:" if frame[c].dtype.kind in "fi" else "---" for c in frame.columns) + "|"]
    return lines + ["| " + " | ".join(escape_markdown(_cell(v)) for v in rec) + " |"
                    for rec in frame.itertuples(index=False)]


def to_markdown(tables: dict[str, pd.DataFrame]) -> str:
    """Every board as a GitHub-flavoured markdown table under its protocol title, after an index; every cell
    escaped."""
    out = ["# Leaderboard", "", "One board per suite and protocol: only the models of one board were measured on "
           "the same images with the same head recipe, so ranks exist only within a board. Values are percentages "
           "(top-1 accuracy unless the column says otherwise); the derived columns are explained under each table.",
           "", "## Boards", ""]
    out += [f"- [{escape_markdown(frame.attrs.get('title', name))}](#{name}) ({count_models(len(frame))})"
            for name, frame in tables.items()] + [""]
    if tables:
        models = model_summary(tables)
        out += [f"## {models.attrs['title']}", "", *_markdown_table(models), ""]
    for name, frame in tables.items():
        out += [f'<a id="{html.escape(name)}"></a>', "", f"## {escape_markdown(frame.attrs.get('title', name))}", "",
                f"Board `{escape_markdown(name)}`, protocol hash `{escape_markdown(frame.attrs.get('protocol', ''))}`"
                f", ranked by `{escape_markdown(str(frame.attrs.get('rank_by')))}`.", ""]
        cols = list(frame.columns)
        out += [*_markdown_table(frame), ""]
        # legend texts are ours and only known column names get one (aggregates are recomputed by the suites)
        legend = [f"- `{c}`: {text}" for c in cols if (text := column_legend(str(c), frame.attrs.get("suite")))]
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
    for name, frame in tables.items():
        cols = list(frame.columns)
        spec = "".join("r" if frame[c].dtype.kind in "fi" else "l" for c in cols)
        out += [f"% board {escape_latex(name)}: {escape_latex(frame.attrs.get('title', name))}",
                f"\\begin{{tabular}}{{{spec}}}", "\\toprule",
                " & ".join(escape_latex(str(c)).replace("Δ", "$\\Delta$") for c in cols) + r" \\", "\\midrule"]
        for rec in frame[cols].itertuples(index=False):
            out.append(" & ".join(escape_latex(_cell(v)) for v in rec) + r" \\")
        out += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(out)


def terminal_safe(text: str) -> str:
    """``text`` without control characters (escape sequences must not reach the terminal)."""
    return "".join(ch if ch.isprintable() else "\ufffd" for ch in text)


#: columns that are never per-condition details, whatever their names
SUMMARY_COLUMNS = ("rank", "model", "status", "clean", "Δ clean", "Δ rank", "eff. robustness", "warning")
#: the columns that say which row is which: repeated in every part of a table too wide for the terminal
IDENTIFYING = ("rank", "model")
#: the columns a narrow terminal shows last
LOW_PRIORITY = ("method", "arch", "warning")


def _column_width(frame: pd.DataFrame, col: str) -> int:
    """Characters a column takes in a rich table: its widest cell or header, plus padding and border."""
    return max([len(_cell(v)) for v in frame[col]] + [len(str(col))]) + 3


def column_groups(frame: pd.DataFrame, width: int, *, identifying: tuple[str, ...] = IDENTIFYING,
                  main: str | None = None, low_priority: tuple[str, ...] = LOW_PRIORITY) -> list[list[str]]:
    """The columns of ``frame`` as parts that each fit ``width`` characters: every part starts with the
    identifying columns (never dropped, never cut), then the others whole — the ranking aggregate first, the
    low-priority ones last. One part where everything fits; a table is wrapped, never truncated."""
    ident = [c for c in identifying if c in frame]
    rest = [c for c in frame.columns if c not in ident]
    first = [c for c in ("status", main) if c in rest]
    order = first + [c for c in rest if c not in first and c not in low_priority]
    order += [c for c in rest if c in low_priority and c not in first]
    base = 1 + sum(_column_width(frame, c) for c in ident)
    groups: list[list[str]] = [list(ident)]
    used = base
    for col in order:
        if used + _column_width(frame, col) > width and len(groups[-1]) > len(ident):
            groups.append(list(ident))
            used = base
        groups[-1].append(col)
        used += _column_width(frame, col)
    return groups


def print_frame(frame: pd.DataFrame, title: str, *, console: Any, wide: bool = False,
                identifying: tuple[str, ...] = IDENTIFYING, main: str | None = None,
                low_priority: tuple[str, ...] = LOW_PRIORITY) -> None:
    """Prints ``frame`` with rich (cell text shown as text, never interpreted as markup), fitted to the
    terminal: wrapped into parts that repeat the identifying columns (``column_groups``), unless ``wide`` (one
    table as wide as it needs, for a pager or a file). A cell is never cut."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    groups = [list(frame.columns)] if wide else column_groups(frame, console.width, identifying=identifying,
                                                                 main=main, low_priority=low_priority)
    out = console
    if wide:
        out = Console(file=console.file, width=max(console.width, 1 + sum(_column_width(frame, c)
                                                                           for c in frame.columns)))
    for part, columns in enumerate(groups, 1):
        label = title if len(groups) == 1 else f"{title} ({part}/{len(groups)})"
        table = Table(title=Text(terminal_safe(label)))
        for col in columns:
            numeric = frame[col].dtype.kind in "fi"
            table.add_column(Text(terminal_safe(str(col))), justify="right" if numeric else "left", no_wrap=True)
        for rec in frame[columns].itertuples(index=False):
            table.add_row(*(Text(terminal_safe(_cell(v))) for v in rec))
        out.print(table)


def print_tables(tables: dict[str, pd.DataFrame], *, console: Any = None, wide: bool = False) -> None:
    """Prints every board's table (``print_frame``): the summary columns, wrapped to the terminal, or with
    ``wide`` every column (method, arch, each condition) in one table. A board where one model appears twice also
    repeats the card's file name, so no two rows read alike."""
    from rich.console import Console

    console = console or Console()
    for board, frame in tables.items():
        title = f"{frame.attrs.get('title', board)} [{board}]"
        details = [c for c in frame.attrs.get("details", []) if c in frame]
        if details and not wide:  # method, arch and the per-condition columns: the whole table with --wide
            frame = frame.drop(columns=details)
            shown = ", ".join(details) if len(details) <= 3 else f"method, arch and {len(details) - 2} conditions"
            title += f" (--wide adds {shown})"
        identifying = IDENTIFYING
        if frame["model"].duplicated().any() and frame.attrs.get("cards"):
            frame = frame.assign(card=frame.attrs["cards"])
            identifying = (*IDENTIFYING, "card")
        print_frame(frame, title, console=console, wide=wide, identifying=identifying,
                    main=frame.attrs.get("rank_by"))


def count_models(n: int) -> str:
    """``1 model``, ``3 models``."""
    return f"{n:,} model" + ("" if n == 1 else "s")
