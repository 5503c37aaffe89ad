"""The result store: a directory (or a git repository) of result cards and the leaderboard rendered from them.

Layout: ``cards/<model>__<suite>__<config hash[:16]>.json``, beside each its per-image evidence ``evidence/<card
stem>.parquet`` and the scored head ``heads/<sha256>.safetensors``; ``verifications/<card stem>.json`` (what
``robustbench verify`` found, signed; only records signed by an operator named in ``store.toml`` count); then the
generated ``LEADERBOARD.md``, ``leaderboard.html``, ``plots/*.png`` and, on request, ``LEADERBOARD.tex``. ``submit``
validates a run's cards against their evidence, refuses conflicts, writes them, rebuilds the leaderboard, and for a git
store commits on a new branch and pushes. Every file the store reads is a regular file (no links) of bounded size.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_write_bytes, atomic_write_text
from ssl_robustbench.registry import Registry
from ssl_robustbench.resources import project_dir
from ssl_robustbench.results.card import CardError, ResultCard, load_card_and_evidence, load_card_json
from ssl_robustbench.results.html import to_html
from ssl_robustbench.results.leaderboard import board_tables, to_latex, to_markdown
from ssl_robustbench.results.plots import render_plots
from ssl_robustbench.results.significance import remember

CARDS = "cards"
EVIDENCE = "evidence"
HEADS = "heads"
VERIFICATIONS = "verifications"
MAX_HEAD_BYTES = 256 << 20


def default_store() -> Path:
    """``$SSL_ROBUSTBENCH_STORE``, else the project's ``results/`` (checkout or installed with the wheel)."""
    env = os.environ.get("SSL_ROBUSTBENCH_STORE")
    return Path(env) if env else project_dir("results")


def _card_paths(store: Path) -> list[Path]:
    if not Path(store).is_dir():
        raise UserError(f"result store not found: {store}")
    folder = Path(store) / CARDS
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        raise UserError(f"{folder} must be a directory of cards, not a file or link")
    return sorted(folder.iterdir()) if folder.is_dir() else []


def _cache_file() -> Path:
    """Where validations are remembered: the user's cache (``$SSL_ROBUSTBENCH_CACHE/store``), never the store's tree
    — a store is written by submitters, so nothing in it may vouch for itself."""
    import ssl_robustbench
    from ssl_robustbench.zoo.download import cache_root

    return cache_root() / "store" / f"validated-{ssl_robustbench.__version__}.json"


def _content_key(path: Path) -> str | None:
    """A card remembered by content: sha256 of the card's bytes and of its evidence file's bytes (None: not both
    regular files of bounded size)."""
    from ssl_robustbench.results.card import MAX_CARD_BYTES
    from ssl_robustbench.results.evidence import MAX_EVIDENCE_BYTES, evidence_path, read_regular_file

    try:
        card = read_regular_file(path, limit=MAX_CARD_BYTES, what="card", error=CardError)
        evidence = read_regular_file(evidence_path(path), limit=MAX_EVIDENCE_BYTES, what="evidence", error=CardError)
    except CardError:
        return None
    return f"{hashlib.sha256(card).hexdigest()}:{hashlib.sha256(evidence).hexdigest()}"


def load_store(store: Path, *, use_cache: bool = True) -> tuple[list[ResultCard], list[str]]:
    """Every card under ``store/cards``, each checked against its evidence: (valid cards, one error line per invalid
    file). A card whose exact bytes and evidence bytes this version of the tool has validated before (a content-
    keyed cache in the user's cache directory, never in the store) is only parsed. Ids that look like another id
    are refused here too (``identity.refused_lookalikes``: zoo ids and ids with a signed verification win)."""
    paths = _card_paths(store)
    cache_file = _cache_file()
    known: set[str] = set()
    if use_cache and cache_file.is_file():
        with contextlib.suppress(OSError, ValueError, TypeError):
            known = set(json.loads(cache_file.read_text(encoding="utf-8")))
    fresh: set[str] = set()
    cards, errors = [], []
    for path in paths:
        if path.suffix != ".json":
            errors.append(f"{path.name}: not a .json card")
            continue
        key = _content_key(path) if known else None  # a cache hit is possible only when something is known
        try:
            records = None
            if key is not None and key in known:
                card = load_card_json(path, evidence=False)
            else:  # validated against its evidence, read once
                card, records = load_card_and_evidence(path)
                # the evidence file hashed to the card's evidence sha256: that is its content key
                key = f"{hashlib.sha256(path.read_bytes()).hexdigest()}:{card.evidence['sha256']}"
            if path.name != card.filename:
                raise CardError(f"{path.name}: file name must be {card.filename}")
            if records is not None:
                remember(card, records)
        except CardError as err:
            errors.append(str(err))
            continue
        cards.append(card)
        if use_cache:
            fresh.add(key)
    if use_cache and not fresh <= known:
        with contextlib.suppress(OSError, UserError):
            atomic_write_text(cache_file, json.dumps(sorted(known | fresh)))
    return _without_lookalikes(Path(store), cards, errors)


