"""``robustbench pretrain`` configuration."""

from __future__ import annotations

import dataclasses
from typing import Any

from ssl_robustbench.config import DataConfig, RunConfig
from ssl_robustbench.transforms.views import ViewSpec


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    """Method, backbone, data and optimisation of an SSL pretraining run.

    ``lr`` is the base rate for a batch of 256 (scaled linearly with the batch size, as in SimCLR).
    ``monitor_every`` is the k-NN monitor's period in epochs (0: off), with ``monitor_split`` as queries.
    ``view_size`` is the side of the augmented views (default ``input_size``; smaller trains faster).
    ``color_strength`` is SimCLR's colour-jitter strength s.
    ``views``: the view specs (empty: the method's default, e.g. SimCLR's two global crops); ``aug``: robust view
    generation inserted into every view at the method's preset place (``mpd``, ``lcm``; ``transforms/views.py``).
    ``mean``/``std`` are the normalization stored in the exported card.
    ``optimizer``: ``sgd``, ``adamw`` or ``lars``; ``accumulate``: gradient-accumulation steps per optimizer step
    (``run.batch_size`` stays the global batch); ``sync_bn``: SyncBatchNorm under torchrun.
    """

    method: str = "simclr"
    method_args: dict[str, Any] = dataclasses.field(default_factory=dict)
    arch: str = "tiny_resnet"
    data: DataConfig = DataConfig()
    input_size: int = 64
    view_size: int | None = None
    color_strength: float = 1.0
    views: tuple[ViewSpec, ...] = ()
    aug: tuple[str, ...] = ()
    epochs: int = 30
    optimizer: str = "sgd"
    accumulate: int = 1
    sync_bn: bool = False
    lr: float = 0.3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    warmup_epochs: int = 2
    monitor_every: int = 5
    monitor_split: str = "val"
    knn_k: int = 20
    mean: tuple[float, ...] = (0.5, 0.5, 0.5)
    std: tuple[float, ...] = (0.25, 0.25, 0.25)
    run: RunConfig = RunConfig()
