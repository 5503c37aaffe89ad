"""The linear probe: correctness on separable data, save/load, class-count checks, the frozen-backbone check."""

import pytest
import torch

from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.config import ProbeConfig
from ssl_robustbench.errors import UserError
from ssl_robustbench.probes.features import knn_accuracy
from ssl_robustbench.probes.integrity import assert_unchanged, fingerprint
from ssl_robustbench.probes.linear import fit_linear_probe, load_probe, loss_and_grads, save_probe


def separable(n=2000, d=32, c=5, seed=0, offset=5.0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % c
    w = torch.randn(c, d, generator=g)
    x = torch.randn(n, d, generator=g) * 0.5 + w[y] * 2 + offset  # offset: standardization must handle it
    return x, y


def test_probe_reaches_full_accuracy_on_linearly_separable_features():
    x, y = separable()
    probe = fit_linear_probe(x, y, num_classes=5, cfg=ProbeConfig())
    xt, yt = separable(seed=0)
    assert (probe.head(xt).argmax(1) == yt).float().mean() >= 0.99
    assert probe.record["train_top1"] >= 0.99 and probe.record["recipe"]["weight_decay"] == 1e-4


def test_probe_is_at_chance_on_noise():
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(3000, 16, generator=g), torch.randint(0, 4, (3000,), generator=g)
    probe = fit_linear_probe(x[:2000], y[:2000], num_classes=4, cfg=ProbeConfig())
    assert abs(float((probe.head(x[2000:]).argmax(1) == y[2000:]).float().mean()) - 0.25) < 0.06


def test_probe_roundtrip_and_class_count_mismatch(tmp_path):
    x, y = separable()
    probe = fit_linear_probe(x, y, num_classes=5, cfg=ProbeConfig())
    save_probe(tmp_path / "p.safetensors", probe)
    back = load_probe(tmp_path / "p.safetensors", num_features=32, num_classes=5)
    assert torch.equal(back.head.weight, probe.head.weight) and back.record == probe.record
    with pytest.raises(UserError, match="has 5 classes but the dataset has 10"):
        load_probe(tmp_path / "p.safetensors", num_features=32, num_classes=10)
    with pytest.raises(UserError, match="expects 32 features"):
        load_probe(tmp_path / "p.safetensors", num_features=64, num_classes=5)
    with pytest.raises(UserError, match="labels go up to 4"):
        fit_linear_probe(x, y, num_classes=3, cfg=ProbeConfig())


def test_backbone_change_is_detected():
    net = build_backbone("tiny_resnet/8-8-8-8")
    before = fingerprint(net)
    assert_unchanged(net, before)
    net.train()(torch.rand(4, 3, 32, 32))  # a train-mode forward moves BatchNorm running stats
    with pytest.raises(UserError, match="weights changed"):
        assert_unchanged(net, before)


def test_knn_on_clusters():
    x, y = separable(n=1000)
    assert knn_accuracy(x[:800], y[:800], x[800:], y[800:], k=5) > 0.95


def test_analytic_gradients_match_autograd():
    g = torch.Generator().manual_seed(0)
    z, y = torch.randn(64, 8, generator=g, dtype=torch.float64), torch.randint(0, 3, (64,), generator=g)
    w = torch.randn(3, 8, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    ref = torch.nn.functional.cross_entropy(z @ w.T + b, y) + 0.5 * 0.1 * (w * w).sum()
    ref.backward()
    loss, gw, gb = loss_and_grads(z, y, w.detach(), b.detach(), weight_decay=0.1)
    assert torch.allclose(loss, ref) and torch.allclose(gw, w.grad) and torch.allclose(gb, b.grad)


def test_label_fraction_subset_is_class_balanced_fixed_and_recorded(tmp_path):
    """1 % / 10 % labels (the semi-supervised protocols): per class round(f·n_c) images, at least one, the same
    every run; the card's train data records the fraction, so the protocol hash differs from full labels."""
    import json

    from click.testing import CliRunner

    from ssl_robustbench.cli import main
    from ssl_robustbench.data import TensorImages, dataset_identity, label_fraction_subset

    labels = torch.tensor([0] * 500 + [1] * 300 + [2] * 7)
    ds = TensorImages(torch.zeros(len(labels), 3, 2, 2, dtype=torch.uint8), labels, ["a", "b", "c"], None)
    sub = label_fraction_subset(ds, 0.1)
    counts = torch.bincount(labels[sub.indices], minlength=3).tolist()
    assert counts == [50, 30, 1] and sub.indices == label_fraction_subset(ds, 0.1).indices
    assert dataset_identity(sub)["label_fraction"] == 0.1 and label_fraction_subset(ds, 1.0) is ds
    assert set(label_fraction_subset(ds, 0.05).indices) < set(sub.indices)  # nested: one permutation per class
    out = tmp_path / "run"
    args = ["eval", "--device", "cpu", "--set", "data.train_limit=400", "--set", "data.eval_limit=100",
            "--label-fraction", "0.1", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    card = json.loads((out / "cards" / "clean.json").read_text())
    assert card["protocol"]["train_data"]["label_fraction"] == 0.1 and card["protocol"]["train_data"]["n"] == 40
    from ssl_robustbench.results.leaderboard import board_tables
    from ssl_robustbench.results.store import cards_from_source

    (board,) = board_tables([f.card for f in cards_from_source(out)]).values()
    assert "linear probe (lbfgs), 10% labels" in board.attrs["title"]
    bad = CliRunner().invoke(main, ["eval", "--label-fraction", "0", "--out", str(tmp_path / "bad")])
    assert bad.exit_code == 2 and "label-fraction" in bad.output
