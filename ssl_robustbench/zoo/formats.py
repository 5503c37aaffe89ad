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


def dinov3(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """DINOv3's released ViTs (``dinov3_vit*16*_pretrain_*.pth``, facebookresearch/dinov3
    ``models/vision_transformer.py``: ``storage_tokens``, ``ls1.gamma``, a fused ``qkv`` whose key bias is masked to
    zero by ``bias_mask``, SwiGLU ``w1``/``w2``/``w3``, ``rope_embed.periods``), for timm's DINOv3 models (Eva). timm's
    own conversion maps the keys; the RoPE periods are taken from the file, because the official model runs with the
    periods it stores (rounded to bfloat16 when it was trained) and timm's freshly computed float32 periods give
    different features."""
    import torch
    from timm.models.eva import checkpoint_filter_fn

    rope = getattr(model, "rope", None)
    periods = state.get("rope_embed.periods")
    if rope is None or not hasattr(rope, "periods"):
        raise UserError("checkpoint_format dinov3 needs a timm DINOv3 model, e.g. "
                        "timm/vit_small_patch16_dinov3_qkvb")
    if periods is None or tuple(periods.shape) != tuple(rope.periods.shape):
        raise UserError(f"a DINOv3 checkpoint holds rope_embed.periods of shape {tuple(rope.periods.shape)}, not "
                        f"{None if periods is None else tuple(periods.shape)}")
    for key, mask in state.items():  # the official forward uses bias * bias_mask: only the key third may be masked
        if key.endswith("qkv.bias_mask") and not mask.is_meta:
            third = mask.numel() // 3
            expected = torch.ones_like(mask)
            expected[third:2 * third] = 0
            if not torch.equal(mask, expected):
                raise UserError(f"{key} does not mask exactly the key bias, which timm's DINOv3 models assume")
    converted = checkpoint_filter_fn(dict(state), model)
    with torch.no_grad():
        rope.periods.copy_(periods.to(rope.periods.dtype))
        if getattr(rope, "pos_embed_cached", None) is not None and getattr(rope, "feat_shape", None) is not None:
            rope.pos_embed_cached.copy_(rope._create_embed(rope.feat_shape, no_aug=True))
    return converted


def data2vec2(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """data2vec 2.0's released vision checkpoints (fairseq ``Data2VecMultiModel``, ``model`` of
    ``fairseq/data2vec2/*_imagenet.pt``): the image encoder's ``modality_encoders.IMAGE.{local_encoder.proj,
    fixed_positional_encoder.positions, extra_tokens, context_encoder.norm, context_encoder.blocks}`` and the shared
    ``blocks``, for ``backbones/data2vec2.py``. The context encoder's blocks come first, then the shared ones; the
    pretraining decoder and the EMA teacher's copy (``_ema``) are left out. ALiBi and a projected patch embedding,
    which the released vision models do not use, are refused."""
    prefix = "modality_encoders.IMAGE."
    unsupported = sorted(k for k in state if k.startswith((f"{prefix}alibi", f"{prefix}local_encoder.1.")))
    others = sorted({k.split(".")[1] for k in state if k.startswith("modality_encoders.")} - {"IMAGE"})
    if unsupported or others:
        raise UserError(f"data2vec 2.0 checkpoint with {(unsupported or others)[0]!r}: only the image encoder "
                        "without ALiBi or a patch projection is supported (the released vision models)")
    renames = {"extra_tokens": "cls_token", "fixed_positional_encoder.positions": "pos_embed",
               "local_encoder.proj.weight": "patch_embed.proj.weight",
               "local_encoder.proj.bias": "patch_embed.proj.bias", "context_encoder.norm.weight": "norm_pre.weight",
               "context_encoder.norm.bias": "norm_pre.bias"}
    prenet = 1 + max((int(k.split(".")[4]) for k in state if k.startswith(f"{prefix}context_encoder.blocks.")),
                     default=-1)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key == "_ema" or key.startswith(f"{prefix}decoder."):
            continue
        if key.startswith(f"{prefix}context_encoder.blocks."):
            out[key.removeprefix(f"{prefix}context_encoder.")] = value
        elif key.startswith("blocks."):
            index, rest = key.removeprefix("blocks.").split(".", 1)
            out[f"blocks.{prenet + int(index)}.{rest}"] = value
        else:
            out[renames.get(key.removeprefix(prefix), key) if key.startswith(prefix) else key] = value
    return out


CHECKPOINT_FORMATS: dict[str, Callable[[dict[str, torch.Tensor], nn.Module], dict[str, torch.Tensor]]] = {
    "dinov2": dinov2,
    "dinov3": dinov3,
    "data2vec2": data2vec2,
}
