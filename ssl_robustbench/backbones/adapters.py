"""Adapters for timm and torchvision models (random init; weights come from zoo checkpoints)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ssl_robustbench.backbones.base import BACKBONES
from ssl_robustbench.errors import UserError


@BACKBONES.register("timm")
def timm_backbone(variant: str | None, *, pool: str | None = None, **kwargs: Any) -> nn.Module:
    """Any timm model without its classifier (``timm.create_model(name, num_classes=0)``).

    Args:
        variant: timm model name, e.g. ``vit_small_patch16_224``.
        pool: timm ``global_pool`` (``avg``, ``token``, ...); the model's default when ``None``.
        kwargs: passed to ``timm.create_model`` (e.g. ``img_size``).
    """
    import timm

    if not variant:
        raise UserError("arch 'timm' needs a model name, e.g. timm/resnet50")
    if not timm.is_model(variant):
        raise UserError(f"unknown timm model {variant!r}")
    if pool is not None:
        kwargs["global_pool"] = pool
    return timm.create_model(variant, pretrained=False, num_classes=0, **kwargs)


@BACKBONES.register("torchvision")
def torchvision_backbone(variant: str | None, *, pool: str | None = None) -> nn.Module:
    """A torchvision ResNet/ResNeXt/Wide-ResNet with ``fc`` replaced by identity (global-average-pooled features)."""
    import torchvision

    names = [n for n in torchvision.models.list_models(module=torchvision.models) if "res" in n]
    if variant not in names:
        raise UserError(f"torchvision arch must be one of {', '.join(sorted(names))}; got {variant!r}")
    if pool not in (None, "avg"):
        raise UserError(f"torchvision ResNets only pool 'avg', not {pool!r}")
    model = torchvision.models.get_model(variant, weights=None)
    model.num_features = model.fc.in_features
    model.fc = nn.Identity()
    return model


@BACKBONES.register("cifar_resnet")
def cifar_resnet(variant: str | None, *, pool: str | None = None) -> nn.Module:
    """A torchvision ResNet with the CIFAR stem (3×3 conv, stride 1, no max-pool), e.g. ``cifar_resnet/resnet18``:
    the encoder and strategy network of ACL/ASTrA and the usual 32–96 px SSL backbone (He et al. 2016, §4.2)."""
    model = torchvision_backbone(variant or "resnet18", pool=pool)
    model.conv1 = nn.Conv2d(3, model.conv1.out_channels, 3, 1, 1, bias=False)
    model.maxpool = nn.Identity()
    return model
