"""The adversarial suite through the CLI, the finetuning protocols, and its bad inputs."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from click.testing import CliRunner

from ssl_robustbench.attacks.base import ThreatModel
from ssl_robustbench.benchmarks.adversarial_finetune import finetune, load_recipe, random_crop_flip
from ssl_robustbench.cli import main
from ssl_robustbench.data import DataRequest, build_dataset
from ssl_robustbench.probes.integrity import fingerprint
from ssl_robustbench.results import read_table
from ssl_robustbench.results.store import cards_from_source
from ssl_robustbench.zoo import get_card, load_model
from ssl_robustbench.zoo.download import cache_root

FAST = ["--set", "data.train_limit=300", "--set", "adv.epochs=1", "--device", "cpu"]


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.mark.parametrize("setting, message", [
    ("adv.eps=0", "eps must be > 0"), ("adv.eps=-0.1", "eps must be > 0"), ("adv.norm=L3", "norm must be one of"),
    ("adv.autoattack=fast", "adv.autoattack must be"), ("adv.protocol=xyz", "protocol must be one of"),
    ("adv.n=0", "must be ≥ 1"),
])
def test_bad_settings_fail_before_any_work(tmp_path, setting, message):
    result = run("eval", "--suite", "adversarial", "--set", setting, "--out", tmp_path / "r")
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "r").exists()


def test_sa_ra_aa_rows_card_and_resume(tmp_path):
    out = tmp_path / "run"
    first = run("eval", "--suite", "clean", "--suite", "adversarial", "--n-adv", 24, "--out", out, *FAST)
    assert first.exit_code == 0, first.output
    rows = {r.condition: r for r in read_table(out / "results.csv") if r.suite == "adversarial" and r.metric == "top1"}
    sa, ra, aa = (rows["slf/clean"], rows["slf/pgd20 Linf eps=8/255"],
                  rows["slf/autoattack-standard Linf eps=8/255"])
    assert aa.value <= ra.value <= sa.value and sa.n == ra.n == aa.n == 24
    assert sorted(p.name for p in (out / "adversarial").iterdir()) == [
        "sanity.json", "slf-autoattack.state", "slf-pgd.state", "slf.safetensors"]
    cards = {f.card.suite: f.card for f in cards_from_source(out)}
    adv = cards["adversarial"]
    assert adv.protocol.details["threat_model"]["eps"] == pytest.approx(8 / 255)
    assert "threat_model" not in cards["clean"].protocol.details
    assert adv.protocol.subset_size == 24 and cards["clean"].protocol.subset_size == 2000
    assert adv.protocol.head.kind == "slf" and adv.protocol.head.recipe["epochs"] == 1  # the head that was scored
    assert cards["clean"].protocol.head.kind == "probe" and cards["clean"].protocol.head.recipe["solver"] == "lbfgs"
    assert adv.protocol.details["attacks"] == ["pgd", "autoattack"]
    from ssl_robustbench.stats import wilson_interval

    intervals = {f"{k}_ci95_{end}": bound for k, m in (("aa", aa), ("ra", ra), ("sa", sa))
                 for end, bound in zip(("low", "high"), wilson_interval(m.value, m.n), strict=True)}
    assert adv.rank_metric == "aa"
    assert adv.aggregates == {"aa": aa.value, "ra": ra.value, "sa": sa.value} | intervals  # with 95 % intervals
    assert all(adv.aggregates[f"{k}_ci95_low"] <= adv.aggregates[k] <= adv.aggregates[f"{k}_ci95_high"]
               for k in ("aa", "ra", "sa"))
    assert list(adv.sanity_flags) == json.loads((out / "adversarial" / "sanity.json").read_text())["flags"]
    before = (out / "results.json").read_text()
    again = run("eval", "--suite", "clean", "--suite", "adversarial", "--n-adv", 24, "--out", out, *FAST)
    assert again.exit_code == 0 and (out / "results.json").read_text() == before


def test_random_crop_flip():
    x = torch.rand(4, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(random_crop_flip(x, pad=0, flip=False, g=g), x)
    out = random_crop_flip(x, pad=2, flip=False, g=g)
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    for i in range(4):  # every output is some 8x8 window of the zero-padded image
        assert any(torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8]) for dy in range(5) for dx in range(5))


@pytest.mark.parametrize("protocol", ["slf", "alf", "aff"])
def test_protocols_train_what_they_should(protocol):
    loaded = load_model(get_card("embedded-random-tinyresnet"))
    model = loaded.model.eval()
    train = build_dataset("embedded", DataRequest(split="val", preprocess=loaded.card.preprocess,
                                                  cache_dir=cache_root()), limit=64)
    before = fingerprint(model.backbone)
    record = finetune(model, train, recipe=load_recipe(protocol, epochs=1), threat=ThreatModel("Linf", 8 / 255),
                      num_classes=10, device=torch.device("cpu"))
    assert model.head.out_features == 10 and len(record["epoch_losses"]) == 1 and not model.training
    assert (fingerprint(model.backbone) != before) == (protocol == "aff")
    assert load_recipe(protocol).epochs == 25 and load_recipe("aff").trades_beta == 6.0


def _branch_recorder(monkeypatch):
    """Patches AFF's dual-BN conversion to record, per branch of the first BatchNorm, (training?, input) calls."""
    import ssl_robustbench.benchmarks.adversarial_finetune as aft
    from ssl_robustbench.backbones.dual_bn import DualBatchNorm, convert_dual_bn

    calls, modules = {"normal": [], "pgd": []}, {}

    def recording(module):
        out = convert_dual_bn(module)
        first = next(m for m in out.modules() if isinstance(m, DualBatchNorm))
        for name, bn in zip(("normal", "pgd"), first.bn_list, strict=True):
            modules[name] = bn
            bn.register_forward_hook(lambda m, inp, _, name=name: calls[name].append((m.training, inp[0].detach())))
        return out

    monkeypatch.setattr(aft, "convert_dual_bn", recording)
    return calls, modules


