"""Adapters for timm and torchvision models (random init; weights come from zoo checkpoints)."""

from __future__ import annotations

from typing import Any

from torch import nn

from ssl_robustbench.backbones.base import BACKBONES
from ssl_robustbench.errors import UserError


@BACKBONES.register("timm")
def timm_backbone(variant: str | None, *, pool: str | None = None, n_last_blocks: int | None = None,
                  patch_mean: str | None = None, final_norm: bool = True, **kwargs: Any) -> nn.Module:
    """Any timm model without its classifier (``timm.create_model(name, num_classes=0)``).

    Args:
        variant: timm model name, e.g. ``vit_small_patch16_224``.
        pool: timm ``global_pool`` (``avg``, ``token``, ...); the model's default when ``None``.
        n_last_blocks: ViTs only: the class tokens of the last ``n`` blocks, each after the final norm,
            concatenated — the linear-evaluation features of DINO (``eval_linear.py``, Caron et al. 2021: ViT-S 4),
            iBOT (Zhou et al. 2022: ViT-S 4, ViT-B/L 1) and DINOv2 (Oquab et al. 2024: its 1- and 4-block heads).
        patch_mean: with ``n_last_blocks``, add the last block's patch-token mean (class and register tokens left
            out): ``interleave`` per dimension (DINO ViT-B: ``eval_linear.py`` reshapes [cls, mean] pairs) or
            ``append`` after the class tokens (DINOv2's hub heads; iBOT's ``avgpool_patchtokens 2``).
        final_norm: with ``n_last_blocks``, False takes the class tokens before the final norm (MSN's
            ``forward_blocks``, Assran et al. 2022, whose linear head brings its own LayerNorm).
        kwargs: passed to ``timm.create_model`` (e.g. ``img_size``).
    """
    import timm

    if not variant:
        raise UserError("arch 'timm' needs a model name, e.g. timm/resnet50")
    if not timm.is_model(variant):
        raise UserError(f"unknown timm model {variant!r}")
    if patch_mean not in (None, "interleave", "append"):
        raise UserError(f"patch_mean must be interleave or append, not {patch_mean!r}")
    if n_last_blocks is None and (patch_mean is not None or not final_norm):
        raise UserError("patch_mean and final_norm set how the class tokens of n_last_blocks are read: set "
                        "n_last_blocks too (e.g. 1)")
    if pool is not None:
        kwargs["global_pool"] = pool
    model = timm.create_model(variant, pretrained=False, num_classes=0, **kwargs)
    if n_last_blocks is not None:
        _use_block_features(model, int(n_last_blocks), patch_mean, bool(final_norm))
    return model


def _use_block_features(model: nn.Module, n: int, patch_mean: str | None, final_norm: bool) -> None:
    """Makes ``model`` (a timm VisionTransformer, or an Eva such as timm's DINOv3) return the last ``n`` blocks'
    class tokens (after the final norm unless ``final_norm`` is False), with the last block's patch-token mean
    ``interleave``-d per dimension or ``append``-ed. The blocks run through timm's own ``forward_intermediates``
    (position embeddings or RoPE as the model's forward applies them); parameters and state-dict keys are unchanged,
    so official checkpoints load as they are."""
    import types

    import torch

    blocks = getattr(model, "blocks", None)
    if blocks is None or not hasattr(model, "forward_intermediates") or not hasattr(model, "num_prefix_tokens"):
        raise UserError("n_last_blocks applies to vision transformers (timm VisionTransformer or Eva) only")
    if not 1 <= n <= len(blocks):
        raise UserError(f"n_last_blocks must be between 1 and the model's {len(blocks)} blocks, not {n}")
    if patch_mean == "interleave" and n != 1:
        raise UserError("DINO's eval_linear.py interleaves the patch-token mean only with n_last_blocks 1")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        taken = self.forward_intermediates(x, indices=n, norm=final_norm, return_prefix_tokens=True,
                                           output_fmt="NLC", intermediates_only=True, stop_early=True)
        outputs = [torch.cat((prefix, patches), dim=1) for patches, prefix in taken]
        return block_features(outputs, self.num_prefix_tokens, patch_mean)

    model.forward = types.MethodType(forward, model)
    model.num_features = model.embed_dim * (n + int(patch_mean is not None))


def block_features(outputs: list, prefix_tokens: int, patch_mean: str | None):
    """The linear-evaluation features of a ViT's last blocks' token sequences ``outputs`` ([B, T, D] each, oldest
    first): their class tokens concatenated, and the last one's patch-token mean (its first ``prefix_tokens`` —
    class and registers — left out) ``append``-ed or ``interleave``-d per dimension (None: no mean)."""
    import torch

    feats = torch.cat([out[:, 0] for out in outputs], dim=-1)
    if patch_mean is None:
        return feats
    mean = outputs[-1][:, prefix_tokens:].mean(dim=1)
    if patch_mean == "append":
        return torch.cat((feats, mean), dim=-1)
    return torch.stack((feats, mean), dim=-1).reshape(len(feats), -1)  # per dimension: class token, mean


@BACKBONES.register("transformers")
def transformers_backbone(variant: str | None, *, n_last_blocks: int = 1, patch_mean: str | None = "append"
                          ) -> nn.Module:
    """A Hugging Face transformers encoder (``transformers/<model_type>``): built by transformers from its
    checkpoint folder when a card loads it (``backbones/transformers_encoders.py``), never from a name alone."""
    raise UserError(f"transformers/{variant} is built from its checkpoint (a zoo card or --model hf-hub:…), not "
                    "from its name")


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
