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
    """Render, show and validate the leaderboard of a result store; name who may sign its verifications.

    \b
    Examples:
      robustbench leaderboard build
      robustbench leaderboard build --store runs/leaderboard --format latex
      robustbench leaderboard show --store runs/leaderboard
      robustbench leaderboard validate runs/leaderboard
      robustbench leaderboard keygen ~/.config/robustbench/operator_ed25519
      robustbench leaderboard trust runs/leaderboard ~/.config/robustbench/operator_ed25519.pub
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
    if not Path(store).is_dir():
        from ssl_robustbench.errors import UserError

        raise UserError(f"result store not found: {store}")
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
@click.option("--suite", "suites", multiple=True, metavar="NAME", help="Only the boards of this suite (repeatable).")
@click.option("--board", "boards", multiple=True, metavar="ID",
              help="Only this board: its id (<suite>-<protocol hash[:12]>) or a prefix of it (repeatable).")
@click.option("--models", "per_model", is_flag=True,
              help="One row per model: its score on each board, side by side (never averaged across boards).")
@friendly_errors
def show_command(store: Path | None, wide: bool, suites: tuple[str, ...], boards: tuple[str, ...],
                 per_model: bool) -> None:
    """Print the leaderboard's boards in the terminal (one per suite and protocol), fitted to its width (rank,
    model, verification status and score always shown).

    \b
    Examples:
      robustbench leaderboard show --store runs/leaderboard
      robustbench leaderboard show --suite c
      robustbench leaderboard show --board clean-09d8 --wide | less -S
      robustbench leaderboard show --models
    """
    from ssl_robustbench.errors import UserError
    from ssl_robustbench.results import board_cache
    from ssl_robustbench.results.leaderboard import print_tables
    from ssl_robustbench.results.store import default_store

    store = store or default_store()
    key = board_cache.content_key(store) if store.is_dir() else None
    snapshot = board_cache.load(key) if key else None  # an unchanged store: no rebuild, no torch
    if snapshot is None:
        from ssl_robustbench.results.store import board_tables_of_store, load_store

        cards, errors = load_store(store)
        tables = board_tables_of_store(store, cards)
        board_cache.save(key, tables, errors)
    else:
        tables, errors = snapshot
    for line in errors:
        _warn(f"skipped card: {line}")
    chosen = {k: v for k, v in tables.items() if (not suites or v.attrs["suite"] in suites)
              and (not boards or any(k.startswith(b) for b in boards))}
    if (suites or boards) and not chosen:
        raise UserError(f"no board matches; boards: {', '.join(tables) or 'none'}")
    if per_model:
        from rich.console import Console

        from ssl_robustbench.results.leaderboard import model_summary, print_frame

        models = model_summary(chosen)
        print_frame(models, models.attrs["title"], console=Console(), wide=wide, identifying=("model",),
                    low_priority=())
        return
    print_tables(chosen, wide=wide)


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
    from ssl_robustbench.results.store import load_store

    cards, errors = load_store(store)
    for line in errors:
        click.secho(f"invalid: {terminal_safe(line)}", fg="red")
    click.echo(f"{len(cards)} valid card(s), {len(errors)} invalid")
    sys.exit(1 if errors else 0)


@leaderboard_group.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--comment", default="robustbench-operator", show_default=True, help="The public key's comment.")
@friendly_errors
def keygen_command(path: Path, comment: str) -> None:
    """Write a new ed25519 key pair for signing verification records: PATH (private, OpenSSH format, mode 600)
    and PATH.pub (the line that goes into a store's store.toml). ``ssh-keygen -t ed25519`` makes the same kind.

    \b
    Example:
      robustbench leaderboard keygen ~/.config/robustbench/operator_ed25519
    """
    from ssl_robustbench.results.trust import write_key_pair

    public = write_key_pair(path, comment=comment)
    click.echo(f"wrote {path} (keep it private) and {path}.pub:\n{public}")


@leaderboard_group.command("trust")
@click.argument("store", type=click.Path(file_okay=False, path_type=Path))
@click.argument("public_key", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="The operator's name (default: the key's comment).")
@click.option("--store-name", default=None, help="The store's name when store.toml is created (default: the "
                                                    "folder's name).")
@friendly_errors
def trust_command(store: Path, public_key: Path, name: str | None, store_name: str | None) -> None:
    """Name an operator of STORE: add the ed25519 PUBLIC_KEY (an OpenSSH .pub line) to STORE/store.toml, so the
    verification records it signs count on the store's boards.

    \b
    Example:
      robustbench leaderboard trust runs/leaderboard ~/.config/robustbench/operator_ed25519.pub --name me
    """
    from ssl_robustbench.results.trust import add_operator

    operator = add_operator(store, public_key.read_text(encoding="utf-8").strip(), name=name,
                            store_name=store_name)
    click.echo(f"{store}/store.toml: operator {operator.name or '(unnamed)'} {operator.fingerprint}")


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
        if card in report.already:
            click.echo(f"{card} is already in {report.store} with the same contents: nothing to do")
        else:
            click.echo(f"{verb} {card} in {report.store}")
    if report.branch and len(report.already) < len(report.cards):
        click.echo(f"{'would push' if report.dry_run else 'pushed'} branch {report.branch} to {report.store}")
    if report.leaderboard:
        click.echo(f"rebuilt {', '.join(report.leaderboard[:2])} (+{len(report.leaderboard) - 2} plots)")
