"""The attack cascade we own: attacks run in sequence, each only on the points still robust (the worst case per
sample), with per-sample robust flags saved after every batch so an interrupted run resumes where it stopped.
Batches are formed as AutoAttack forms them (the points robust when an attack starts, in index order), so a run
of AutoAttack's components through this runner gives the package's own robust accuracy.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ssl_robustbench.attacks.base import Perturb, require_eval_mode
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_open
from ssl_robustbench.progress import progress_bar


@dataclasses.dataclass
class CascadeResult:
    """Per-sample flags and the robust accuracy after each attack (``clean`` first)."""

    clean: torch.Tensor
    robust: torch.Tensor
    accuracy: dict[str, float]


def _save(path: Path | None, state: dict) -> None:
    if path is not None:
        with atomic_open(path) as fh:
            torch.save(state, fh)


@torch.no_grad()
def _predict(model: torch.nn.Module, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    return torch.cat([model(x[i:i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)])


def run_cascade(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, attacks: list[tuple[str, Perturb]], *,
    batch_size: int = 250, state_path: Path | None = None, device: torch.device | str = "cpu",
    description: str = "attack",
) -> CascadeResult:
    """Runs ``attacks`` in order on ``x`` (CPU tensors; batches move to ``device``).

    Args:
        model: classifier on [0,1] pixels, in eval mode.
        x: [N,3,H,W] clean images.
        y: [N] labels.
        attacks: (name, perturb) pairs.
        batch_size: points per attack call.
        state_path: file of the resumable state; an existing one is continued (it must come from the same attacks).
        device: where batches run.
        description: progress-bar label.
    """
    require_eval_mode(model)
    device = torch.device(device)
    names = [name for name, _ in attacks]
    state = None
    if state_path is not None and Path(state_path).is_file():
        state = torch.load(state_path, weights_only=True)
        if state["attacks"] != names or state["n"] != len(x):
            raise UserError(f"{state_path} holds the state of another attack run; delete it or use another --out")
    if state is None:
        clean = _predict(model, x, batch_size, device) == y
        state = {"attacks": names, "n": len(x), "clean": clean, "robust": clean.clone(), "done": [],
                 "accuracy": {"clean": float(clean.float().mean())}, "current": None}
        _save(state_path, state)
    for name, perturb in attacks:
        if name in state["done"]:
            continue
        if state["current"] is None or state["current"]["attack"] != name:
            state["current"] = {"attack": name, "indices": state["robust"].nonzero().squeeze(1), "next": 0}
        indices, robust = state["current"]["indices"], state["robust"]
        batches = range(state["current"]["next"], (len(indices) + batch_size - 1) // batch_size)
        with progress_bar(total=len(batches), description=f"{description} {name}",
                          work=f"{len(indices):,} images still robust") as update:
            for b in batches:
                idx = indices[b * batch_size:(b + 1) * batch_size]
                xb, yb = x[idx].to(device), y[idx].to(device)
                adv = perturb(xb, yb)
                with torch.no_grad():
                    fooled = (model(adv).argmax(1) != yb).cpu()
                robust[idx[fooled]] = False
                state["current"]["next"] = b + 1
                _save(state_path, state)
                update(description=f"{description} {name} robust {float(robust.float().mean()):.1%}")
        state["accuracy"][name] = float(robust.float().mean())
        state["done"].append(name)
        state["current"] = None
        _save(state_path, state)
    return CascadeResult(clean=state["clean"], robust=state["robust"], accuracy=dict(state["accuracy"]))
