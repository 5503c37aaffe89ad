"""The Python API: evaluate any ``nn.Module`` (images → features or logits) with the benchmark's own protocol.

    import ssl_robustbench as rb
    result = rb.evaluate(my_backbone, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), input_size=224,
                         data="imagenet", data_root="/data/imagenet", suites=["clean", "c"])
    result.table          # the long results DataFrame (one row per suite × condition × severity × metric)
    result.cards["c"]     # the suite's result card, ready for `robustbench submit result.run_dir`

The model sees pixels in [0, 1] normalized with ``mean``/``std`` at ``input_size`` (nothing is resized to 224
behind your back: photos get Resize(input_size / crop_pct) + CenterCrop(input_size), sets already at that size
are taken as they are). Its output, flattened, is the feature a linear probe is fitted on (frozen), exactly as
``robustbench eval`` does for a zoo checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from ssl_robustbench.config import build, merge
from ssl_robustbench.errors import UserError
from ssl_robustbench.eval_config import EvalConfig
from ssl_robustbench.results.card import ResultCard


@dataclasses.dataclass
class Evaluation:
    """What ``evaluate`` returns.

    Attributes:
        table: the long results table, one row per suite × condition × severity × metric (columns as in the run's
            ``results.csv``: ``suite``, ``condition``, ``severity``, ``metric``, ``value``, ``n`` …).
        cards: one ``ResultCard`` per suite, keyed by suite name (``robustbench submit`` sends them to a store).
        run_dir: the run directory (``results.*``, ``cards/``, ``evidence/``, ``model.json``).
    """

    table: pd.DataFrame
    cards: dict[str, ResultCard]
    run_dir: Path


class _Flattened(nn.Module):
    """A user's module with its output flattened to [B, D] and ``num_features`` set (the Backbone contract)."""

    def __init__(self, module: nn.Module, num_features: int) -> None:
        super().__init__()
        self.module, self.num_features = module, num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.module(x)
        return out.flatten(1) if out.ndim > 2 else out


def _state_digest(module: nn.Module) -> str:
    """sha256 over the module's parameters and buffers (names, shapes, bytes): its identity in the cards and the
    feature cache, like a checkpoint file's sha256."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        t = tensor.detach().cpu().contiguous().reshape(-1)  # 0-d buffers (BatchNorm's counter) as 1-d
        digest.update(str((tuple(tensor.shape), str(t.dtype))).encode())
        digest.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _as_loaded(model: nn.Module, *, name: str, mean: Sequence[float], std: Sequence[float], input_size: int,
               crop_pct: float, interpolation: str):
    """A ``LoadedModel`` (what the eval pipeline takes) for a user's module: a card built from the arguments,
    validated like a zoo card's."""
    from ssl_robustbench.backbones import ImageClassifier
    from ssl_robustbench.zoo import LoadedModel
    from ssl_robustbench.zoo.card import ID_PATTERN, Source, ZooCard, checked_preprocessing
    from ssl_robustbench.zoo.checkpoint import LoadReport

    if not ID_PATTERN.fullmatch(name):
        raise UserError(f"name {name!r} must be lowercase letters, digits, '.', '_' or '-'")
    pre = checked_preprocessing({"mean": mean, "std": std, "input_size": input_size, "crop_pct": crop_pct,
                                 "interpolation": interpolation}, lambda msg: UserError(f"evaluate: {msg}"))
    card = ZooCard(id=name, arch=f"python/{type(model).__module__}.{type(model).__qualname__}", method="unknown",
                   paper="-", license="-", source=Source(), pretrain_data="unknown", **pre)
    with torch.no_grad():
        try:
            out = model(torch.zeros(2, 3, input_size, input_size))
        except Exception as err:  # noqa: BLE001 — the user's module, on a probe input of the stated size
            raise UserError(f"the model cannot take a [2, 3, {input_size}, {input_size}] batch: {err}") from None
    if not isinstance(out, torch.Tensor) or out.ndim < 2 or out.shape[0] != 2:
        raise UserError("the model must map a [B, 3, H, W] batch to a [B, D] (or [B, …]) tensor of features")
    backbone = _Flattened(model, int(out.flatten(1).shape[1]))
    classifier = ImageClassifier(backbone, mean=card.mean, std=card.std)
    return LoadedModel(model=classifier, card=card, sha256=_state_digest(model),
                       report=LoadReport(loaded=len(model.state_dict()), missing=(), ignored=()))


