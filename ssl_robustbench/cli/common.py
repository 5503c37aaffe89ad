"""Options shared by commands, config resolution and the one-line error handling for expected mistakes."""

from __future__ import annotations

import errno
import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ssl_robustbench.config import MAX_BATCH, MAX_SEED
from ssl_robustbench.errors import UserError


def run_options(func: Callable) -> Callable:
    """``--device --batch-size --workers --out --seed --config --set`` for commands that run work."""
    options = [
        click.option("--device", type=str, default=None, help="auto, cpu or cuda[:N] (default auto)."),
        click.option("--batch-size", type=click.IntRange(1, MAX_BATCH), default=None,
                     help="Images per batch (default 256)."),
        click.option("--workers", type=click.IntRange(0, 256), default=None,
                     help="DataLoader worker processes (default 0)."),
        click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Run directory (default runs/<model>-<config hash>)."),
        click.option("--seed", type=click.IntRange(0, MAX_SEED), default=None,
                     help="Seed of every random draw (default 0)."),
        click.option("--cache-dir", type=click.Path(file_okay=False), default=None,
                     help="Cache for checkpoints, datasets, features (default $SSL_ROBUSTBENCH_CACHE)."),
        click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
                     help="YAML config; CLI options and --set override it."),
        click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override any config key, e.g. --set probe.weight_decay=1e-3 (repeatable)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def run_section(kw: dict[str, Any]) -> dict[str, Any]:
    """The ``run:`` part of a config from the shared options (None = not given)."""
    keys = ("device", "batch_size", "workers", "seed", "cache_dir", "out")
    return {k: str(kw[k]) if k == "out" else kw[k] for k in keys if kw.get(k) is not None}


def prune(d: dict[str, Any]) -> dict[str, Any]:
    """Drops None values and empty sub-mappings (options the user did not give)."""
    out = {}
    for key, value in d.items():
        if isinstance(value, dict):
            value = prune(value)
            if value:
                out[key] = value
        elif value is not None:
            out[key] = value
    return out


DISK_ERRORS = {errno.ENOSPC: "free disk space (or choose another --out / --cache-dir)",
               errno.EDQUOT: "the disk quota is full",
               errno.EROFS: "the file system is read-only: choose a writable --out / --cache-dir",
               errno.EACCES: "no permission: choose a writable --out / --cache-dir",
               errno.EPERM: "not permitted: choose a writable --out / --cache-dir"}


def one_line(text: str) -> str:
    """``text`` with newlines and other control characters escaped (a path may hold them): one terminal line."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in text)


def friendly_errors(func: Callable) -> Callable:
    """Prints a UserError as one red line on stderr and exits with status 2, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except UserError as err:
            text = str(err).strip()
            if "Original Traceback" in text:  # raised inside a DataLoader worker
                text = text.splitlines()[-1].removeprefix("ssl_robustbench.errors.UserError: ")
            click.secho(f"error: {one_line(text) or 'unknown error'}", fg="red", err=True)
            sys.exit(2)
        except OSError as err:  # the file system said no: one line with the path and what to do
            if err.errno not in DISK_ERRORS and not err.filename:
                raise
            where = f": {err.filename}" if err.filename else ""
            hint = DISK_ERRORS.get(err.errno, "check the path (--out, --cache-dir, --data-root)")
            click.secho(f"error: {one_line(err.strerror or str(err))}{one_line(where)} — {hint}; what was finished "
                        "is kept, a re-run resumes", fg="red", err=True)
            sys.exit(2)

    return wrapper
