"""The Self-AT family on one frame (ACL, DynACL(++), RoCL, DeACL, AdvCL), each with --strategy fixed|astra: it learns a
fixed batch, its adversarial views respect ε and the image box, and the recipe details of its official code."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from pretrain_args import tiny_pretrain_args

from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.errors import UserError
from ssl_robustbench.losses import nt_xent
from ssl_robustbench.methods import METHODS
from ssl_robustbench.methods.rocl import rocl_nt_xent
from ssl_robustbench.methods.self_at import SelfAT

TEACHER = "embedded-simclr-tinyresnet"
SELF_AT = ("acl", "dynacl", "dynacl++", "rocl", "deacl", "advcl")


class _Cfg:  # the PretrainConfig fields that Method.prepare reads
    class run:  # noqa: N801
        batch_size, workers, seed = 32, 0, 0


def build(name: str, strategy: str = "fixed", **args):
    cls = METHODS.get(name)
    arch = "tiny_resnet" if name == "deacl" else "tiny_resnet/8-16-16-32"
    extra = {"deacl": {"teacher": TEACHER}, "advcl": {"cluster_model": TEACHER, "clusters": (2, 5)}}.get(name, {})
    cfg = cls.Config(strategy=strategy, strategy_arch="tiny_resnet/8-8-8-8", **extra, **args)
    model = cls(build_backbone(arch), cfg)
    images = torch.rand(40, 3, 32, 32, generator=torch.Generator().manual_seed(9))
    model.prepare(torch.utils.data.TensorDataset(images, torch.zeros(40, dtype=torch.long)), _Cfg, torch.device("cpu"))
    return model


def views(model, g, b=16, size=32):
    """The method's views of a batch (DeACL: one weak view; AdvCL: two views and the original)."""
    x = torch.rand(b, 3, size, size, generator=g)
    many = [x, x.flip(-1).roll(1, -2), x.roll(2, -1)]
    return many[: sum(spec.count for spec in model.default_views)]


def test_every_self_at_method_is_registered_and_takes_both_strategies():
    found = {n for n in METHODS.names() if issubclass(METHODS.get(n), SelfAT)}
    assert found == set(SELF_AT)
    for name in SELF_AT:
        for strategy, card in (("fixed", None), ("astra", "astra" if name == "acl" else f"{name}+astra")):
            model = build(name, strategy, policy_interval=1).train()
            model.progress, model.warmup = 0.5, 0.1
            loss = model(views(model, torch.Generator().manual_seed(0), b=8))["loss"]
            loss.backward()
            assert torch.isfinite(loss) and model.card_method == card, (name, strategy)


@pytest.mark.parametrize("name", SELF_AT)
def test_adversarial_views_stay_in_the_eps_ball_and_the_box(name):
    torch.manual_seed(0)
    model = build(name, eps=4 / 255, steps=3, step_size=2 / 255).train()
    x = torch.cat(views(model, torch.Generator().manual_seed(1)))
    images = model.attack_images(x)
    adv = model.adversarial_views(x)
    assert adv.shape == images.shape and model.training  # the attack restores train mode
    assert (adv - images).abs().max() <= 4 / 255 + 1e-6 and adv.min() >= 0 and adv.max() <= 1
    assert (adv - images).abs().max() > 3 / 255  # it moved: three steps of 2/255 reach the 4/255 ball's edge


@pytest.mark.parametrize("name", SELF_AT)
def test_each_method_learns_a_fixed_batch(name):
    torch.manual_seed(0)
    model = build(name, steps=2).train()
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05, momentum=0.9)
    batch = views(model, torch.Generator().manual_seed(2), b=32)
    losses = []
    for _ in range(25):
        loss = model(batch)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < first - 0.05 * abs(first), (name, losses)


def test_rocl_nt_xent_is_the_authors_three_block_loss():
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(6, 8, generator=g) for _ in range(3))
    assert torch.allclose(rocl_nt_xent([a, b], 0.5), nt_xent(a, b, temperature=0.5), atol=1e-5)
    z = torch.nn.functional.normalize(torch.cat([a, b, c]), dim=1)
    sim = torch.exp(z @ z.T / 0.5) * (1 - torch.eye(18))
    p = sim / sim.sum(1, keepdim=True)
    pairs = [(i, j) for i in range(3) for j in range(3) if i != j]
    expected = sum(-torch.log(p[i * 6 + k, j * 6 + k]) for i, j in pairs for k in range(6)) / 18
    assert torch.allclose(rocl_nt_xent([a, b, c], 0.5), expected, atol=1e-5)
    w = a.clone().requires_grad_(True)  # the right factor is detached: only the rows carry the gradient
    rocl_nt_xent([w, b], 0.5).backward()
    v = a.clone().requires_grad_(True)
    nt_xent(v, b, temperature=0.5).backward()
    assert not torch.allclose(w.grad, v.grad)


def test_rocl_recipe_constants():
    cfg = METHODS.get("rocl").Config()
    assert (cfg.eps, cfg.steps, cfg.step_size, cfg.lamda, cfg.temperature) == (0.0314, 7, 0.007, 256.0, 0.5)
    model = build("rocl")
    linears = [m for m in model.projector if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(32, 2048), (2048, 128)]


