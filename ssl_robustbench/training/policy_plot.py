"""The ASTrA policy's action distributions over training (Chhipa et al., ICLR 2025, Fig. 3 shows them settle),
drawn from the ``*_dist`` and ``reward`` columns that an ``--strategy astra`` run writes to ``log.csv``."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ssl_robustbench.errors import UserError
from ssl_robustbench.results.plots import _pyplot, _save
from ssl_robustbench.training.astra import EPSILONS, STEP_SIZES, STEPS

HEADS = (("eps", "ε (/255)", EPSILONS), ("steps", "attack steps", STEPS), ("step_size", "step size (/255)", STEP_SIZES))


def read_policy_log(log_csv: Path) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """Epochs, each head's [epochs, choices] action frequencies, and the mean reward per epoch (NaN if none)."""
    try:
        rows = list(csv.DictReader(log_csv.open(encoding="utf-8")))
    except FileNotFoundError:
        raise UserError(f"{log_csv} not found: pass the run directory of a robustbench pretrain run") from None
    rows = [r for r in rows if r.get("eps_dist")]
    if not rows:
        raise UserError(f"{log_csv} has no action distributions: it is not an --strategy astra run (or no epoch "
                        "has finished)")
    dists = {}
    for key, _, values in HEADS:
        table = [[float(v) for v in r[f"{key}_dist"].split()] for r in rows]
        if any(len(t) != len(values) for t in table):
            raise UserError(f"{log_csv}: {key}_dist does not have {len(values)} entries per epoch")
        dists[key] = np.asarray(table)
    epochs = np.asarray([int(r["epoch"]) for r in rows])
    rewards = np.asarray([float(r["reward"]) if r.get("reward") else np.nan for r in rows])
    return epochs, dists, rewards


def plot_policy(log_csv: Path, out: Path) -> Path:
    """One heat map per head (epoch × choice, colour = share of samples) and the mean reward per epoch."""
    epochs, dists, rewards = read_policy_log(log_csv)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.4))
    for ax, (key, label, values) in zip(axes, HEADS, strict=False):
        image = ax.imshow(dists[key].T, aspect="auto", origin="lower", cmap="viridis", vmin=0,
                          extent=(epochs[0] - 0.5, epochs[-1] + 0.5, values[0] - 0.5, values[-1] + 0.5))
        ax.set(xlabel="epoch", ylabel=label, title=f"policy: {label}")
        fig.colorbar(image, ax=ax, label="share of samples")
    axes[3].plot(epochs, rewards, marker="o")
    axes[3].set(xlabel="epoch", ylabel="mean reward", title="reward (L_adv − L_clean) / 3")
    return _save(fig, out)
