"""The adversarial suite through the CLI, the finetuning protocols, and its bad inputs."""

from __future__ import annotations

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
from ssl_robustbench.results.store import cards_from_run
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
    first = run("eval", "--suite", "clean", "--suite", "adversarial", "--n-adv", 40, "--out", out, *FAST)
    assert first.exit_code == 0, first.output
    rows = {r.condition: r for r in read_table(out / "results.csv") if r.suite == "adversarial" and r.metric == "top1"}
    sa, ra, aa = (rows["slf/clean"], rows["slf/pgd20 Linf eps=8/255"],
                  rows["slf/autoattack-standard Linf eps=8/255"])
    assert aa.value <= ra.value <= sa.value and sa.n == ra.n == aa.n == 40
    assert sorted(p.name for p in (out / "adversarial").iterdir()) == [
        "sanity.json", "slf-autoattack.state", "slf-pgd.state", "slf.safetensors"]
    cards = {c.suite: c for c in cards_from_run(out)}
    adv = cards["adversarial"]
    assert adv.protocol.details["threat_model"]["eps"] == pytest.approx(8 / 255)
    assert "threat_model" not in cards["clean"].protocol.details
    assert adv.protocol.subset_size == 40 and cards["clean"].protocol.subset_size == 2000
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
    again = run("eval", "--suite", "clean", "--suite", "adversarial", "--n-adv", 40, "--out", out, *FAST)
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
