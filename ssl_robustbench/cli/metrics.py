"""``robustbench metrics c``."""

from __future__ import annotations

from pathlib import Path

import click

from ssl_robustbench.cli.common import friendly_errors


@click.group("metrics")
def metrics_group() -> None:
    """Recompute benchmark aggregates from accuracy tables.

    \b
    Examples:
      robustbench metrics c --from unaggregated_results.csv --baseline AlexNet
      robustbench metrics c --from runs/x/results.csv --clean my-model=0.71 --clean AlexNet=0.5652
    """


@metrics_group.command("c")
@click.option("--from", "source", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Accuracy table: RobustBench's unaggregated_results.csv (two header rows) or a results table.")
@click.option("--baseline", default="hendrycks", show_default=True,
              help="Normalizer: 'hendrycks' (published AlexNet errors) or a row of the table (e.g. AlexNet).")
@click.option("--clean", "cleans", multiple=True, metavar="MODEL=ACC",
              help="Clean accuracy (fraction) of a row, for relative mCE; the baseline's too (repeatable).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Also write a CSV.")
@friendly_errors
def metrics_c(source: Path, baseline: str, cleans: tuple[str, ...], out: Path | None) -> None:
    """ImageNet-C aggregates per row: mean accuracy, mean error, mCE, relative mCE (where clean accuracies are
    given), in %, and which normalizer was used.

    \b
    Example:
      robustbench metrics c --from unaggregated_results.csv --baseline AlexNet --clean Standard_R50=0.7672
    """
    from rich.console import Console
    from rich.table import Table

    from ssl_robustbench.benchmarks.corruption_metrics import metrics_table, read_accuracy_table
    from ssl_robustbench.errors import UserError, warn
    from ssl_robustbench.fileio import atomic_write_text

    clean = {}
    for item in cleans:
        name, sep, value = item.rpartition("=")
        try:
            clean[name] = float(value)
        except ValueError:
            raise UserError(f"--clean expects MODEL=ACC, got {item!r}") from None
        if not sep or not 0 <= clean[name] <= 1:
            raise UserError(f"--clean expects MODEL=ACC with ACC a fraction in [0, 1], got {item!r}")
    frame = metrics_table(read_accuracy_table(source), baseline=baseline, clean=clean)
    shown = [c for c in ("model", "clean_acc", "mean_acc", "mean_err", "mce", "relative_mce") if c in frame]
    table = Table(title=f"ImageNet-C, normalizer: {frame['normalizer'].iloc[0]}")
    for col in shown:
        table.add_column(col, justify="left" if col == "model" else "right")
    for rec in frame[shown].itertuples(index=False):
        table.add_row(str(rec[0]), *("–" if v != v else f"{100 * v:.2f}" for v in rec[1:]))
    Console().print(table)
    if baseline == "hendrycks":
        warn("mce is normalized by AlexNet's errors on ImageNet-C (Hendrycks & Dietterich 2019): it means something "
             "only for accuracies measured on ImageNet-1k val (its 15 corruptions × 5 severities)")
    if out:
        atomic_write_text(out, frame.to_csv(index=False))
        click.echo(f"wrote {out}")
