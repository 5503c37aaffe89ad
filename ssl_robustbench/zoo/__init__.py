"""The model zoo: cards (``zoo_dir``, ``list_cards``, ``get_card``: light, no torch) and, imported on first use
from ``zoo/loading.py``, model loading (``load_model``, ``resolve_card``, ``load_released_head`` …).

A model reference is a zoo id (``robustbench zoo list``), a path to a card YAML, ``hf-hub:<repo>@<revision>``, or a
checkpoint file plus an arch.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ssl_robustbench.errors import UserError
from ssl_robustbench.registry import unknown_name_message
from ssl_robustbench.resources import project_dir
from ssl_robustbench.zoo.card import ID_PATTERN, ZooCard, load_card

#: what ``zoo/loading.py`` provides (torch and the backbones behind it are imported when one is first used)
_LOADING = ("LoadedModel", "arch_preprocessing", "checkpoint_path", "hub_card", "load_model", "load_released_head",
            "read_fetched", "resolve_card", "with_overrides")


def __getattr__(name: str) -> Any:
    if name in _LOADING:
        from ssl_robustbench.zoo import loading

        return getattr(loading, name)
    raise AttributeError(f"module 'ssl_robustbench.zoo' has no attribute {name!r}")


def zoo_dir() -> Path:
    """``$SSL_ROBUSTBENCH_ZOO``, else the project's ``model_zoo/`` (checkout or installed with the wheel); a
    folder that does not exist is a UserError (not an empty zoo)."""
    env = os.environ.get("SSL_ROBUSTBENCH_ZOO")
    directory = Path(env) if env else project_dir("model_zoo")
    if not directory.is_dir():
        where = "$SSL_ROBUSTBENCH_ZOO" if env else "the project's model_zoo/"
        raise UserError(f"zoo folder {directory} ({where}) does not exist")
    return directory


def list_cards(directory: Path | None = None, *, on_bad=None) -> list[ZooCard]:
    """Every card in the zoo folder, validated, sorted by id. ``on_bad(error)``: called for a card that fails
    validation, which is then left out (default: the error is raised)."""
    directory = directory or zoo_dir()
    cards = []
    for path in directory.glob("*.yaml"):
        try:
            cards.append(load_card(path))
        except UserError as error:
            if on_bad is None:
                raise
            on_bad(error)
    return sorted(cards, key=lambda c: c.id)


def get_card(model_id: str, directory: Path | None = None) -> ZooCard:
    """The card with ``model_id``; unknown ids get close-name suggestions. An id that is not a zoo id (a path,
    a trailing newline) is refused before any file is touched."""
    if not ID_PATTERN.fullmatch(model_id):
        raise UserError(f"{model_id!r} is not a zoo id (lowercase letters, digits, '.', '_', '-'; see "
                        "`robustbench zoo list`) nor a card or checkpoint file")
    directory = directory or zoo_dir()
    path = directory / f"{model_id}.yaml"
    if not path.is_file():
        raise UserError(unknown_name_message("zoo model", model_id, [p.stem for p in directory.glob("*.yaml")]))
    return load_card(path)
