"""Hugging Face ``transformers`` vision encoders (optional: ``pip install "ssl-robustbench[transformers]"``),
scored with the features their authors' linear evaluation uses.

An encoder is built by ``transformers`` itself (``AutoModel.from_pretrained`` on a checkpoint folder: a Hub
snapshot or a local directory with ``config.json`` and ``model.safetensors``; safetensors only, so nothing is
unpickled), and every key of the checkpoint must be used and every weight of the model loaded. Supported
``model_type``s and their recipes:

- ``dinov2`` and ``dinov2_with_registers`` (DINOv2, Oquab et al. 2024; its registers variant, Darcet et al. 2024;
  Web-SSL's Web-DINO, Fan et al. 2025, ships in this format): the class tokens of the last ``n_last_blocks`` layers
  after the final layer norm, then the last layer's patch-token mean (registers left out), concatenated — the input
  of DINOv2's hub linear heads (1 block by default). The position embeddings are resampled once to the input's patch
  grid as DINOv2's own code does at every forward (``zoo.formats.dinov2_position_embedding``: bicubic, offset 0.1);
  ``transformers`` resamples by size instead, which is not the official feature.
- ``dinov3_vit`` (DINOv3, Siméoni et al. 2025): the same recipe (``dinov3/eval/linear.py`` with its default 1 block
  and ``hub/classifiers.py``: class token after the final norm, then the patch-token mean, 4 registers left out).
  Its RoPE frequencies are set from the periods the official checkpoints carry (rounded to bfloat16, which DINOv3's
  code runs with); ``transformers`` computes them in float32 from ``rope_theta``.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssl_robustbench.backbones.adapters import block_features
from ssl_robustbench.errors import UserError

#: model_type → the attribute holding the final norm (the recipe is the same for all of them)
SUPPORTED = {"dinov2": "layernorm", "dinov2_with_registers": "layernorm", "dinov3_vit": "norm"}


def require_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise UserError('this model needs Hugging Face transformers: pip install "ssl-robustbench[transformers]"'
                        ) from None
    return transformers


def load_encoder(folder: Path, *, input_size: int, n_last_blocks: int = 1, patch_mean: str | None = "append"
                 ) -> nn.Module:
    """The encoder in ``folder`` (config.json + model.safetensors), returning its linear-evaluation features for
    ``input_size``² inputs (normalized as its card says)."""
    transformers = require_transformers()
    config = transformers.AutoConfig.from_pretrained(folder, local_files_only=True)
    if config.model_type not in SUPPORTED:
        raise UserError(f"transformers model_type {config.model_type!r} has no linear-evaluation recipe here "
                        f"(supported: {', '.join(SUPPORTED)})")
    if patch_mean not in (None, "append"):
        raise UserError("transformers encoders take patch_mean append (the DINOv2 recipe) or none")
    model, info = transformers.AutoModel.from_pretrained(folder, local_files_only=True, use_safetensors=True,
                                                         output_loading_info=True, attn_implementation="eager")
    unused = [k for k in info.get("unexpected_keys", []) if not k.endswith("mask_token")]
    missing = list(info.get("missing_keys", [])) + [str(m) for m in info.get("mismatched_keys", [])]
    if unused or missing:
        raise UserError(f"{folder}: checkpoint keys do not fit {config.model_type}: "
                        f"unexpected {unused[:6]}, missing or mismatched {missing[:6]}")
    blocks = config.num_hidden_layers
    if not 1 <= n_last_blocks <= blocks:
        raise UserError(f"n_last_blocks must be between 1 and the model's {blocks} layers, not {n_last_blocks}")
    patch = config.patch_size if isinstance(config.patch_size, int) else config.patch_size[0]
    if input_size % patch:
        raise UserError(f"input size {input_size} is not a multiple of the patch size {patch}")
    _official_positions(model, config.model_type, (input_size // patch, input_size // patch))
    skip = 1 + int(getattr(config, "num_register_tokens", 0) or 0)
    norm = getattr(model, SUPPORTED[config.model_type])

    def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        hidden = self.__class__.forward(self, pixel_values=x, output_hidden_states=True).hidden_states
        return block_features([norm(h) for h in hidden[-n_last_blocks:]], skip, patch_mean)

    model.forward = types.MethodType(forward, model)
    model.num_features = config.hidden_size * (n_last_blocks + int(patch_mean is not None))
    return model.eval()


def _official_positions(model: nn.Module, model_type: str, grid: tuple[int, int]) -> None:
    """Position encodings as the official code computes them: DINOv2's absolute embeddings resampled once to
    ``grid`` with its offset method; DINOv3's RoPE with the bfloat16-rounded periods of its checkpoints."""
    with torch.no_grad():
        if model_type == "dinov3_vit":
            rope = model.rope_embeddings
            quarter = rope.head_dim // 4  # DINOv3's RopePositionEmbedding: base ** (2 i / (D / 2)), in float32
            periods = rope.base ** (2 * torch.arange(quarter, dtype=torch.float32) / (rope.head_dim // 2))
            periods = periods.to(torch.bfloat16).float()  # as the released checkpoints store them
            rope.inv_freq.copy_((1.0 / periods).to(rope.inv_freq))
            return
        from ssl_robustbench.zoo.formats import dinov2_position_embedding

        embeddings = model.embeddings
        resampled = dinov2_position_embedding(embeddings.position_embeddings.data, grid)
        embeddings.position_embeddings = nn.Parameter(resampled, requires_grad=False)
