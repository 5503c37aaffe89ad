"""Model ids that read alike: two rows must never read as the same model (``resnet50-simclr`` vs
``resnet5o-simclr``, ``dino_vits16`` vs ``dino-vits16``, ``embedded`` vs ``embeded`` or ``ennbedded``,
``tinyresnet`` vs ``tinyrcsnet``). Ids are ASCII by pattern (``card.ID_PATTERN``), which already refuses Cyrillic,
zero-width and bidi characters; what is left are ASCII confusables, separators, doubled letters and single-letter
slips inside a word.

Two ids look alike when (a) their skeletons are equal (separators dropped, ``rn``/``nn``→``m``, ``vv``→``w``,
``cl``→``d``, doubled letters collapsed, digits that look like letters mapped), or (b) one letter inserted, deleted,
replaced or swapped inside a word of at least ``WORD`` letters turns one into the other. Short codes that differ
by one character (``vitb16`` / ``vits16``, ``mocov2`` / ``mocov3``) are distinct models and stay apart. Groups are
found with a deletion index (Garbe's symmetric delete), linear in the number of ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ssl_robustbench.errors import UserError

_CONFUSABLE = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "5": "s", "2": "z", "8": "b"})
_LIGATURES = (("rn", "m"), ("nn", "m"), ("vv", "w"), ("cl", "d"))
_DOUBLES = re.compile(r"([a-z])\1+")
WORD = 5


def _ligatures(text: str) -> str:
    for pair, single in _LIGATURES:
        text = text.replace(pair, single)
    return text


def _letters(model_id: str) -> str:
    """Lower case, ligature look-alikes replaced, doubled letters collapsed (separators kept)."""
    return _DOUBLES.sub(r"\1", _ligatures(model_id.lower()))


def skeleton(model_id: str) -> str:
    """The id as it reads: separators dropped, ligatures and doubled letters folded, digits that look like letters
    mapped."""
    folded = _ligatures(_letters(model_id).translate(_CONFUSABLE))  # doubles collapsed among letters only
    return "".join(ch for ch in folded if ch not in "._-")


def _keys(model_id: str) -> set[str]:
    """The id's skeleton, its folded form, and the folded form with one letter of a long word deleted."""
    folded = _letters(model_id)
    keys = {"s:" + skeleton(model_id), "d:" + folded}
    for word in re.finditer(r"[a-z]+", folded):
        if word.end() - word.start() >= WORD:
            keys.update("d:" + folded[:i] + folded[i + 1:] for i in range(word.start(), word.end()))
    return keys


def lookalike_pairs(ids: Iterable[str]) -> dict[str, set[str]]:
    """Id → the other ids it looks like (only ids with at least one)."""
    index: dict[str, set[str]] = {}
    unique = sorted(set(ids))
    for model_id in unique:
        for key in _keys(model_id):
            index.setdefault(key, set()).add(model_id)
    out: dict[str, set[str]] = {}
    for group in index.values():
        if len(group) > 1:
            for model_id in group:
                out.setdefault(model_id, set()).update(group - {model_id})
    return out


def refused_lookalikes(ids: Iterable[str], canonical: Iterable[str]) -> dict[str, str]:
    """Id → the id it is refused for: every id that looks like another, unless it is canonical (a zoo id or an id
    with a signed verification in the store). Two ids that look alike and neither of which is canonical are both
    refused: the store cannot tell which is the original."""
    ids, canonical = set(ids), set(canonical)
    return {model_id: sorted(others)[0] for model_id, others in lookalike_pairs(ids | canonical).items()
            if model_id not in canonical and model_id in ids}


def check_not_lookalike(model_id: str, existing: Iterable[str]) -> None:
    """Raises when ``model_id`` is not in ``existing`` but reads like one of them."""
    existing = set(existing)
    if model_id in existing:
        return
    others = lookalike_pairs([model_id, *existing]).get(model_id)
    if others:
        raise UserError(f"model id {model_id!r} reads like {sorted(others)[0]!r}, already in the store; choose an "
                        "id that differs in more than separators, look-alike characters or a one-letter slip")
