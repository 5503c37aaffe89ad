"""The Backbone contract and the classifier wrapper that keeps normalization inside the model."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ssl_robustbench.errors import UserError
from ssl_robustbench.registry import Registry

#: Builders ``(variant: str | None, **feature_kwargs) -> nn.Module``; the module has ``num_features`` and
#: ``forward(x: [B,3,H,W]) -> [B, num_features]``.
BACKBONES: Registry[Callable[..., nn.Module]] = Registry("backbone")


def build_backbone(arch: str, **feature_kwargs: Any) -> nn.Module:
    """Builds a randomly initialised backbone from an arch name such as ``timm/vit_small_patch16_224``.

    Args:
        arch: ``<family>`` or ``<family>/<variant>``.
        feature_kwargs: the zoo card's feature spec (e.g. ``pool="token"`` for timm ViTs).
    """
    family, _, variant = arch.partition("/")
    factory = check_feature_settings(arch, feature_kwargs)
    try:
        module = factory(variant or None, **feature_kwargs)
    except TypeError as error:
        if not feature_kwargs:
            raise
        raise UserError(f"backbone {arch!r} rejects the feature settings {feature_kwargs}: {error}") from None
    if not isinstance(getattr(module, "num_features", None), int):
        raise TypeError(f"backbone {arch!r} has no integer num_features")
    return module


def check_feature_settings(arch: str, features: dict[str, Any]) -> Callable[..., nn.Module]:
    """The builder of ``arch``'s family, after checking that it takes every key of ``features`` (a zoo card's
    feature spec; ``backbone_families.FEATURE_SETTINGS``); an unknown family or key is a UserError."""
    from ssl_robustbench.backbone_families import check_feature_keys

    check_feature_keys(arch, features)
    return BACKBONES.get(arch.partition("/")[0])


class ImageClassifier(nn.Module):
    """``Normalize ∘ Backbone ∘ Linear``: takes [0,1] pixels, so corruptions, warps and attacks need no stats.

    Args:
        backbone: feature extractor with ``num_features``.
        mean: per-channel mean of the checkpoint's preprocessing.
        std: per-channel std.
        head: the linear probe; ``None`` until fitted (then ``forward`` returns features).
    """

    def __init__(
        self, backbone: nn.Module, *, mean: Sequence[float], std: Sequence[float], head: nn.Linear | None = None
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))
        self.head = head

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] pixels in [0,1] → [B, D] backbone features."""
        return self.backbone((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[B,3,H,W] pixels in [0,1] → [B, C] logits (or features while no head is set)."""
        feats = self.features(x)
        return feats if self.head is None else self.head(feats)