def _without_lookalikes(store: Path, cards: list[ResultCard], errors: list[str]
                        ) -> tuple[list[ResultCard], list[str]]:
    from ssl_robustbench.results.identity import refused_lookalikes
    from ssl_robustbench.results.trust import statuses

    status = statuses(store, cards)
    canonical = _zoo_ids() | {c.model.id for c in cards if status.get(c.filename) == "verified"}
    refused = refused_lookalikes({c.model.id for c in cards}, canonical)
    errors = errors + [f"{c.filename}: model id {c.model.id!r} reads like {refused[c.model.id]!r}; a look-alike id "
                       "is refused" for c in cards if c.model.id in refused]
    return [c for c in cards if c.model.id not in refused], errors


def _zoo_ids() -> set[str]:
    from ssl_robustbench.zoo import zoo_dir

    try:
        return {p.stem for p in zoo_dir().glob("*.yaml")}
    except UserError:
        return set()


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
    """The cards every output renders without error, and one warning per card left out (a defence in depth for
    cards about to be submitted: validation should already have refused it)."""
    good, skipped = [], []
    for card in cards:
        try:
            tables = board_tables([card])
            for name in FORMATS.names():
                FORMATS.get(name)[1](tables, [card], [])
        except Exception as err:  # noqa: BLE001 - one card must never take the store down
            skipped.append(f"{card.filename}: cannot be rendered ({type(err).__name__}: {str(err)[:120]})")
        else:
            good.append(card)
    return good, skipped


def board_tables_of_store(store: Path, cards: list[ResultCard]) -> dict:
    """The store's boards: ranks within each board, statuses from the signed records in ``verifications/``, and
    the paired McNemar test between neighbours on the cards' evidence (pairs cached outside the store)."""
    from ssl_robustbench.results.significance import PairCache
    from ssl_robustbench.results.trust import statuses

    with PairCache(Path(store)) as pairs:
        return board_tables(cards, statuses=statuses(Path(store), cards),
                            compare=lambda a, b: pairs.mcnemar(a, b))


def build_leaderboard(store: Path, *, formats: tuple[str, ...] = DEFAULT_FORMATS,
                      cards: list[ResultCard] | None = None, warn: Callable[[str], None] | None = None) -> list[Path]:
    """Renders the store's valid cards (``cards`` when the caller has already loaded them) into ``formats`` and
    plots, one board per suite and protocol. Returns the files written."""
    store = Path(store)
    for name in formats:
        FORMATS.get(name)
    if cards is None:
        cards, errors = load_store(store)
        for line in errors:
            (warn or _ignore)(f"skipped invalid card: {line}")
    tables = board_tables_of_store(store, cards)
    plots = render_plots(cards, store / "plots", tables=tables)
    written = []
    for name in formats:
        filename, render = FORMATS.get(name)
        _writable(store / filename)
        atomic_write_text(store / filename, render(tables, cards, plots))
        written.append(store / filename)
    return [*written, *plots]


def _writable(path: Path) -> None:
    """A file the store writes must not be a directory or a link (one error line instead of a traceback)."""
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise UserError(f"{path} must be a regular file; it is a directory or a link (remove it)")


def _ignore(_: str) -> None:
    return None


