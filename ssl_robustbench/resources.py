"""Where the project's data folders are: ``model_zoo/`` (cards and bundled weights), ``benchmarks/`` (suite specs
and recipes) and ``results/`` (the result store) — beside the package in a source checkout, or installed with the
wheel under ``<prefix>/share/ssl-robustbench/`` (``setup.cfg``'s ``data_files``)."""

from __future__ import annotations

import site
import sys
from pathlib import Path

SHARE = Path("share") / "ssl-robustbench"


def project_dir(name: str) -> Path:
    """The folder ``name`` of a checkout if there is one, else the installed copy (the first prefix that holds
    it: the environment's, then the user's); the checkout path when neither exists, so errors name it."""
    checkout = Path(__file__).resolve().parents[1] / name
    if checkout.is_dir():
        return checkout
    for prefix in (sys.prefix, sys.base_prefix, site.getuserbase()):
        installed = Path(prefix) / SHARE / name
        if installed.is_dir():
            return installed
    return checkout


def find_config(path: Path) -> Path:
    """``path`` as given; a relative ``benchmarks/...`` path that does not exist here is looked up in the project's
    ``benchmarks/`` (so the README's ``--config benchmarks/...`` works from any directory after ``pip install``)."""
    path = Path(path)
    if path.exists() or path.is_absolute() or not path.parts or path.parts[0] != "benchmarks":
        return path
    candidate = project_dir("benchmarks").joinpath(*path.parts[1:])
    return candidate if candidate.exists() else path