def evaluate(model: nn.Module, *, mean: Sequence[float], std: Sequence[float], input_size: int,
             name: str = "my-model", data: str = "embedded", data_root: str | None = None,
             suites: Iterable[str] = ("clean",), crop_pct: float = 0.875, interpolation: str = "bilinear",
             out: str | Path | None = None, device: str = "auto", settings: dict[str, Any] | None = None
             ) -> Evaluation:
    """Evaluates ``model`` (frozen, in eval mode while it runs; images in [0, 1] → features or logits) like
    ``robustbench eval``: a linear probe on its features of the train split, then every suite on the eval split.

    Args:
        model: any ``nn.Module``; its flattened output is the feature vector.
        mean: per-channel mean of the model's own preprocessing (required with ``std`` and ``input_size``: a
            wrong normalization changes every number, so there is no default).
        std: per-channel standard deviation.
        input_size: side of the square input the model takes.
        name: the model's id in the table and the cards (lowercase letters, digits, ``.``, ``_``, ``-``).
        data: a registered dataset (``embedded``, ``imagenet``, ``imagefolder``, ``cifar10`` …).
        data_root: its local directory (not needed for ``embedded``).
        suites: benchmark suites (``clean``, ``c``, ``pd``, ``e``, ``adversarial``).
        out: the run directory (default ``runs/<name>-<config hash>``); a re-run with the same one resumes.
        crop_pct: center-crop fraction of photos (resize side ``floor(input_size / crop_pct)``).
        interpolation: ``bilinear`` or ``bicubic`` resize of photos.
        device: ``auto``, ``cpu`` or ``cuda``.
        settings: any other config keys as a nested mapping, e.g. ``{"probe": {"solver": "sgd"},
            "c": {"severities": [3]}, "data": {"eval_limit": 1000}}``.
    """
    from ssl_robustbench.evaluation import run_eval

    if not isinstance(model, nn.Module):
        raise UserError(f"evaluate needs a torch.nn.Module, not {type(model).__name__}")
    config = merge(settings or {}, {"model": name, "suites": list(suites), "data": {"name": data},
                                    "run": {"device": device}})
    if data_root is not None:
        config["data"]["root"] = str(data_root)
    cfg = build(EvalConfig, config)
    was_training = model.training
    try:
        model.eval()  # frozen features: BatchNorm statistics and dropout as at inference
        loaded = _as_loaded(model, name=name, mean=mean, std=std, input_size=input_size, crop_pct=crop_pct,
                            interpolation=interpolation)
        run = run_eval(cfg, run_dir=Path(out) if out is not None else None, loaded=loaded)
    finally:
        model.train(was_training)
    from ssl_robustbench.results.card import load_card_json

    cards = {path.stem: load_card_json(path) for path in sorted((run.run_dir / "cards").glob("*.json"))}
    table = pd.DataFrame([dataclasses.asdict(r) for r in run.rows])
    return Evaluation(table=table, cards=cards, run_dir=run.run_dir)


def list_models() -> list[str]:
    """The ids of the model zoo's cards (``robustbench zoo list``)."""
    from ssl_robustbench.zoo import list_cards

    return [card.id for card in list_cards()]


def load_model(model_id: str, *, cache_dir: str | Path | None = None) -> nn.Module:
    """A zoo checkpoint as a frozen ``nn.Module`` in eval mode (pixels in [0, 1] → features; its normalization
    inside), fetched and sha256-checked. Its preprocessing: ``ssl_robustbench.zoo.get_card(model_id)``."""
    from ssl_robustbench.zoo import get_card
    from ssl_robustbench.zoo import load_model as load

    loaded = load(get_card(model_id), cache_dir=Path(cache_dir) if cache_dir else None, quiet=True)
    return loaded.model.eval()
