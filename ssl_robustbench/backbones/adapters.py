"""Adapters for timm and torchvision models (random init; weights come from zoo checkpoints)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ssl_robustbench.backbones.base import BACKBONES
from ssl_robustbench.errors import UserError


@BACKBONES.register("timm")
def timm_backbone(variant: str | None, *, pool: str | None = None, n_last_blocks: int | None = None,
                  avgpool_patchtokens: bool = False, recipe: str = "dino", **kwargs: Any) -> nn.Module:
    """Any timm model without its classifier (``timm.create_model(name, num_classes=0)``).

    Args:
        variant: timm model name, e.g. ``vit_small_patch16_224``.
        pool: timm ``global_pool`` (``avg``, ``token``, ...); the model's default when ``None``.
        n_last_blocks: ViTs only: DINO's linear-evaluation features (``eval_linear.py``, Caron et al. 2021) —
            the class tokens of the last ``n`` blocks, each after the final norm, concatenated (ViT-S: 4).
        avgpool_patchtokens: with ``n_last_blocks = 1``, DINO's ViT-B features: each dimension's class token
            followed by its mean over the last block's patch tokens (interleaved, as ``eval_linear.py`` reshapes).
        recipe: ``dino`` (the above) or ``dinov2``: DINOv2's linear heads (``dinov2/hub/classifiers.py``, Oquab
            et al. 2024) — the class tokens of the last ``n_last_blocks`` (1 or 4) blocks after the final norm,
            then the last block's patch-token mean (registers left out), concatenated: (n + 1) × width.
        kwargs: passed to ``timm.create_model`` (e.g. ``img_size``).
    """
    import timm

    if not variant:
        raise UserError("arch 'timm' needs a model name, e.g. timm/resnet50")
    if not timm.is_model(variant):
        raise UserError(f"unknown timm model {variant!r}")
    if pool is not None:
        kwargs["global_pool"] = pool
    model = timm.create_model(variant, pretrained=False, num_classes=0, **kwargs)
    if recipe not in ("dino", "dinov2"):
        raise UserError(f"recipe must be dino or dinov2, not {recipe!r}")
    if recipe == "dinov2":
        if n_last_blocks not in (1, 4) or avgpool_patchtokens:
            raise UserError("the dinov2 recipe takes n_last_blocks 1 or 4 (its heads' two variants) and always "
                            "appends the patch-token mean (no avgpool_patchtokens)")
        _use_dino_features(model, int(n_last_blocks), "append")
    elif n_last_blocks is not None:
        _use_dino_features(model, int(n_last_blocks), "interleave" if avgpool_patchtokens else None)
    elif avgpool_patchtokens:
        raise UserError("avgpool_patchtokens needs n_last_blocks (DINO's ViT-B setting: n_last_blocks 1)")
    return model


def _use_dino_features(model: nn.Module, n: int, patch_mean: str | None) -> None:
    """Makes ``model`` (a timm VisionTransformer) return DINO's or DINOv2's linear-evaluation features (same
    parameters and state-dict keys, so official checkpoints load as they are): the last ``n`` class tokens, and
    the last block's patch-token mean ``interleave``-d per dimension (DINO ViT-B) or ``append``-ed (DINOv2)."""
    import types

    import torch

    blocks = getattr(model, "blocks", None)
    if blocks is None or not hasattr(model, "patch_embed") or not hasattr(model, "_pos_embed"):
        raise UserError("n_last_blocks applies to vision transformers (timm VisionTransformer) only")
    if not 1 <= n <= len(blocks):
        raise UserError(f"n_last_blocks must be between 1 and the model's {len(blocks)} blocks, not {n}")
    if patch_mean == "interleave" and n != 1:
        raise UserError("DINO's eval_linear.py pools patch tokens only with n_last_blocks 1")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm_pre(self.patch_drop(self._pos_embed(self.patch_embed(x))))
        outputs = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if len(self.blocks) - i <= n:
                outputs.append(self.norm(x))
        feats = torch.cat([out[:, 0] for out in outputs], dim=-1)
        if patch_mean is None:
            return feats
        mean = outputs[-1][:, self.num_prefix_tokens:].mean(dim=1)  # patch tokens only (no class, no registers)
        if patch_mean == "append":
            return torch.cat((feats, mean), dim=-1)
        return torch.stack((feats, mean), dim=-1).reshape(len(feats), -1)  # per dimension: class token, mean

    model.forward = types.MethodType(forward, model)
    model.num_features = model.embed_dim * (n + int(patch_mean is not None))


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
