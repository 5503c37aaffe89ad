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


class _Shattered(torch.autograd.Function):
    """Identity forward, a useless backward (0.5·cos(5000x)): shattered gradients (Athalye et al. 2018)."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return 0.5 * torch.cos(5000 * x)


def _linear_model(shattered: bool) -> nn.Module:
    torch.manual_seed(0)
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))

    class Model(nn.Module):
        def forward(self, x):
            return linear(_Shattered.apply(x) if shattered else x)

    return Model().eval()


def test_pgd_alone_is_checked_for_masked_gradients_by_a_black_box_attack():
    import types

    from ssl_robustbench.attacks.base import ThreatModel
    from ssl_robustbench.attacks.pgd import pgd_attack
    from ssl_robustbench.benchmarks.adversarial import _square_check

    x = torch.rand(64, 3, 8, 8)
    threat = ThreatModel("Linf", 8 / 255)
    ctx = types.SimpleNamespace(num_classes=10, cfg=types.SimpleNamespace(run=types.SimpleNamespace(seed=0)),
                                device=torch.device("cpu"))
    flags = {}
    for shattered in (False, True):
        model = _linear_model(shattered)
        with torch.no_grad():
            y = model(x).argmax(1)  # every image correct before the attack
        result = run_cascade(model, x, y, [("pgd", pgd_attack(model, threat, steps=20))], batch_size=64)
        flags[shattered] = (result.accuracy["pgd"], _square_check(model, threat, x, y, result.robust, ctx))
    masked_ra, masked_flag = flags[True]
    honest_ra, honest_flag = flags[False]
    assert masked_ra > honest_ra + 0.3, "PGD alone is fooled by the shattered gradients"
    assert masked_flag is not None and "gradients may be masked" in masked_flag
    assert honest_flag is None


def test_nan_outputs_are_a_flag_not_a_crash():
    class NaNModel(nn.Module):
        def forward(self, x):
            return torch.full((len(x), 10), float("nan")) + 0 * x.sum()

    x, y = torch.rand(16, 3, 8, 8), torch.randint(0, 10, (16,))
    flags = [f for f in AdversarialBenchmark._static_checks(NaNModel().eval(), x, y) if f]
    assert flags == ["non-finite outputs (NaN/Inf) for 16 of 16 images"]
