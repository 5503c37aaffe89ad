"""Attacks: threat models, PGD against a naive reference and an independent attack, AutoAttack through our runner
equal to pyautoattack's own run, resume after interruption, sanity flags."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssl_robustbench.attacks import sanity
from ssl_robustbench.attacks.autoattack import build_autoattack, components
from ssl_robustbench.attacks.base import ThreatModel, default_eps
from ssl_robustbench.attacks.pgd import _random_start, pgd
from ssl_robustbench.attacks.runner import run_cascade
from ssl_robustbench.config import ProbeConfig
from ssl_robustbench.data.embedded import load_split
from ssl_robustbench.errors import UserError
from ssl_robustbench.probes.linear import fit_linear_probe
from ssl_robustbench.zoo import get_card, load_model


@pytest.fixture(scope="module")
def small(cache_dir):
    """The bundled SimCLR tiny ResNet with a probe fitted on 1,000 val images; 100 test images."""
    loaded = load_model(get_card("embedded-simclr-tinyresnet"))
    model = loaded.model.eval()
    xv, yv = load_split("val", cache_dir=cache_dir)
    with torch.no_grad():
        feats = model.features(xv.float() / 255)
    model.head = fit_linear_probe(feats, yv, num_classes=10, cfg=ProbeConfig()).head.eval()
    xt, yt = load_split("test", cache_dir=cache_dir)
    return model, xt[:100].float() / 255, yt[:100]


def test_threat_model_checks_and_projection():
    with pytest.raises(UserError, match="eps must be > 0"):
        ThreatModel("Linf", 0.0)
    with pytest.raises(UserError, match="norm must be one of"):
        ThreatModel("L3", 0.1)
    assert ThreatModel("Linf", 8 / 255).label == "Linf eps=8/255" and ThreatModel("L2", 0.5).label == "L2 eps=0.5"
    assert default_eps(32) == 8 / 255 and default_eps(224) == 4 / 255
    x = torch.full((2, 3, 4, 4), 0.5)
    far = x + torch.randn(2, 3, 4, 4)
    linf = ThreatModel("Linf", 0.1).project(far, x)
    assert (linf - x).abs().max() <= 0.1 + 1e-7 and linf.min() >= 0 and linf.max() <= 1
    l2 = ThreatModel("L2", 0.3).project(x + 0.01 * torch.randn(2, 3, 4, 4), x)
    assert ((l2 - x).flatten(1).norm(dim=1) <= 0.3 + 1e-6).all()


def naive_pgd(model, x, y, threat, steps, alpha, start):
    """One sample at a time, written from the algorithm's definition."""
    out = []
    for i in range(len(x)):
        adv = start[i:i + 1].clone()
        for _ in range(steps):
            adv.requires_grad_(True)
            loss = F.cross_entropy(model(adv), y[i:i + 1])
            grad = torch.autograd.grad(loss, adv)[0]
            adv = adv.detach() + alpha * grad.sign()
            adv = torch.min(torch.max(adv, x[i:i + 1] - threat.eps), x[i:i + 1] + threat.eps).clamp(0, 1)
        out.append(adv)
    return torch.cat(out)


def test_pgd20_agrees_with_a_naive_reference_within_two_images(small):
    model, x, y = small
    threat = ThreatModel("Linf", 1 / 255)
    ours = pgd(model, x, y, threat=threat, steps=20, seed=3)
    start = _random_start(x, threat, torch.Generator().manual_seed(3))
    ref = naive_pgd(model, x, y, threat, 20, threat.eps / 4, start)
    with torch.no_grad():
        robust_ours = int((model(ours).argmax(1) == y).sum())
        robust_ref = int((model(ref).argmax(1) == y).sum())
    # counted in images (no float rounding); 2 of 100 allowed: float summation order can flip a borderline point
    assert abs(robust_ours - robust_ref) <= 2, (robust_ours, robust_ref)
    assert (ours - x).abs().max() <= threat.eps + 1e-7 and ours.min() >= 0 and ours.max() <= 1


def test_sa_ra_aa_are_ordered_and_apgd_is_no_weaker_than_pgd(small):
    model, x, y = small
    threat = ThreatModel("Linf", 1 / 255)
    with torch.no_grad():
        sa = float((model(x).argmax(1) == y).float().mean())
    ra = float((model(pgd(model, x, y, threat=threat)).argmax(1) == y).float().mean())
    aa = build_autoattack(model, threat, num_classes=10, seed=0)
    aa.apgd.loss = "ce"
    apgd = float((model(aa.apgd.perturb(x, y)).argmax(1) == y).float().mean())
    assert apgd <= ra and 0 < ra < sa


