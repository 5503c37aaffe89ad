"""One check the zoo's official-layout tests share: a card's backbone built on the meta device (nothing is
allocated, so ViT-g, ViT-H and 7B models fit) and a synthesized official checkpoint loaded into it strictly,
through the card's own ``checkpoint_format``."""

from __future__ import annotations

import torch

from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.zoo.checkpoint import LoadReport, strict_load
from ssl_robustbench.zoo.formats import CHECKPOINT_FORMATS


def strict_load_on_meta(card, official: dict) -> tuple[torch.nn.Module, LoadReport]:
    """``card``'s backbone on the meta device and the report of loading ``official`` (meta tensors) into it."""
    with torch.device("meta"):
        backbone = build_backbone(card.arch, **card.features)
    converted = CHECKPOINT_FORMATS[card.checkpoint_format](official, backbone)
    return backbone, strict_load(backbone, converted, where=card.id)
