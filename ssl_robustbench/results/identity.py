"""Model ids that read alike: a submitted id must not be a look-alike of another id already in the store
(``resnet50-simclr`` vs ``resnet5o-simclr``, ``dino_vits16`` vs ``dino-vits16``), so two rows never read as the
same model. Ids are ASCII by pattern (``card.ID_PATTERN``), which already refuses Cyrillic, zero-width and bidi
characters; what is left are ASCII confusables and separators."""

from __future__ import annotations

from collections.abc import Iterable

from ssl_robustbench.errors import UserError

_CONFUSABLE = str.maketrans({"0": "o", "1": "l", "i": "l", "|": "l", "5": "s", "2": "z", "8": "b"})


def skeleton(model_id: str) -> str:
    """The id as it reads: separators dropped, ``rn``→``m``, ``vv``→``w``, digits that look like letters mapped."""
    text = "".join(ch for ch in model_id.lower() if ch not in "._-")
    return text.replace("rn", "m").replace("vv", "w").translate(_CONFUSABLE)


def check_not_lookalike(model_id: str, existing: Iterable[str]) -> None:
    """Raises when ``model_id`` is not in ``existing`` but reads like one of them."""
    if model_id in existing:
        return
    mine = skeleton(model_id)
    for other in existing:
        if skeleton(other) == mine:
            raise UserError(f"model id {model_id!r} reads like {other!r}, already in the store; choose an id that "
                            "differs in more than separators and look-alike characters")
