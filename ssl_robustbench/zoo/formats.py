"""Released checkpoint layouts that need more than prefix stripping to fit our backbones (a card's
``checkpoint_format``). Each converter takes the checkpoint's state dict (after ``checkpoint_key`` and
``strip_prefixes``) and the backbone it will load into, and returns the state dict in the backbone's layout."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from ssl_robustbench.errors import UserError

if TYPE_CHECKING:  # torch is imported when a conversion runs: zoo cards validate without it
    import torch
    from torch import nn


def dinov2_position_embedding(pos_embed: torch.Tensor, grid: tuple[int, int], *, offset: float = 0.1) -> torch.Tensor:
    """DINOv2's position embeddings [1, 1 + M², D] at a ``grid`` of patches, as its ``interpolate_pos_encoding``
    computes them at every forward (facebookresearch/dinov2 ``models/vision_transformer.py``, with the hub's
    ``interpolate_offset`` 0.1 and no antialiasing): bicubic with the scale factor (grid + offset) / M, which is not
    the size-based resampling timm applies. At a fixed input size this is a constant, so it is done once here."""
    import torch
    import torch.nn.functional as F

    n = pos_embed.shape[1] - 1
    side = math.isqrt(n)
    if side * side != n:
        raise UserError(f"DINOv2 position embeddings hold 1 + M² entries, not {pos_embed.shape[1]}")
    if (side, side) == tuple(grid):
        return pos_embed
    patch = pos_embed[:, 1:].float().reshape(1, side, side, -1).permute(0, 3, 1, 2)
    scale = ((grid[0] + offset) / side, (grid[1] + offset) / side) if offset else None
    patch = F.interpolate(patch, mode="bicubic", antialias=False,
                          **({"scale_factor": scale} if scale else {"size": tuple(grid)}))
    if tuple(patch.shape[-2:]) != tuple(grid):
        raise UserError(f"DINOv2 position embeddings resample to {tuple(patch.shape[-2:])}, not {tuple(grid)}")
    patch = patch.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], -1)
    return torch.cat((pos_embed[:, :1].float(), patch), dim=1).to(pos_embed.dtype)


def dinov2(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """DINOv2's released backbones (``dinov2_vit*14[_reg4]_pretrain.pth``: a plain state dict with ``mask_token``,
    ``register_tokens``, SwiGLU ``w12``/``w3`` for ViT-g, position embeddings for 37 × 37 patches) and files of
    DINOv2's model code saved with chunked blocks (``blocks.<chunk>.<i>``, Web-SSL's): blocks un-chunked, position
    embeddings resampled to the model's patch grid as DINOv2 does, then timm's own DINOv2 key conversion."""
    import torch
    from timm.models.vision_transformer import checkpoint_filter_fn

    # FSDP-chunked files (block_chunks > 0, as Web-SSL's): blocks.<chunk>.<i>.* keeps the global block index i
    state = {re.sub(r"^blocks\.\d+\.(\d+)\.", r"blocks.\1.", k): v for k, v in state.items()}
    if "pos_embed" in state and hasattr(model, "patch_embed"):
        state["pos_embed"] = dinov2_position_embedding(state["pos_embed"], tuple(model.patch_embed.grid_size))
    state.setdefault("mask_token", torch.zeros(0))  # timm recognizes DINOv2's layout by this key, then drops it
    return checkpoint_filter_fn(state, model)


CHECKPOINT_FORMATS: dict[str, Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]] = {
    "dinov2": dinov2,
}
