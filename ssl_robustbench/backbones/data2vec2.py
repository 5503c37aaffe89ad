"""data2vec 2.0's image encoder (Baevski et al., Efficient Self-supervised Learning with Contextualized Target
Representations for Vision, Speech and Language, ICML 2023), as a timm VisionTransformer.

fairseq's ``Data2VecMultiModel`` (``examples/data2vec/models/data2vec2.py``) with ``layer_norm_first: false``, as
the released vision models are trained: a patch embedding with bias, fixed 2-D sin-cos positions on the patch
tokens only, the extra (class) token put in front, a LayerNorm on the whole sequence (the image encoder's
``context_encoder.norm``), then post-norm blocks (``AltBlock``: ``x = norm1(x + attn(x))``, ``x = norm2(x + mlp(x))``)
— the context encoder's and then the shared ones — and no final norm. The checkpoint layout is converted by
``zoo/formats.py``'s ``data2vec2``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ssl_robustbench.backbones.base import BACKBONES
from ssl_robustbench.errors import UserError

#: the released vision sizes (fairseq's data2vec 2.0 README: ViT-B/16, ViT-L/16, ViT-H/14)
VARIANTS = ("vit_base_patch16_224", "vit_large_patch16_224", "vit_huge_patch14_224")


def _post_norm_block() -> type[nn.Module]:
    from timm.models.vision_transformer import Block

    class PostNormBlock(Block):
        """fairseq's ``AltBlock`` with ``layer_norm_first`` false: the norms after each residual sum."""

        def forward(self, x: torch.Tensor, attn_mask: torch.Tensor | None = None) -> torch.Tensor:
            x = self.norm1(x + self.attn(x))
            return self.norm2(x + self.mlp(x))

    return PostNormBlock


def _patch_embed_with_bias(**kwargs: Any) -> nn.Module:
    """timm drops the patch-embedding bias with ``pre_norm``; data2vec 2.0's ``local_encoder`` has one."""
    from timm.layers import PatchEmbed

    kwargs.pop("bias", None)
    return PatchEmbed(**kwargs, bias=True)


@BACKBONES.register("data2vec2")
def data2vec2_backbone(variant: str | None, *, pool: str = "avg") -> nn.Module:
    """data2vec 2.0's image encoder of the ``variant`` size, e.g. ``data2vec2/vit_base_patch16_224``.

    Args:
        variant: the timm ViT whose widths it has (``vit_base_patch16_224``, ``vit_large_patch16_224``,
            ``vit_huge_patch14_224``).
        pool: ``avg``, the mean of the last block's patch tokens (the mean pooling of fairseq's
            ``mae_image_classification.py``, without the LayerNorm its fine-tuning adds), or ``token``, the extra
            token.
    """
    import timm

    if variant not in VARIANTS:
        raise UserError(f"data2vec2 arch must be one of {', '.join(VARIANTS)}; got {variant!r}")
    if pool not in ("avg", "token"):
        raise UserError(f"data2vec2 pools avg (patch-token mean) or token, not {pool!r}")
    return timm.create_model(variant, pretrained=False, num_classes=0, global_pool=pool, fc_norm=False,
                             block_fn=_post_norm_block(), embed_layer=_patch_embed_with_bias, no_embed_class=True,
                             pre_norm=True, final_norm=False)
