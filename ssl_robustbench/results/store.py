"""The result store: a directory (or a git repository) of result cards and the leaderboard rendered from them.

Layout: ``cards/<model>__<suite>__<config hash[:8]>.json``, then the generated ``LEADERBOARD.md``,
``leaderboard.html``, ``plots/*.png`` and, on request, ``LEADERBOARD.tex``. ``submit`` validates a run's cards,
refuses duplicates, writes them, rebuilds the leaderboard, and for a git store commits on a new branch and pushes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_write_text
from ssl_robustbench.resources import project_dir
from ssl_robustbench.results.card import (
    CardError,
    card_filename,
    cards_from_run,
    load_card_json,
    read_card,
    validate_card,
)
from ssl_robustbench.results.html import to_html
from ssl_robustbench.results.leaderboard import suite_tables, to_latex, to_markdown
from ssl_robustbench.results.plots import render_plots

CARDS = "cards"


def default_store() -> Path:
    """``$SSL_ROBUSTBENCH_STORE``, else the project's ``results/`` (checkout or installed with the wheel)."""
    env = os.environ.get("SSL_ROBUSTBENCH_STORE")
    return Path(env) if env else project_dir("results")


def load_store(store: Path) -> tuple[list[dict[str, Any]], list[str]]:
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


def build_leaderboard(store: Path, *, latex: bool = False, cards: list[dict[str, Any]] | None = None) -> list[Path]:
    """Renders markdown, HTML and plots (and LaTeX) from the store's valid cards (``cards`` when the caller has
    already loaded them); returns the files written."""
    store = Path(store)
    if cards is None:
        cards, _ = load_store(store)
    tables = suite_tables(cards)
    plots = render_plots(cards, store / "plots")
    written = [store / "LEADERBOARD.md", store / "leaderboard.html", *plots]
    atomic_write_text(written[0], to_markdown(tables))
    atomic_write_text(written[1], to_html(tables, plots))
    if latex:
        written.append(store / "LEADERBOARD.tex")
        atomic_write_text(written[-1], to_latex(tables))
    return written


def cards_from_source(source: Path) -> list[dict[str, Any]]:
    """The cards of an eval run directory, or one card file (validated)."""
    source = Path(source)
    if source.is_dir():
        cards = cards_from_run(source)
    elif source.is_file():
        return [load_card_json(source)]
    else:
        raise UserError(f"nothing to submit at {source}")
    for card in cards:
        validate_card(card, where=source.name)
    return cards


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
        raise UserError(f"git {args[0]} failed: {(proc.stderr or proc.stdout).strip().splitlines()[-1:]}")
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


def submit(source: Path, store: str, *, dry_run: bool = False) -> SubmitReport:
    """Validates ``source``'s cards, refuses duplicates, writes them into ``store`` and rebuilds its leaderboard.

    For a git store: clones it into a temporary directory, commits on a new branch
    ``submit/<model>-<suite>-<config hash>`` and pushes that branch to ``origin``.
    """
    cards = cards_from_source(source)
    names = [card_filename(c) for c in cards]
    git = is_git_store(store)
    with tempfile.TemporaryDirectory(prefix="robustbench-submit-") as tmp:
        if git:
            root = Path(tmp) / "store"
            proc = subprocess.run(["git", "clone", "--quiet", store, str(root)], capture_output=True, text=True,
                                  timeout=300)
            if proc.returncode != 0:
                raise UserError(f"cannot clone {store}: {proc.stderr.strip().splitlines()[-1:]}")
        else:
            root = Path(store)
            if not dry_run:
                root.mkdir(parents=True, exist_ok=True)
        existing = [n for n in names if (root / CARDS / n).exists()]
        if existing:
            raise UserError(f"{store} already has {existing[0]} (same model, suite and protocol)")
        first = cards[0]
        branch = f"submit/{first['model']['id']}-{'-'.join(c['suite'] for c in cards)}-" \
                 f"{first['protocol']['config_hash'][:8]}" if git else None
        report = SubmitReport(store=store, cards=[f"{CARDS}/{n}" for n in names], branch=branch, dry_run=dry_run)
        if dry_run:
            return report
        for card, name in zip(cards, names, strict=True):
            atomic_write_text(root / CARDS / name, json.dumps(card, indent=1, sort_keys=True, allow_nan=False))
        report.leaderboard = [str(p.relative_to(root)) for p in build_leaderboard(root)]
        if git:
            _git("checkout", "--quiet", "-b", branch, cwd=root)
            _git("add", "-A", cwd=root)
            message = (f"Add result cards for {first['model']['id']}: {', '.join(c['suite'] for c in cards)}\n\n"
                       f"protocol {first['protocol']['config_hash']}, checkpoint "
                       f"{first['model']['checkpoint_sha256'][:16]}, ssl-robustbench {first['version']}")
            _git("commit", "--quiet", "-m", message, cwd=root)
            _git("push", "--quiet", "origin", branch, cwd=root)
            report.pushed = True
    return report
