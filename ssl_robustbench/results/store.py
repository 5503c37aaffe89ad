"""The result store: a directory (or a git repository) of result cards and the leaderboard rendered from them.

Layout: ``cards/<model>__<suite>__<config hash[:8]>.json``, then the generated ``LEADERBOARD.md``,
``leaderboard.html``, ``plots/*.png`` and, on request, ``LEADERBOARD.tex``. ``submit`` validates a run's cards,
refuses duplicates, writes them, rebuilds the leaderboard, and for a git store commits on a new branch and pushes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_write_text
from ssl_robustbench.registry import Registry
from ssl_robustbench.resources import project_dir
from ssl_robustbench.results.card import CardError, ResultCard, load_card_json, read_card
from ssl_robustbench.results.html import to_html
from ssl_robustbench.results.leaderboard import suite_tables, to_latex, to_markdown
from ssl_robustbench.results.plots import render_plots

CARDS = "cards"


def default_store() -> Path:
    """``$SSL_ROBUSTBENCH_STORE``, else the project's ``results/`` (checkout or installed with the wheel)."""
    env = os.environ.get("SSL_ROBUSTBENCH_STORE")
    return Path(env) if env else project_dir("results")


def load_store(store: Path) -> tuple[list[ResultCard], list[str]]:
    """Every card under ``store/cards``: (valid cards, one error line per invalid file)."""
    folder = Path(store) / CARDS
    if not Path(store).is_dir():
        raise UserError(f"result store not found: {store}")
    cards, errors = [], []
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        if path.suffix != ".json":
            errors.append(f"{path.name}: not a .json card")
            continue
        try:
            cards.append(read_card(path))
        except CardError as err:
            errors.append(str(err))
    return cards, errors


#: Output formats of the leaderboard: name → (file name, renderer(tables, cards, plot paths) -> text). The
#: default build writes markdown and HTML; ``--format`` adds others. Adding a format is one entry.
FORMATS: Registry[tuple[str, Callable[..., str]]] = Registry("leaderboard format")
FORMATS.register("markdown")(("LEADERBOARD.md", lambda tables, cards, plots: to_markdown(tables)))
FORMATS.register("html")(("leaderboard.html", lambda tables, cards, plots: to_html(tables, plots)))
FORMATS.register("latex")(("LEADERBOARD.tex", lambda tables, cards, plots: to_latex(tables)))
FORMATS.register("csv")(("leaderboard.csv", lambda tables, cards, plots: _long_table(tables).to_csv(index=False)))
FORMATS.register("json")(("leaderboard.json", lambda tables, cards, plots: json.dumps(
    {suite: frame.to_dict("records") for suite, frame in tables.items()}, indent=1, default=str)))
DEFAULT_FORMATS = ("markdown", "html")


def _long_table(tables: dict) -> Any:
    import pandas as pd

    return pd.concat([frame.assign(suite=suite) for suite, frame in tables.items()], ignore_index=True) \
        if tables else pd.DataFrame()


def renderable(cards: list[ResultCard]) -> tuple[list[ResultCard], list[str]]:
    """The cards every output renders without error, and one warning per card left out (a defence in depth:
    validation should already have refused it)."""
    good, skipped = [], []
    for card in cards:
        try:
            tables = suite_tables([card])
            for name in FORMATS.names():
                FORMATS.get(name)[1](tables, [card], [])
        except Exception as err:  # noqa: BLE001 - one card must never take the store down
            skipped.append(f"{card.filename}: cannot be rendered ({type(err).__name__}: {str(err)[:120]})")
        else:
            good.append(card)
    return good, skipped


def build_leaderboard(store: Path, *, formats: tuple[str, ...] = DEFAULT_FORMATS,
                      cards: list[ResultCard] | None = None, warn: Callable[[str], None] | None = None) -> list[Path]:
    """Renders the store's valid cards (``cards`` when the caller has already loaded them) into ``formats`` and
    plots; a card that cannot be rendered is skipped with a warning. Returns the files written."""
    store = Path(store)
    for name in formats:
        FORMATS.get(name)
    if cards is None:
        cards, errors = load_store(store)
        for line in errors:
            (warn or _ignore)(f"skipped invalid card: {line}")
    cards, skipped = renderable(cards)
    for line in skipped:
        (warn or _ignore)(f"skipped card: {line}")
    tables = suite_tables(cards)
    plots = render_plots(cards, store / "plots")
    written = []
    for name in formats:
        filename, render = FORMATS.get(name)
        atomic_write_text(store / filename, render(tables, cards, plots))
        written.append(store / filename)
    return [*written, *plots]


def _ignore(_: str) -> None:
    return None