def test_deacl_distils_a_frozen_teacher_it_starts_from(tmp_path):
    from ssl_robustbench.cli import main
    from ssl_robustbench.zoo import get_card, load_model, resolve_card

    model = build("deacl").train()
    teacher_state = {k: v.clone() for k, v in model.teacher.state_dict().items()}
    assert all(torch.equal(v, model.backbone.state_dict()[k]) for k, v in teacher_state.items())
    assert not model.teacher.training and model.cfg.trades_k == 2.0
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = model(views(model, torch.Generator().manual_seed(3)))["loss"]
    loss.backward()
    opt.step()
    assert all(torch.equal(v, model.teacher.state_dict()[k]) for k, v in teacher_state.items())
    assert any(not torch.equal(v, model.backbone.state_dict()[k]) for k, v in teacher_state.items())
    with pytest.raises(UserError, match="method_args.teacher"):
        METHODS.get("deacl")(build_backbone("tiny_resnet"), METHODS.get("deacl").Config())
    with pytest.raises(UserError, match="does not fit"):
        METHODS.get("deacl")(build_backbone("tiny_resnet/8-8-8-8"), METHODS.get("deacl").Config(teacher=TEACHER))
    run = tmp_path / "deacl"
    result = CliRunner().invoke(main, tiny_pretrain_args("deacl", run, f"method_args.teacher={TEACHER}", arch=None))
    assert result.exit_code == 0, result.output
    card = resolve_card(str(run / "card.yaml"))
    teacher = get_card(TEACHER)
    assert (card.method, tuple(card.mean), tuple(card.std)) == ("deacl", tuple(teacher.mean), tuple(teacher.std))
    assert load_model(card).report.missing == ()


def test_robust_overfitting_monitor_logs_sa_ra_each_period_and_plots_them(tmp_path):
    """pretrain --set robust_monitor_every=N: SA and PGD-20 RA of the exported encoder (dual BN: the pgd branch),
    under an SLF-lite probe on fixed subsets, in log.csv and robustness.png."""
    import csv

    from ssl_robustbench.cli import main
    from ssl_robustbench.training.robust_monitor import plot_robustness

    run = tmp_path / "acl"
    result = CliRunner().invoke(main, tiny_pretrain_args(
        "acl", run, "view_size=32", "robust_monitor_every=2", "robust_monitor_n=40", "robust_monitor_train=100",
        epochs=3))
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader((run / "log.csv").open()))
    measured = [int(r["epoch"]) for r in rows if r["ra"]]
    assert measured == [2, 3]  # every 2 epochs and the last
    for r in rows:
        if r["ra"]:
            assert 0 <= float(r["ra"]) <= float(r["sa"]) <= 1
    assert (run / "robustness.png").is_file()
    assert plot_robustness(run / "log.csv", tmp_path / "again.png") == tmp_path / "again.png"
    bad = CliRunner().invoke(main, ["pretrain", "--set", "robust_monitor_every=-1", "--out", str(tmp_path / "b")])
    assert bad.exit_code == 2 and "robust_monitor_every" in bad.output


def test_dynacl_pp_exports_the_lp_aft_finetuned_pgd_branch(tmp_path):
    """DynACL++: after DynACL's epochs, k-means pseudo labels, LP then TRADES AFT of the pgd branch; the export is
    that single-BN encoder (not the key encoder's pgd branch), and the card loads it strictly."""
    from safetensors.torch import load_file

    from ssl_robustbench.backbones.dual_bn import collapse_dual_bn
    from ssl_robustbench.cli import main
    from ssl_robustbench.zoo import load_model, resolve_card

    run = tmp_path / "dynaclpp"
    result = CliRunner().invoke(main, tiny_pretrain_args(
        "dynacl++", run, "view_size=32", "method_args.pseudo_classes=3", "method_args.lp_epochs=1",
        "method_args.aft_epochs=1", "method_args.aft_steps=2", "method_args.post_batch_size=32"))
    assert result.exit_code == 0, result.output
    state = load_file(str(run / "backbone.safetensors"))
    assert not any(".bn_list." in k for k in state)  # LPAFT writes the adversarial route only
    card = resolve_card(str(run / "card.yaml"))
    assert card.method == "dynacl++" and card.bn_branch is None
    assert load_model(card).report.missing == ()
    model = METHODS.get("dynacl++")(build_backbone("tiny_resnet/8-16-16-32"), METHODS.get("dynacl++").Config())
    model.load_state_dict(torch.load(run / "checkpoint.pt", weights_only=True)["model"])
    key_pgd = collapse_dual_bn(model.key_backbone, "pgd").state_dict()
    assert set(key_pgd) == set(state)
    assert any(not torch.equal(key_pgd[k], state[k]) for k in state if "conv" in k)  # AFT moved the weights


def test_finetune_keeps_a_given_head_only_when_asked():
    from ssl_robustbench.attacks.base import ThreatModel
    from ssl_robustbench.backbones import ImageClassifier
    from ssl_robustbench.benchmarks.adversarial_finetune import FinetuneRecipe, finetune

    data = torch.utils.data.TensorDataset(torch.rand(8, 3, 16, 16), torch.zeros(8, dtype=torch.long))
    for keep in (True, False):
        model = ImageClassifier(build_backbone("tiny_resnet/8-8-8-8"), mean=[0, 0, 0], std=[1, 1, 1])
        model.head = torch.nn.Linear(8, 3)
        before = model.head.weight.detach().clone()
        finetune(model, data, recipe=FinetuneRecipe(protocol="slf", epochs=0), threat=ThreatModel("Linf", 0.03),
                 num_classes=3, device=torch.device("cpu"), keep_head=keep)
        assert torch.equal(model.head.weight, before) == keep
        assert keep or not model.head.weight.any()