@contextlib.contextmanager
def store_lock(store: Path) -> Iterator[None]:
    """An exclusive lock on ``store`` (``.lock``, flock) held while cards are written and the leaderboard rebuilt,
    so concurrent submits to one store serialize instead of racing."""
    store.mkdir(parents=True, exist_ok=True)
    _writable(store / ".lock")
    with open(store / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@dataclasses.dataclass(frozen=True)
class CardFiles:
    """A validated card and the files that travel with it: the card, its evidence and its scored head."""

    card: ResultCard
    path: Path
    evidence: Path
    head: Path | None
    records: list[Any]  # the per-image evidence, read once (results.evidence.ImageEvidence)

    def targets(self) -> dict[Path, Path]:
        """Source file → path relative to a store's root."""
        out = {self.path: Path(CARDS) / self.card.filename,
               self.evidence: Path(EVIDENCE) / f"{Path(self.card.filename).stem}.parquet"}
        if self.head is not None:
            out[self.head] = Path(HEADS) / self.head.name
        return out


def card_files(path: Path) -> CardFiles:
    """A card file (in a run directory or a store) with its evidence and head, all checked."""
    from ssl_robustbench.results.evidence import evidence_path, head_path, read_regular_file

    card, records = load_card_and_evidence(path)
    head = None
    if card.evidence["head_sha256"]:
        head = head_path(path, card.evidence["head_sha256"])
        data = read_regular_file(head, limit=MAX_HEAD_BYTES, what="head file", error=CardError)
        if hashlib.sha256(data).hexdigest() != card.evidence["head_sha256"]:
            raise CardError(f"{path.name}: the head file's sha256 differs from the card's")
    return CardFiles(card=card, path=Path(path), evidence=evidence_path(path), head=head, records=records)


def cards_from_source(source: Path) -> list[CardFiles]:
    """The cards of an eval run directory (``cards/*.json``), or one card file, with their files (validated)."""
    source = Path(source)
    if source.is_dir():
        folder = source / CARDS
        paths = sorted(folder.glob("*.json")) if folder.is_dir() else []
        if not paths:
            raise UserError(f"{source} is not a finished eval run directory (no cards/)")
        return [card_files(p) for p in paths]
    if source.is_file():
        return [card_files(source)]
    raise UserError(f"nothing to submit at {source}")


def is_git_store(spec: str) -> bool:
    """A URL git understands, a bare repository, or a working tree; a plain directory is not."""
    path = Path(spec)
    if "://" in spec or (":" in spec and not path.exists()):  # URL or scp-like host:path
        return True
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


class GitError(UserError):
    """A git command that failed (its last line of output)."""


def _git(*args: str, cwd: Path) -> str:
    ident = [] if _git_has_identity(cwd) else ["-c", "user.name=ssl-robustbench", "-c",
                                                  "user.email=ssl-robustbench@localhost"]
    proc = subprocess.run(["git", *ident, *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["no message"]
        raise GitError(f"git {args[0]} failed: {lines[-1]}")
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
    already: list[str] = dataclasses.field(default_factory=list)
    leaderboard: list[str] = dataclasses.field(default_factory=list)


def check_store_spec(store: str) -> str:
    """A store given on the command line: not empty, not an option (``-…``), no control characters."""
    if not store or not store.strip():
        raise UserError("--to needs a store: a directory or a git repository")
    if store.startswith("-") or any(ord(ch) < 32 for ch in store):
        raise UserError(f"store {store[:60]!r} must not begin with '-' or hold control characters")
    return store


def _place(files: list[CardFiles], root: Path, report: SubmitReport) -> list[CardFiles]:
    """Copies the files of cards not yet in ``root``; a card already there with the same bytes is a no-op
    (listed in ``report.already``), a different card under the same name is an error. Look-alike ids refused."""
    from ssl_robustbench.results.identity import check_not_lookalike

    existing_ids = {p.name.split("__", 1)[0] for p in _card_paths(root)} if (root / CARDS).exists() else set()
    new = []
    for f in files:
        check_not_lookalike(f.card.model.id, existing_ids | _zoo_ids())
        target = root / CARDS / f.card.filename
        if target.exists() or target.is_symlink():
            _writable(target)
            if target.read_bytes() == f.path.read_bytes():
                report.already.append(f"{CARDS}/{f.card.filename}")
                continue
            raise UserError(f"{report.store} already has {f.card.filename} (same model, suite and protocol) with "
                            "other results; a new run of the same protocol needs another model id")
        new.append(f)
    return new


def _copy(files: list[CardFiles], root: Path) -> None:
    for f in files:  # the evidence and head first: a card is never visible without its files
        for source, rel in sorted(f.targets().items(), key=lambda kv: kv[1].parts[0] == CARDS):
            _writable(root / rel)
            atomic_write_bytes(root / rel, source.read_bytes())


def submit(source: Path, store: str, *, dry_run: bool = False, warn: Callable[[str], None] | None = None
           ) -> SubmitReport:
    """Validates ``source``'s cards with their evidence and heads, writes them into ``store`` and rebuilds its
    leaderboard; submitting the same card again is a no-op.

    For a git store: clones it into a temporary directory (removed even when the submit is interrupted; stale ones
    of killed submits are removed by the next), commits on the branch ``submit/<model>-<suites>-<config hash>`` and
    pushes it to ``origin``. A branch that already holds these cards (a retry after a killed push, or a concurrent
    submit of the same cards) is reported, not an error.
    """
    store = check_store_spec(store)
    git = is_git_store(store)
    if not git and Path(store).exists() and not Path(store).is_dir():
        raise UserError(f"store {store} is a file, not a directory or git repository")
    files = cards_from_source(source)
    _, skipped = renderable([f.card for f in files])
    if skipped:
        raise UserError(f"refused: {skipped[0]}")
    first = files[0].card
    names = [f"{CARDS}/{f.card.filename}" for f in files]
    branch = (f"submit/{first.model.id}-{'-'.join(f.card.suite for f in files)}-{first.protocol.config_hash[:12]}"
              if git else None)
    report = SubmitReport(store=store, cards=names, branch=branch, dry_run=dry_run)
    if not git:
        root = Path(store)
        if dry_run:
            if root.is_dir():
                _place(files, root, report)
            return report
        with store_lock(root):
            new = _place(files, root, report)
            _copy(new, root)
            if new:
                report.leaderboard = [str(p.relative_to(root)) for p in build_leaderboard(root, warn=warn)]
        return report
    with _scratch() as tmp:
        root = tmp / "store"
        proc = subprocess.run(["git", "clone", "--quiet", "--", store, str(root)], capture_output=True, text=True,
                              timeout=300)
        if proc.returncode != 0:
            last = (proc.stderr.strip().splitlines() or ["git clone failed"])[-1]
            raise UserError(f"cannot clone {store}: {last}")
        if _remote_branch_holds(root, branch, files):
            report.already = names
            return report
        new = _place(files, root, report)
        if dry_run or not new:
            return report
        _copy(new, root)
        report.leaderboard = [str(p.relative_to(root)) for p in build_leaderboard(root, warn=warn)]
        _git("checkout", "--quiet", "-b", branch, cwd=root)
        added = [d for d in (CARDS, EVIDENCE, HEADS) if (root / d).is_dir()]
        _git("add", "-A", "--", *added, *report.leaderboard, cwd=root)
        message = (f"Add result cards for {first.model.id}: {', '.join(f.card.suite for f in files)}\n\n"
                   f"protocol {first.protocol.config_hash}, checkpoint "
                   f"{first.model.checkpoint_sha256[:16]}, ssl-robustbench {first.version}")
        _git("commit", "--quiet", "-m", message, cwd=root)
        try:
            _git("push", "--quiet", "origin", f"{branch}:{branch}", cwd=root)
        except GitError:
            if _remote_branch_holds(root, branch, files):  # a concurrent submit of these cards pushed first
                report.already = names
                return report
            raise UserError(f"git push of {branch} was refused: the branch exists with other contents; delete it "
                            "on the store or submit under another model id") from None
        report.pushed = True
    return report


def _remote_branch_holds(root: Path, branch: str, files: list[CardFiles]) -> bool:
    """Whether ``origin`` has ``branch`` holding exactly these card files."""
    try:
        _git("fetch", "--quiet", "origin", f"+refs/heads/{branch}:refs/remotes/origin/{branch}", cwd=root)
    except GitError:
        return False
    for f in files:
        proc = subprocess.run(["git", "show", f"origin/{branch}:{CARDS}/{f.card.filename}"], cwd=root,
                              capture_output=True, timeout=60)
        if proc.returncode != 0 or proc.stdout != f.path.read_bytes():
            return False
    return True


SCRATCH_PREFIX = "robustbench-submit-"


@contextlib.contextmanager
def _scratch() -> Iterator[Path]:
    """A temporary directory for a git submit, named by this process id; directories left by killed submits
    (their process gone) are removed first, and this one on any exit, a signal included."""
    import shutil
    import signal

    base = Path(tempfile.gettempdir())
    for old in base.glob(f"{SCRATCH_PREFIX}*"):
        pid = old.name.removeprefix(SCRATCH_PREFIX).split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    path = Path(tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-"))
    previous = signal.getsignal(signal.SIGTERM)

    def on_term(signum, frame):  # SIGTERM: clean up like an exception would
        raise KeyboardInterrupt

    with contextlib.suppress(ValueError):  # not the main thread: no handler
        signal.signal(signal.SIGTERM, on_term)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(ValueError, TypeError):
            signal.signal(signal.SIGTERM, previous)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
