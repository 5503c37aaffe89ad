"""``robustbench pretrain`` configuration."""

from __future__ import annotations

import dataclasses
from typing import Any

from ssl_robustbench.config import DataConfig, RunConfig, bounded, check_fields, check_number
from ssl_robustbench.errors import UserError
from ssl_robustbench.transforms.views import ViewSpec

OPTIMIZERS = ("sgd", "adamw", "lars", "lars-acl")


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Method, backbone, data and optimisation of an SSL pretraining run.

    ``lr`` is the base rate for a batch of 256 (scaled linearly with the batch size, as in SimCLR), warmed up over
    ``warmup_epochs`` then cosine-decayed to ``final_lr`` (not scaled).
    ``monitor_every`` is the k-NN monitor's period in epochs (0: off), with ``monitor_split`` as queries;
    ``robust_monitor_every`` the robust-overfitting monitor's (``training/robust_monitor.py``: SA and PGD-20 RA of
    an SLF-lite probe on ``robust_monitor_n`` held-out images, 0: off).
    ``view_size`` is the side of the augmented views (default ``input_size``; smaller trains faster).
    ``color_strength`` is SimCLR's colour-jitter strength s.
    ``views``: the view specs (empty: the method's default, e.g. SimCLR's two global crops); ``aug``: robust view
    generation inserted into every view at the method's preset place (``mpd``, ``lcm``; ``transforms/views.py``).
    ``mean``/``std`` are the normalization stored in the exported card.
    ``optimizer``: ``sgd``, ``adamw``, ``lars`` or ``lars-acl`` (``training/optim.py``); ``accumulate``:
    gradient-accumulation steps per optimizer step (``run.batch_size`` stays the global batch); ``sync_bn``:
    SyncBatchNorm under torchrun.
    """

    method: str = "simclr"
    method_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    arch: str = "tiny_resnet"
    data: DataConfig = DataConfig()
    input_size: int = bounded(64, low=8, high=4096)
    view_size: int | None = bounded(None, low=8, high=4096)
    color_strength: float = bounded(1.0, low=0.0)
    views: tuple[ViewSpec, ...] = ()
    aug: tuple[str, ...] = ()
    epochs: int = bounded(30, low=0, high=100_000)  # 0: export the initialization (the random-init baseline)
    optimizer: str = "sgd"
    accumulate: int = bounded(1, low=1)
    sync_bn: bool = False
    lr: float = bounded(0.3, low=0.0, low_open=True)
    momentum: float = bounded(0.9, low=0.0, high=1.0, high_open=True)
    weight_decay: float = bounded(5e-4, low=0.0)
    warmup_epochs: int = bounded(2, low=0)
    final_lr: float = bounded(0.0, low=0.0)  # where the cosine ends (ACL/DynACL/ASTrA: 1e-6)
    monitor_every: int = bounded(5, low=0)
    monitor_split: str = "val"
    knn_k: int = bounded(20, low=1)
    robust_monitor_every: int = bounded(0, low=0)  # SLF-lite SA / PGD-20 RA every N epochs (0: off)
    robust_monitor_n: int = bounded(200, low=1)  # held-out images attacked
    robust_monitor_train: int = bounded(2000, low=10)  # training images the probe is fitted on
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    run: RunConfig = RunConfig()

    def __post_init__(self) -> None:
        check_fields(self, "")
        if self.optimizer not in OPTIMIZERS:
            raise UserError(f"config key 'optimizer' must be one of {', '.join(OPTIMIZERS)}, not {self.optimizer!r}")
        for key in ("mean", "std"):
            values = getattr(self, key)
            if len(values) != 3:
                raise UserError(f"config key {key!r} needs 3 values (R, G, B), got {len(values)}")
            for v in values:
                check_number(key, v, low=0.0, low_open=key == "std", high=1.0)
        if self.run.batch_size < 2:
            raise UserError("config key 'run.batch_size' must be ≥ 2 for pretraining: the SSL losses compare the "
                            "views of different images in a batch")
