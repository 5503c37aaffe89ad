"""The frozen-backbone check of MoCo v3's linear evaluation: the backbone's weights must not move while probing."""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from ssl_robustbench.errors import UserError


def fingerprint(module: nn.Module) -> str:
    """sha256 over every parameter and buffer (names, shapes, dtypes and bytes), in key order."""
    digest = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{key}|{tuple(t.shape)}|{t.dtype}|".encode())
        digest.update(t.view(-1).view(dtype=torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def assert_unchanged(module: nn.Module, before: str, *, what: str = "backbone") -> None:
    """Raises if ``module``'s fingerprint differs from ``before``."""
    after = fingerprint(module)
    if after != before:
        raise UserError(f"the {what} weights changed ({before[:12]} → {after[:12]}): a module in train mode or an "
                        "in-place update touched them")