@contextlib.contextmanager
def store_lock(store: Path) -> Iterator[None]:
    """An exclusive lock on ``store`` (``.lock``, flock) held while cards are written and the leaderboard rebuilt,
    so concurrent submits to one store serialize instead of racing."""
    store.mkdir(parents=True, exist_ok=True)
    with open(store / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cards_from_run(run_dir: Path) -> list[ResultCard]:
    """The cards an eval run wrote (``<run>/cards/<suite>.json``), validated."""
    folder = Path(run_dir) / "cards"
    paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not paths:
        raise UserError(f"{run_dir} is not a finished eval run directory (no cards/)")
    return [load_card_json(p) for p in paths]


def cards_from_source(source: Path) -> list[ResultCard]:
    """The cards of an eval run directory, or one card file (validated)."""
    source = Path(source)
    if source.is_dir():
        return cards_from_run(source)
    if source.is_file():
        return [load_card_json(source)]
    raise UserError(f"nothing to submit at {source}")


def is_git_store(spec: str) -> bool:
    """A URL git understands, a bare repository, or a working tree; a plain directory is not."""
    path = Path(spec)
    if "://" in spec or (":" in spec and not path.exists()):  # URL or scp-like host:path
        return True
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def _git(*args: str, cwd: Path) -> str:
    ident = [] if _git_has_identity(cwd) else ["-c", "user.name=ssl-robustbench", "-c",
                                                  "user.email=ssl-robustbench@localhost"]
    proc = subprocess.run(["git", *ident, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no message"]
        raise UserError(f"git {args[0]} failed: {lines[-1]}")
    return proc.stdout


def _git_has_identity(cwd: Path) -> bool:
    proc = subprocess.run(["git", "config", "user.email"], cwd=cwd, capture_output=True, text=True)
    return proc.returncode == 0 and bool(proc.stdout.strip())


@dataclasses.dataclass
class SubmitReport:
    """What ``submit`` did (or would do, with ``dry_run``)."""

    store: str
    cards: list[str]
    branch: str | None = None
    pushed: bool = False
    dry_run: bool = False
    leaderboard: list[str] = dataclasses.field(default_factory=list)


def submit(source: Path, store: str, *, dry_run: bool = False, warn: Callable[[str], None] | None = None
           ) -> SubmitReport:
    """Validates ``source``'s cards, refuses duplicates, writes them into ``store`` and rebuilds its leaderboard.

    For a git store: clones it into a temporary directory, commits on a new branch
    ``submit/<model>-<suite>-<config hash>`` and pushes that branch to ``origin``.
    """
    git = is_git_store(store)
    if not git and Path(store).exists() and not Path(store).is_dir():
        raise UserError(f"store {store} is a file, not a directory or git repository")
    cards = cards_from_source(source)
    good, skipped = renderable(cards)
    if skipped:
        raise UserError(f"refused: {skipped[0]}")
    names = [c.filename for c in cards]
    with tempfile.TemporaryDirectory(prefix="robustbench-submit-") as tmp:
        if git:
            root = Path(tmp) / "store"
            proc = subprocess.run(["git", "clone", "--quiet", store, str(root)], capture_output=True, text=True,
                                  timeout=300)
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["git clone failed"])[-1]
                raise UserError(f"cannot clone {store}: {last}")
        else:
            root = Path(store)
            if not dry_run:
                root.mkdir(parents=True, exist_ok=True)
        first = cards[0]
        branch = f"submit/{first.model.id}-{'-'.join(c.suite for c in cards)}-" \
                 f"{first.protocol.config_hash[:8]}" if git else None
        report = SubmitReport(store=store, cards=[f"{CARDS}/{n}" for n in names], branch=branch, dry_run=dry_run)
        if dry_run:
            existing = [n for n in names if (root / CARDS / n).exists()]
            if existing:
                raise UserError(f"{store} already has {existing[0]} (same model, suite and protocol)")
            return report
        with store_lock(root):
            existing = [n for n in names if (root / CARDS / n).exists()]
            if existing:
                raise UserError(f"{store} already has {existing[0]} (same model, suite and protocol)")
            for card, name in zip(cards, names, strict=True):
                atomic_write_text(root / CARDS / name, card.dumps())
            report.leaderboard = [str(p.relative_to(root)) for p in build_leaderboard(root, warn=warn)]
        if git:
            _git("checkout", "--quiet", "-b", branch, cwd=root)
            _git("add", "-A", cwd=root)
            message = (f"Add result cards for {first.model.id}: {', '.join(c.suite for c in cards)}\n\n"
                       f"protocol {first.protocol.config_hash}, checkpoint "
                       f"{first.model.checkpoint_sha256[:16]}, ssl-robustbench {first.version}")
            _git("commit", "--quiet", "-m", message, cwd=root)
            _git("push", "--quiet", "origin", branch, cwd=root)
            report.pushed = True
    return report
