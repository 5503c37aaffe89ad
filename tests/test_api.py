"""The Python API: ``ssl_robustbench.evaluate`` on plain torchvision and timm modules, ``list_models``,
``load_model``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import ssl_robustbench as rb
from ssl_robustbench.errors import UserError

SMALL = {"data": {"train_limit": 400, "eval_limit": 200}, "probe": {"max_iter": 20}}


class Recording(nn.Module):
    """Wraps a module and keeps the input sizes it was called with."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner, self.sizes = inner, set()

    def forward(self, x):
        self.sizes.add(tuple(x.shape[-2:]))
        return self.inner(x)


def test_evaluate_a_torchvision_module(tmp_path):
    import torchvision

    torch.manual_seed(0)
    model = Recording(torchvision.models.resnet18(num_classes=10))  # logits serve as features
    result = rb.evaluate(model, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), input_size=64, name="tv-resnet18",
                         out=tmp_path / "run", device="cpu", settings=SMALL)
    clean = result.table.query("suite == 'clean' and metric == 'top1'").iloc[0]
    assert clean.model_id == "tv-resnet18" and clean.n == 200 and 0 <= clean.value <= 1
    assert model.sizes == {(64, 64)}, "the model sees its own input size, never an upscaled 224"
    card = result.cards["clean"]
    assert card.model.id == "tv-resnet18" and card.model.arch.endswith("Recording")
    assert card.protocol.preprocessing["mean"] == [0.5, 0.5, 0.5] and len(card.model.checkpoint_sha256) == 64
    assert (result.run_dir / "cards" / "clean.json").is_file()
    again = rb.evaluate(model, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), input_size=64, name="tv-resnet18",
                        out=tmp_path / "run", device="cpu", settings=SMALL)  # resumes: the same numbers
    assert again.table["value"].tolist() == result.table["value"].tolist()


def test_evaluate_a_timm_module_with_its_own_normalization(tmp_path):
    import timm

    model = timm.create_model("resnet10t", pretrained=False, num_classes=0)
    cfg = model.pretrained_cfg
    result = rb.evaluate(model, mean=cfg["mean"], std=cfg["std"], input_size=64, name="timm-resnet10t",
                         out=tmp_path / "run", device="cpu", suites=["clean", "pd"],
                         settings=SMALL | {"pd": {"limit": 50, "views": ["left"], "backgrounds": ["black"]}})
    assert set(result.table["suite"]) == {"clean", "pd"} and set(result.cards) == {"clean", "pd"}
    assert result.cards["pd"].protocol.preprocessing["std"] == list(cfg["std"])


def test_evaluate_refuses_what_it_cannot_score(tmp_path):
    with pytest.raises(UserError, match="torch.nn.Module"):
        rb.evaluate("resnet50", mean=(0.5,) * 3, std=(0.2,) * 3, input_size=64)
    with pytest.raises(UserError, match="std must be positive"):
        rb.evaluate(nn.Flatten(), mean=(0.5,) * 3, std=(0.0,) * 3, input_size=64)
    with pytest.raises(UserError, match="cannot take a \\[2, 3, 64, 64\\] batch"):
        rb.evaluate(nn.Linear(5, 2), mean=(0.5,) * 3, std=(0.2,) * 3, input_size=64, out=tmp_path / "r")
    with pytest.raises(UserError, match="name"):
        rb.evaluate(nn.Flatten(), mean=(0.5,) * 3, std=(0.2,) * 3, input_size=64, name="My Model")


def test_zoo_from_python():
    ids = rb.list_models()
    assert "embedded-simclr-tinyresnet" in ids and ids == sorted(ids)
    model = rb.load_model("embedded-simclr-tinyresnet")
    assert not model.training and model(torch.rand(2, 3, 64, 64)).shape == (2, model.backbone.num_features)
