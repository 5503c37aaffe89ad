"""Run directories: device choice, seeds, and the provenance written before any work starts."""

from __future__ import annotations

import datetime as dt
import platform
import random
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

import ssl_robustbench
from ssl_robustbench.config import config_hash, to_dict
from ssl_robustbench.errors import UserError
from ssl_robustbench.fileio import atomic_write_json, atomic_write_text, read_yaml


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when available, else CPU; asking for CUDA without a GPU is a UserError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError("--device cuda was asked for, but no CUDA device is available")
    if name.split(":")[0] not in ("cpu", "cuda"):
        raise UserError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def git_commit() -> str | None:
    """The source tree's commit (``+dirty`` when it has local changes), or None outside git."""
    root = Path(ssl_robustbench.__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(device: torch.device) -> dict[str, Any]:
    """Package, torch and device facts recorded with every run."""
    env = {
        "ssl_robustbench": ssl_robustbench.__version__,
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "cuda_available": torch.cuda.is_available(),
        "device": str(device),
        "cpu_threads": torch.get_num_threads(),
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env


def start_run(run_dir: Path, cfg: Any, device: torch.device, *, extra: dict[str, Any] | None = None,
              env_extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Writes ``config.yaml`` (resolved, with its hash and ``extra``) and ``environment.json`` (with ``env_extra``,
    e.g. the torchrun world size) into ``run_dir``; returns the environment.

    A run directory whose recorded config differs from ``cfg`` is refused, so a resume never mixes protocols.
    """
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create run directory {run_dir}: {err.strerror or err}") from None
    text = yaml.safe_dump({**to_dict(cfg), "config_hash": config_hash(cfg), **(extra or {})}, sort_keys=False)
    cfg_file = run_dir / "config.yaml"
    if cfg_file.is_file():
        old = read_yaml(cfg_file, what="run directory's config")
        if not isinstance(old, dict):
            raise UserError(f"{cfg_file} is not a run config (a mapping); choose another --out")
        if old.get("config_hash") != config_hash(cfg):
            raise UserError(f"{run_dir} holds a run with another config (hash {old.get('config_hash')}); "
                            "choose another --out")
    atomic_write_text(cfg_file, text)
    env = environment(device) | (env_extra or {})
    atomic_write_json(run_dir / "environment.json", env)
    return env
