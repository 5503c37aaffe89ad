"""Reading untrusted checkpoints and fitting their keys to a backbone, with a strict-load report.

Checkpoints are read with ``torch.load(weights_only=True)`` or from safetensors: no arbitrary object is ever
unpickled. After remapping (key path, prefix stripping, ignored heads), every backbone key must be present with the
right shape, unless the card allows it missing; any other mismatch is an error that names the keys.
"""

from __future__ import annotations

import argparse
import dataclasses
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ssl_robustbench.errors import UserError


def read_checkpoint(path: Path) -> Any:
    """Loads a ``.safetensors`` file or a torch checkpoint with ``weights_only=True``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError) as err:
            raise UserError(f"cannot read safetensors file {path}: {err}") from None
    try:
        # argparse.Namespace (DINO's "args") only sets attributes: safe to allow beside tensors and containers.
        with torch.serialization.safe_globals([argparse.Namespace]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "not a torch checkpoint"
        raise UserError(f"refusing to load {path}: it is not a plain weights file ({first})") from None
    except Exception as err:  # noqa: BLE001 — arbitrary bytes make torch.load raise almost anything
        raise UserError(f"cannot read checkpoint {path}: {str(err).splitlines()[0] if str(err) else err!r}") from None


#: where the official training scripts nest the weights (SwAV ``main_swav.py``: ``state_dict``; VICReg
#: ``main_vicreg.py`` and MAE: ``model``; mmselfsup: ``state_dict``), tried in order when no key is given
NESTED_KEYS = ("state_dict", "model", "model_state_dict", "network")


def select_state_dict(obj: Any, key: str | None, *, where: str) -> dict[str, torch.Tensor]:
    """Follows the dotted ``key`` path (e.g. ``state_dict`` or ``classy_state_dict.base_model.model.trunk``).
    Without a key, a checkpoint whose root holds no tensors is searched under ``NESTED_KEYS``; where it holds
    several candidate sub-dicts (DINO's ``teacher`` and ``student``) the error names them and the flag."""
    if key is None and isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        nested = [k for k in NESTED_KEYS if isinstance(obj.get(k), Mapping)
                  and any(isinstance(v, torch.Tensor) for v in obj[k].values())]
        if nested:
            key = nested[0]
        else:
            candidates = [str(k) for k, v in obj.items() if isinstance(v, Mapping)
                          and any(isinstance(x, torch.Tensor) for x in v.values())]
            if candidates:
                raise UserError(f"{where}: the weights are nested in the checkpoint ({', '.join(candidates[:6])}); "
                                f"pick one with --checkpoint-key {candidates[0]} (or the card's checkpoint_key)")
    node = obj
    for part in key.split(".") if key else []:
        if not isinstance(node, Mapping) or part not in node:
            have = ", ".join(sorted(map(str, node))[:10]) if isinstance(node, Mapping) else type(node).__name__
            raise UserError(f"{where}: checkpoint has no key {part!r} (path {key!r}); it has: {have}")
        node = node[part]
    if not isinstance(node, Mapping):
        raise UserError(f"{where}: checkpoint entry {key!r} is not a state dict")
    tensors = {str(k): v for k, v in node.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise UserError(f"{where}: checkpoint entry {key or '<root>'!r} holds no tensors")
    return tensors


#: Dual-BN encoders of ACL-style adversarial SSL keep two BatchNorm branches per layer, ``<bn>.bn_list.0.*``
#: (clean, "normal") and ``<bn>.bn_list.1.*`` (adversarial, "pgd"); AdvCL's third (``bn_list.2``) is dropped.
BN_BRANCHES = {"normal": "0", "pgd": "1"}
_DUAL_BN = re.compile(r"^(.*)\.bn_list\.(\d+)\.([^.]+)$")


def is_dual_bn_state(state: dict[str, torch.Tensor]) -> bool:
    """Whether a state dict holds dual-BN entries (``<bn>.bn_list.<i>.*``)."""
    return any(_DUAL_BN.match(key) for key in state)


def remap_keys(
    state: dict[str, torch.Tensor], *, strip_prefixes: tuple[str, ...] = (), keep_only_prefixed: bool = False,
    bn_branch: str | None = None,
) -> dict[str, torch.Tensor]:
    """Strips the first matching prefix from each key; with ``keep_only_prefixed`` keys matching none are dropped
    (e.g. MoCo's key encoder and queue beside ``module.encoder_q.``). With ``bn_branch`` (``normal`` or ``pgd``)
    a dual-BN checkpoint's chosen branch becomes the plain BatchNorm and the other branches are dropped."""
    out = {}
    for key, value in state.items():
        prefix = next((p for p in strip_prefixes if key.startswith(p)), None)
        if prefix is None and keep_only_prefixed:
            continue
        key = key[len(prefix):] if prefix else key
        match = _DUAL_BN.match(key) if bn_branch else None
        if match:
            if match.group(2) != BN_BRANCHES[bn_branch]:
                continue
            key = f"{match.group(1)}.{match.group(3)}"
        out[key] = value
    return out


@dataclasses.dataclass(frozen=True)
class LoadReport:
    """What a strict load found: keys loaded, allowed missing, and ignored (unexpected but allowed by the card)."""

    loaded: int
    missing: tuple[str, ...]
    ignored: tuple[str, ...]


def _summary(keys: list[str]) -> str:
    return ", ".join(keys[:8]) + (f" … (+{len(keys) - 8} more)" if len(keys) > 8 else "")


def strict_load(
    model: nn.Module,
    state: dict[str, torch.Tensor],
    *,
    ignore_keys: tuple[str, ...] = (),
    allowed_missing: tuple[str, ...] = (),
    where: str,
) -> LoadReport:
    """Loads ``state`` into ``model``; missing/unexpected keys outside the card's patterns and shape mismatches
    are a UserError naming the keys."""
    target = model.state_dict()
    ignore = [re.compile(p) for p in ignore_keys]
    allow = [re.compile(p) for p in allowed_missing]
    unexpected = [k for k in state if k not in target]
    bad_unexpected = [k for k in unexpected if not any(p.fullmatch(k) for p in ignore)]
    missing = [k for k in target if k not in state]
    bad_missing = [k for k in missing if not any(p.fullmatch(k) for p in allow)]
    shapes = [f"{k} {tuple(state[k].shape)}≠{tuple(target[k].shape)}" for k in target
              if k in state and state[k].shape != target[k].shape]
    if bad_missing or bad_unexpected or shapes:
        parts = []
        if bad_missing:
            parts.append(f"missing {len(bad_missing)}: {_summary(bad_missing)}")
        if bad_unexpected:
            parts.append(f"unexpected {len(bad_unexpected)}: {_summary(bad_unexpected)}")
        if shapes:
            parts.append(f"shape mismatch: {_summary(shapes)}")
        hint = load_hint(bad_unexpected, bad_missing, list(target))
        raise UserError(f"{where}: checkpoint keys do not fit the arch; " + "; ".join(parts) + (f" — {hint}"
                                                                                                 if hint else ""))
    dtypes = [f"{k} ({state[k].dtype})" for k in target if k in state and target[k].is_floating_point()
              and not state[k].is_floating_point()]
    if dtypes:
        raise UserError(f"{where}: checkpoint tensors of the wrong type for float weights: {_summary(dtypes)}")
    nonfinite = [k for k in target if k in state and state[k].is_floating_point() and not state[k].is_meta
                 and not bool(torch.isfinite(state[k]).all())]  # (meta tensors: a shape-only layout check)
    if nonfinite:
        raise UserError(f"{where}: checkpoint holds NaN or infinite values in {_summary(nonfinite)} (a diverged "
                        "run or a damaged file): its features would be NaN")
    model.load_state_dict({k: v for k, v in state.items() if k in target}, strict=False)
    return LoadReport(loaded=len(target) - len(missing), missing=tuple(missing), ignored=tuple(unexpected))


def load_hint(unexpected: list[str], missing: list[str], target: list[str]) -> str | None:
    """The flag that most likely fixes a failed strict load: a prefix to strip (``module.``, ``backbone.``) when
    the unexpected keys are the missing ones behind it, else the unexpected keys' first components to ignore (a
    classifier ``fc``, a projector)."""
    wanted = set(target)
    for prefix in sorted({k.split(".", 1)[0] + "." for k in unexpected if "." in k}):
        stripped = {k[len(prefix):] for k in unexpected if k.startswith(prefix)}
        if missing and stripped & wanted and set(missing) <= stripped | {m for m in missing if m not in stripped}:
            if len(stripped & set(missing)) >= max(1, len(missing) // 2):
                return f"use --strip-prefix {prefix} (or the card's strip_prefixes)"
    if unexpected and not missing:
        heads = sorted({k.split(".", 1)[0] for k in unexpected})
        pattern = "|".join(re.escape(h) for h in heads[:4])
        return f"if these are a classifier or projector, use --ignore-keys '({pattern})\\..*'"
    return None