def test_aff_of_a_dual_bn_checkpoint_follows_trades_loss_dual(monkeypatch):
    """test_AFF.py / utils_dyn.trades_loss_dual: the KL ascent starts at x (no noise), clean images go through the
    normal branch and adversarial ones through pgd (in the ascent and in training), the model is scored on pgd,
    and the head starts at zero (so the first batch's ascent has no gradient, as in the released code)."""
    from ssl_robustbench.backbones.dual_bn import has_dual_bn

    loaded = load_model(get_card("embedded-acl-tinyresnet"))
    assert loaded.dual_bn is not None and set(loaded.dual_bn) == {"normal", "pgd"}
    normal_mean = loaded.dual_bn["normal"]["stem.1.running_mean"]
    assert not torch.equal(normal_mean, loaded.dual_bn["pgd"]["stem.1.running_mean"])  # two real branches
    calls, modules = _branch_recorder(monkeypatch)
    train = build_dataset("embedded", DataRequest(split="val", preprocess=loaded.card.preprocess,
                                                  cache_dir=cache_root()), limit=32)
    recipe = dataclasses.replace(load_recipe("aff", epochs=1), batch_size=16, attack_steps=2)
    record = finetune(loaded.model, train, recipe=recipe, threat=ThreatModel("Linf", 8 / 255), num_classes=10,
                      device=torch.device("cpu"), dual_bn=loaded.dual_bn)
    assert record["bn"] == "dual"
    normal_eval = [x for training, x in calls["normal"] if not training]
    pgd_eval = [x for training, x in calls["pgd"] if not training]
    assert len(normal_eval) == 2 and len(pgd_eval) == 4                       # 2 batches × (target, 2 steps)
    assert all(torch.equal(pgd_eval[i], normal_eval[i // 2]) for i in (0, 1, 2))  # batch 1 never moves; 2 starts at x
    assert not torch.equal(pgd_eval[3], normal_eval[1])                        # then moves away
    normal_train = [x for training, x in calls["normal"] if training]
    pgd_train = [x for training, x in calls["pgd"] if training]
    assert len(normal_train) == len(pgd_train) == 2 and not torch.equal(normal_train[1], pgd_train[1])
    assert torch.equal(normal_train[1], normal_eval[1])                        # clean batch through normal
    assert not has_dual_bn(loaded.model.backbone) and loaded.model.backbone.stem[1] is modules["pgd"]


def test_aff_of_a_single_bn_model_starts_trades_from_noise(monkeypatch):
    loaded = load_model(get_card("embedded-random-tinyresnet"))
    assert loaded.dual_bn is None
    seen = []
    model = loaded.model
    model.backbone.stem[1].register_forward_hook(lambda m, inp, _: seen.append((m.training, inp[0].detach())))
    train = build_dataset("embedded", DataRequest(split="val", preprocess=loaded.card.preprocess,
                                                  cache_dir=cache_root()), limit=16)
    recipe = dataclasses.replace(load_recipe("aff", epochs=1), batch_size=16, attack_steps=1, lr=0.0)
    record = finetune(model, train, recipe=recipe, threat=ThreatModel("Linf", 8 / 255), num_classes=10,
                      device=torch.device("cpu"))
    evals = [x for training, x in seen if not training]  # the target on x, then the step from x + noise
    assert record["bn"] == "single" and len(evals) == 2 and not torch.equal(evals[0], evals[1])


def test_finetune_heads_start_at_zero_and_crops_pad_as_the_released_scripts(monkeypatch):
    """test_LF.py / test_AFF.py zero-initialise fc and crop with padding 4 (AFF at 96 px: none)."""
    import ssl_robustbench.benchmarks.adversarial_finetune as aft

    pads, heads = [], []
    real = aft.random_crop_flip
    monkeypatch.setattr(aft, "random_crop_flip", lambda x, *, pad, flip, g: pads.append(pad) or real(
        x, pad=pad, flip=flip, g=g))
    loaded = load_model(get_card("embedded-random-tinyresnet"))
    orig_linear = torch.nn.Linear

    def linear(*args, **kwargs):
        heads.append(orig_linear(*args, **kwargs))
        return heads[-1]

    monkeypatch.setattr(aft.nn, "Linear", linear)
    train = build_dataset("embedded", DataRequest(split="val", preprocess=loaded.card.preprocess,
                                                  cache_dir=cache_root()), limit=8)
    recipe = dataclasses.replace(load_recipe("slf", epochs=1), batch_size=8, lr=0.0)
    finetune(loaded.model, train, recipe=recipe, threat=ThreatModel("Linf", 8 / 255), num_classes=10,
             device=torch.device("cpu"))
    assert pads == [4] and not heads[0].weight.detach().any() and not heads[0].bias.detach().any()
    assert load_recipe("alf").crop_pad == 4 and load_recipe("aff").unpadded_sizes == (96,)


def test_attacked_images_are_floats_whatever_the_dataset_gives():
    """Datasets read from files give uint8 images; the attacked subset must be float in [0, 1] (ε is in that
    scale), as the loaders give every other suite."""
    import types

    from ssl_robustbench.benchmarks.adversarial import _images

    class Uint8Images:
        def __getitem__(self, i):
            return torch.full((3, 4, 4), 255, dtype=torch.uint8), i % 2

    x, y = _images(types.SimpleNamespace(clean=Uint8Images()), [3, 0])
    assert x.dtype == torch.float32 and float(x.max()) == 1.0 and y.tolist() == [1, 0]
