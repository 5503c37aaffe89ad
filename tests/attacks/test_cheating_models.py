"""Models built to cheat the adversarial suite: a BatchNorm left in train mode inside an eval-mode wrapper, outputs
that depend on the rest of the batch, and the default ε of each threat model (RobustBench's budgets)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ssl_robustbench.attacks import sanity
from ssl_robustbench.attacks.base import default_eps, train_mode_modules
from ssl_robustbench.attacks.runner import run_cascade
from ssl_robustbench.benchmarks.adversarial import AdversarialBenchmark
from ssl_robustbench.config import build
from ssl_robustbench.errors import UserError
from ssl_robustbench.eval_config import EvalConfig


def tiny_classifier() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 10))


@pytest.mark.parametrize("norm, size, eps", [("Linf", 32, 8 / 255), ("Linf", 64, 8 / 255), ("Linf", 224, 4 / 255),
                                             ("L2", 32, 0.5), ("L2", 96, 0.5), ("L2", 224, 3.0)])
def test_default_eps_follows_the_threat_model(norm, size, eps):
    assert default_eps(size, norm) == eps
    cfg = build(EvalConfig, {"adv": {"norm": norm}})
    threat = AdversarialBenchmark().threat(cfg, size)
    assert threat.eps == eps and threat.label.startswith(norm)


def test_a_submodule_in_train_mode_is_refused():
    model = tiny_classifier().eval()
    model[1].train()  # the wrapper says eval, its BatchNorm does not
    assert model.training is False and train_mode_modules(model) == ["1"]
    x, y = torch.rand(8, 3, 8, 8), torch.randint(0, 10, (8,))
    with pytest.raises(UserError, match=r"train mode \(1\)"):
        run_cascade(model, x, y, [], batch_size=4)
    model[1].eval()
    assert run_cascade(model, x, y, [], batch_size=4).accuracy["clean"] >= 0


def test_outputs_that_depend_on_the_batch_are_flagged():
    honest = tiny_classifier().eval()

    class BatchStats(nn.Module):  # normalizes with the statistics of whatever batch it is given
        def forward(self, x):
            return honest((x - x.mean(0, keepdim=True)) / (x.std(0, keepdim=True) + 1e-3))

    x = torch.rand(16, 3, 8, 8)
    assert sanity.batch_dependent(BatchStats(), x) == "batch-dependent outputs"
    assert sanity.batch_dependent(honest, x) is None
    assert sanity.batch_dependent(honest, x[:2]) is None  # too small to split: no verdict


def test_the_suite_refuses_a_model_its_attacks_would_change():
    from ssl_robustbench.probes.integrity import assert_unchanged, fingerprint

    model = tiny_classifier().eval()
    before = fingerprint(model)
    model[1].train()
    model(torch.rand(4, 3, 8, 8))  # one train-mode forward moves the running statistics
    with pytest.raises(UserError, match="weights changed"):
        assert_unchanged(model, before, what="model (during pgd20)")
