"""The backbone families and the feature settings each builder takes, known without importing torch, so zoo cards
validate (``robustbench zoo list``, ``zoo show``) in a light process. ``tests/zoo/test_zoo_cards.py`` keeps this
table equal to the builders' own signatures (``backbones/base.py``'s registry)."""

from __future__ import annotations

from typing import Any

from ssl_robustbench.errors import UserError
from ssl_robustbench.registry import unknown_name_message

#: family → the feature keyword arguments its builder takes (None: any, passed on to ``timm.create_model``)
FEATURE_SETTINGS: dict[str, tuple[str, ...] | None] = {
    "timm": None,
    "torchvision": ("pool",),
    "cifar_resnet": ("pool",),
    "tiny_resnet": ("pool",),
    "transformers": ("n_last_blocks", "patch_mean"),
    "data2vec2": ("pool",),
}


def check_feature_keys(arch: str, features: dict[str, Any]) -> None:
    """An unknown family, or a feature key its builder does not take, is a UserError naming it."""
    family = arch.partition("/")[0]
    if family not in FEATURE_SETTINGS:
        raise UserError(unknown_name_message("backbone", family, list(FEATURE_SETTINGS)))
    known = FEATURE_SETTINGS[family]
    unknown = sorted(set(features) - set(known)) if known is not None else []
    if unknown:
        raise UserError(f"backbone {arch!r} takes no feature setting {unknown[0]!r} "
                        f"(known: {', '.join(known) or 'none'})")
