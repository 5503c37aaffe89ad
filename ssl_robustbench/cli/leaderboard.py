"""``robustbench leaderboard build|show|validate`` and ``robustbench submit``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ssl_robustbench.cli.common import friendly_errors

_STORE = click.option("--store", type=click.Path(file_okay=False, path_type=Path), default=None,
                      help="Result store directory (default: this project's results/ or $SSL_ROBUSTBENCH_STORE).")


@click.group("leaderboard")
def leaderboard_group() -> None:
    """Render, show and validate the leaderboard of a result store.

    \b
    Examples:
      robustbench leaderboard build
      robustbench leaderboard build --store runs/leaderboard --format latex
      robustbench leaderboard show --store runs/leaderboard
      robustbench leaderboard validate runs/leaderboard
    """


@leaderboard_group.command("build")
@_STORE
@click.option("--format", "formats", multiple=True, metavar="NAME",
              help="Extra output formats besides markdown and HTML: latex, csv, json (repeatable).")
@friendly_errors
def build_command(store: Path | None, formats: tuple[str, ...]) -> None:
    """Write LEADERBOARD.md, leaderboard.html (self-contained) and plots/*.png from the store's cards; a card that
    is invalid or cannot be rendered is skipped with a warning.

    \b
    Examples:
      robustbench leaderboard build --store runs/leaderboard --format latex
      robustbench leaderboard build --format csv --format json
    """
    from ssl_robustbench.results.store import DEFAULT_FORMATS, build_leaderboard, default_store, store_lock

    store = store or default_store()
    with store_lock(Path(store)):
        written = build_leaderboard(store, formats=tuple(dict.fromkeys((*DEFAULT_FORMATS, *formats))), warn=_warn)
    for path in written:
        click.echo(f"wrote {path}")


def _warn(line: str) -> None:
    from ssl_robustbench.results.leaderboard import terminal_safe

    click.secho(terminal_safe(line), fg="yellow", err=True)


@leaderboard_group.command("show")
@_STORE
@click.option("--wide", is_flag=True, help="Every column, however wide the terminal (default: fit it).")
@friendly_errors
def show_command(store: Path | None, wide: bool) -> None:
    """Print the leaderboard tables in the terminal, fitted to its width (rank, model and score always shown).

    \b
    Examples:
      robustbench leaderboard show --store runs/leaderboard
      robustbench leaderboard show --wide | less -S
    """
    from ssl_robustbench.results.leaderboard import print_tables, suite_tables
    from ssl_robustbench.results.store import default_store, load_store, renderable

    cards, errors = load_store(store or default_store())
    cards, skipped = renderable(cards)
    for line in errors + skipped:
        _warn(f"skipped card: {line}")
    print_tables(suite_tables(cards), wide=wide)


@leaderboard_group.command("validate")
@click.argument("store", type=click.Path(file_okay=False, path_type=Path))
@friendly_errors
def validate_command(store: Path) -> None:
    """Check every card of STORE against the schema and its hashes; exit 1 if any is invalid.

    \b
    Example:
      robustbench leaderboard validate results
    """
    from ssl_robustbench.results.leaderboard import terminal_safe
    from ssl_robustbench.results.store import load_store, renderable

    cards, errors = load_store(store)
    cards, skipped = renderable(cards)
    errors += skipped
    for line in errors:
        click.secho(f"invalid: {terminal_safe(line)}", fg="red")
    click.echo(f"{len(cards)} valid card(s), {len(errors)} invalid")
    sys.exit(1 if errors else 0)


@click.command("submit")
@click.argument("source", type=click.Path(path_type=Path))
@click.option("--to", "store", required=True, help="Store: a directory, or a git repository (any URL git takes).")
@click.option("--dry-run/--no-dry-run", default=False, help="Show what would be written, write nothing.")
@friendly_errors
def submit_command(source: Path, store: str, dry_run: bool) -> None:
    """Submit an eval run directory (one card per suite) or a card file to a result store.

    Validates the cards and their hashes, refuses duplicates (same model, suite and protocol), writes them,
    rebuilds the store's leaderboard; for a git store, commits on a new branch and pushes it.

    \b
    Examples:
      robustbench submit runs/demo --to runs/leaderboard
      robustbench submit runs/demo --to git@github.com:me/ssl-robustbench-results.git --dry-run
    """
    from ssl_robustbench.results.store import submit

    report = submit(source, store, dry_run=dry_run, warn=_warn)
    verb = "would write" if report.dry_run else "wrote"
    for card in report.cards:
        click.echo(f"{verb} {card} in {report.store}")
    if report.branch:
        click.echo(f"{'would push' if report.dry_run else 'pushed'} branch {report.branch} to {report.store}")
    if report.leaderboard:
        click.echo(f"rebuilt {', '.join(report.leaderboard[:2])} (+{len(report.leaderboard) - 2} plots)")