def test_our_autoattack_equals_pyautoattack(small, tmp_path):
    model, x, y = small
    threat = ThreatModel("Linf", 1 / 255)

    def configured():
        aa = build_autoattack(model, threat, num_classes=10, seed=0)
        aa.square.n_queries = 100  # both sides alike: keeps the test fast
        return aa

    x, y = x[:16], y[:16]
    _, y_adv = configured().run_standard_evaluation(x, y, batch_size=16)
    direct = float((y_adv == y).float().mean())
    ours = run_cascade(model, x, y, components(configured()), batch_size=16, state_path=tmp_path / "aa.state")
    assert ours.accuracy["square"] == pytest.approx(direct)
    assert torch.equal(ours.robust, y_adv == y), "per-image flags, not only the count"
    assert list(ours.accuracy) == ["clean", "apgd-ce", "apgd-t", "fab-t", "square"]
    assert ours.accuracy["square"] <= ours.accuracy["apgd-ce"] <= ours.accuracy["clean"]


class LabelReader(torch.nn.Module):
    """A stub classifier that reads its answer from pixel (0, 0): how robust it is depends on nothing but the
    stub attacks below, so the cascade's control flow is the same on every machine."""

    def forward(self, x):
        return torch.nn.functional.one_hot((x[:, 0, 0, 0] * 10).round().long().clamp(0, 9), 10).float()


def _fool_where(keep):
    """An attack that changes the label pixel of the points whose clean label satisfies ``keep``."""
    def perturb(a, b):
        out = a.clone()
        hit = keep(b)
        out[hit, 0, 0, 0] = ((b[hit] + 1) % 10).float() / 10
        return out
    return perturb


def test_interrupted_cascade_resumes_to_the_same_flags(tmp_path):
    model = LabelReader().eval()
    y = torch.arange(48) % 10
    x = torch.rand(48, 3, 4, 4)
    x[:, 0, 0, 0] = y.float() / 10
    attacks = [("first", _fool_where(lambda b: b % 3 == 0)), ("second", _fool_where(lambda b: b % 3 == 1))]
    full = run_cascade(model, x, y, attacks, batch_size=8)
    assert full.accuracy["clean"] == 1.0 and 0 < full.accuracy["second"] < full.accuracy["first"] < 1
    calls = []

    def interrupted(a, b):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return attacks[1][1](a, b)

    state = tmp_path / "run.state"
    with pytest.raises(KeyboardInterrupt):
        run_cascade(model, x, y, [attacks[0], ("second", interrupted)], batch_size=8, state_path=state)
    saved = torch.load(state, weights_only=True)
    assert saved["done"] == ["first"] and saved["current"]["next"] == 1  # one batch of the second was finished
    resumed = run_cascade(model, x, y, attacks, batch_size=8, state_path=state)
    assert torch.equal(resumed.robust, full.robust) and resumed.accuracy == full.accuracy
    with pytest.raises(UserError, match="another attack run"):
        run_cascade(model, x, y, attacks[:1], batch_size=8, state_path=state)


def test_train_mode_is_refused_and_masking_is_flagged(small):
    model, x, y = small
    with pytest.raises(UserError, match="train mode"):
        run_cascade(model.train(), x, y, [], batch_size=8)
    model.eval()
    probs = nn.Sequential(model, nn.Softmax(dim=1)).eval()
    assert sanity.softmax_outputs(probs, x[:4]) and sanity.softmax_outputs(model, x[:4]) is None
    noisy = nn.Sequential(nn.Dropout(0.5), model)
    noisy.train()
    assert sanity.randomized_forward(noisy, x[:4]) and sanity.randomized_forward(model, x[:4]) is None

    class Rounded(nn.Module):  # a step function of the input: zero gradients everywhere
        def forward(self, t):
            return model(torch.round(t * 4) / 4)

    assert sanity.zero_gradients(Rounded().eval(), x[:4], y[:4]) == "zero gradients for 100% of inputs"
    assert sanity.zero_gradients(model, x[:4], y[:4]) is None
    assert sanity.black_box_beats_white_box({"clean": .5, "apgd-ce": .3, "square": .2})
    assert sanity.black_box_beats_white_box({"clean": .5, "apgd-ce": .3, "square": .3}) is None
    assert sanity.more_steps_help_model(0.2, 0.3) and sanity.more_steps_help_model(0.3, 0.2) is None
    # PGD-20 far above AutoAttack (more than 10 points) is itself a sign of masking; a few points are normal
    assert sanity.pgd_far_above_autoattack(0.45, 0.30) == "PGD-20 accuracy exceeds AutoAttack by 15.0 points"
    assert sanity.pgd_far_above_autoattack(0.33, 0.30) is None and sanity.pgd_far_above_autoattack(None, 0.3) is None
