"""ASTrA's building blocks: per-sample PGD budgets (projection and step masks exact against a naive loop), the
strategy network's per-sample actions, the reward's sign, and REINFORCE moving probability toward reward."""

from __future__ import annotations

import pytest
import torch

from ssl_robustbench.attacks.per_sample import START_EPS, per_sample_pgd
from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.errors import UserError
from ssl_robustbench.losses import nt_xent
from ssl_robustbench.training.astra import EPSILONS, STEP_SIZES, STEPS, StrategyNet, reinforce_loss, reward


def test_per_sample_budgets_match_a_naive_loop_exactly():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 3, 4, 4, generator=g) * 0.8 + 0.1
    w = torch.randn(3, 4, 4, generator=g)
    eps = torch.tensor([3, 15, 8, 5, 10]) / 255
    steps = torch.tensor([3, 14, 0, 7, 1])
    size = torch.tensor([1, 5, 2, 1, 3]) / 255
    adv = per_sample_pgd(lambda z: (z * w).sum(), x, eps, steps, size, generator=torch.Generator().manual_seed(1))
    start = (torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1) * START_EPS
    for i in range(5):  # one sample at a time, the authors' update rule written out
        delta = start[i].clone()
        for t in range(int(steps.max())):
            move = size[i] * w.sign() if t < steps[i] else 0.0
            delta = torch.clamp(delta + move, -float(eps[i]), float(eps[i]))
            delta = torch.clamp(delta, -x[i], 1 - x[i])
        assert torch.allclose(adv[i], x[i] + delta, atol=1e-7), i
        assert (adv[i] - x[i]).abs().max() <= eps[i] + 1e-7 and 0 <= adv[i].min() and adv[i].max() <= 1
    # enough steps saturate the budget: x + ε·sign(w) (inside the box)
    assert torch.allclose(adv[1], (x[1] + eps[1] * w.sign()).clamp(0, 1), atol=1e-7)


def test_frozen_samples_leaving_the_forward_change_nothing():
    """The ``embed`` form (frozen samples' embeddings cached) gives the adversarial views of the full-batch loop
    under a batch loss that couples the samples (NT-Xent), embedding only the rows with steps left. In float64 with
    a smooth per-sample encoder, so no gradient entry sits at the rounding level of zero (a sign attack amplifies
    any re-batching's last-bit differences there, the full-batch loop's own included)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(8, 3, 6, 6, generator=g, dtype=torch.float64)
    w = torch.randn(3 * 36, 16, generator=g, dtype=torch.float64)
    encode = lambda z: torch.tanh(z.flatten(1) @ w)  # noqa: E731
    eps = torch.tensor([3, 15, 8, 5, 10, 4, 12, 6]) / 255
    steps = torch.tensor([3, 14, 0, 7, 1, 14, 2, 9])
    size = torch.tensor([1, 5, 2, 1, 3, 2, 4, 1]) / 255
    loss = lambda e: nt_xent(*e.chunk(2), temperature=0.5)  # noqa: E731
    full = per_sample_pgd(lambda z: loss(encode(z)), x, eps, steps, size, generator=torch.Generator().manual_seed(1))
    embedded_rows = []

    def embed(z, rows):
        embedded_rows.append(len(rows))
        return encode(z)

    skipping = per_sample_pgd(loss, x, eps, steps, size, generator=torch.Generator().manual_seed(1), embed=embed,
                              row_bucket=1)
    assert torch.allclose(full, skipping, atol=1e-12, rtol=0)
    finished_early = int(((steps > 0) & (steps < steps.max())).sum())  # their final embedding is computed once
    assert sum(embedded_rows) == int(steps.sum()) + int((steps == 0).sum()) + finished_early
    assert sum(embedded_rows) < 8 * 14 * 0.75  # instead of 8 × 14
    # padded to multiples of 3 rows with frozen ones (or the whole batch): the same adversarial views
    embedded_rows.clear()
    bucketed = per_sample_pgd(loss, x, eps, steps, size, generator=torch.Generator().manual_seed(1), embed=embed,
                              row_bucket=3)
    assert torch.equal(bucketed, skipping)
    assert all(n % 3 == 0 or n == 8 for n in embedded_rows) and len(embedded_rows) == 14
    assert sum(embedded_rows) < 8 * 14 * 0.9


def test_per_sample_pgd_rejects_bad_budgets():
    x = torch.rand(2, 3, 4, 4)
    with pytest.raises(UserError, match="one value per image"):
        per_sample_pgd(lambda z: z.sum(), x, torch.ones(3), torch.ones(2), torch.ones(2))
    with pytest.raises(UserError, match="≥ 0"):
        per_sample_pgd(lambda z: z.sum(), x, -torch.ones(2), torch.ones(2), torch.ones(2))


def test_strategy_actions_are_per_sample_and_log_probs_exact():
    torch.manual_seed(0)
    net = StrategyNet(build_backbone("tiny_resnet/8-16-16-32"))
    x = torch.rand(6, 3, 32, 32)
    acts = net.act(x, generator=torch.Generator().manual_seed(0))
    assert acts.eps.shape == acts.steps.shape == acts.step_size.shape == acts.log_prob.shape == (6,)
    assert set((acts.eps * 255).round().int().tolist()) <= set(EPSILONS)
    assert set(acts.steps.tolist()) <= set(STEPS) and set((acts.step_size * 255).round().int().tolist()) <= set(
        STEP_SIZES)
    expected = sum(torch.log_softmax(logits, -1).gather(1, idx[:, None]).squeeze(1)
                   for logits, idx in zip(net(x), acts.index, strict=True))
    assert torch.allclose(acts.log_prob, expected, atol=1e-6)


def test_reward_rewards_harder_attacks():
    clean = torch.tensor(2.0)
    assert reward(clean, torch.tensor(3.0)) > reward(clean, torch.tensor(2.5)) > 0
    assert reward(clean, torch.tensor(1.0)) < 0
    assert reward(clean, torch.tensor(3.0)) == pytest.approx(1 / 3)
    assert reward(clean, torch.tensor(3.0), sim_loss=torch.tensor(1.5), r1=1.0) == pytest.approx((3 - 2 - 1.5) / 3)


def test_reinforce_moves_probability_toward_the_rewarded_action():
    torch.manual_seed(0)
    net = StrategyNet(build_backbone("tiny_resnet/8-16-16-32"))
    opt = torch.optim.SGD(net.parameters(), lr=1.0)
    x = torch.rand(16, 3, 32, 32)
    net.eval()  # fixed BN statistics: the toy problem is the heads' choice alone

    def p_large():
        with torch.no_grad():
            return torch.softmax(net(x)[0], -1)[:, -3:].sum(1).mean().item()  # ε ∈ {13, 14, 15}/255

    before = p_large()
    g = torch.Generator().manual_seed(0)
    for _ in range(60):
        acts = net.act(x, generator=g)
        r = (acts.eps.mean() * 255 - 9.0) / 3  # toy reward: larger budgets are better
        loss = reinforce_loss(acts.log_prob, r)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    assert p_large() > before + 0.1, (before, p_large())


def test_dual_bn_branches_are_separate_and_exported_for_the_zoo(tmp_path):
    from ssl_robustbench.backbones.dual_bn import DualBatchNorm, bn_branch, convert_dual_bn

    net = convert_dual_bn(build_backbone("tiny_resnet/8-16-16-32")).train()
    duals = [m for m in net.modules() if isinstance(m, DualBatchNorm)]
    assert duals and all(len(m.bn_list) == 2 for m in duals)
    with bn_branch(net, "pgd"):
        net(torch.rand(4, 3, 32, 32) * 5)  # only the pgd branch sees these statistics
    assert not torch.equal(duals[0].bn_list[0].running_mean, duals[0].bn_list[1].running_mean)
    assert all(m.branch == "normal" for m in duals)
    assert any(".bn_list.1." in k for k in net.state_dict())


@pytest.mark.parametrize(("method", "strategy"), [("acl", "fixed"), ("acl", "astra"), ("dynacl", "astra")])
def test_acl_and_astra_train_and_their_checkpoint_evaluates_adversarially(tmp_path, cache_dir, method, strategy):
    import csv

    from click.testing import CliRunner

    from ssl_robustbench.cli import main
    from ssl_robustbench.results import read_table
    from ssl_robustbench.zoo import load_model, resolve_card

    run = tmp_path / strategy
    result = CliRunner().invoke(main, [
        "pretrain", "--config", "benchmarks/pretrain/acl-embedded.yaml", "--method", method, "--strategy", strategy,
        "--epochs", "1",
        "--arch", "tiny_resnet/8-16-16-32", "--batch-size", "32", "--device", "cpu", "--out", str(run),
        "--set", "data.train_limit=96", "--set", "view_size=32", "--set", "monitor_every=0",
        "--set", "robust_monitor_every=0",
        "--set", "method_args.policy_interval=1", "--set", "method_args.strategy_arch=tiny_resnet/8-8-8-8"])
    assert result.exit_code == 0, result.output
    row = list(csv.DictReader((run / "log.csv").open()))[-1]
    if strategy == "astra":
        dist = [float(v) for v in row["eps_dist"].split()]
        assert len(dist) == 13 and sum(dist) == pytest.approx(1.0, abs=1e-2) and row["reward"] != ""
    assert (run / "policy.png").is_file() == (strategy == "astra")  # the action distributions, redrawn each epoch
    card = resolve_card(str(run / "card.yaml"))
    assert card.method == ({"acl": "astra", "dynacl": "dynacl+astra"}[method] if strategy == "astra" else method)
    assert card.bn_branch == "pgd"
    assert load_model(card).report.missing == ()
    out = tmp_path / f"eval-{strategy}"
    result = CliRunner().invoke(main, ["eval", "--model", str(run / "card.yaml"), "--suite", "adversarial",
                                       "--n-adv", "16", "--out", str(out), "--device", "cpu", "--set",
                                       "data.train_limit=200", "--set", "adv.epochs=1"])
    assert result.exit_code == 0, result.output
    values = {r.condition.split("/")[1].split()[0]: r.value for r in read_table(out / "results.json")
              if r.metric == "top1"}
    assert values["autoattack-standard"] <= values["pgd20"] <= values["clean"]


def test_dynacl_follows_train_dynacl_py_strength_weight_and_key_encoder():
    """train_DynACL.py: strength 1 − (epoch − 1)/E reloaded every 50 epochs (epoch from 1), adversarial weight
    min(1 + (epoch // 50)·(50/E)·2/3, 2), a momentum (0.99) key encoder for the second view, exported."""
    from ssl_robustbench.methods import METHODS

    cls = METHODS.get("dynacl")
    model = cls(build_backbone("tiny_resnet/8-16-16-32"), cls.Config())
    strength = {e: model.views_at(e, 1000, 32)[0] for e in (0, 49, 50, 999)}
    assert strength[0].scale == pytest.approx((0.1, 1.0)) and strength[0].jitter_p == pytest.approx(0.8)
    assert strength[49].scale == strength[0].scale                        # constant within a reload period
    assert strength[50].scale == pytest.approx((1 - 0.9 * 0.95, 1.0))     # epoch 51 of the script: s = 0.95
    assert strength[999].gray_p == pytest.approx(0.2 * 0.05)              # the last period: s = 0.05, not 0
    weights = {}
    for e in (0, 48, 49, 999):
        model.epoch, model.epochs = e, 1000
        weights[e] = model.adversarial_weight
    assert weights[0] == weights[48] == 1.0
    assert weights[49] == pytest.approx(1 + 0.05 * 2 / 3)                 # script epoch 50
    assert weights[999] == pytest.approx(1 + 20 * 0.05 * 2 / 3)           # 1.667 at the end
    assert model.momentum_at(0.3) == 0.99 and not model.ema_buffers
    assert model.exported_backbone() is model.key_backbone
    assert not any(p.requires_grad for p in model.key_backbone.parameters())
    model.train()
    x = torch.rand(8, 3, 32, 32)
    out = model.embed(x, "normal")
    with torch.no_grad():
        model.key_backbone.stem[0].weight.add_(1.0)                      # only the second half moves
    moved = model.embed(x, "normal")
    assert torch.equal(out[:4], moved[:4]) and not torch.allclose(out[4:], moved[4:])
    acl = METHODS.get("acl")(build_backbone("tiny_resnet/8-16-16-32"), METHODS.get("acl").Config())
    assert acl.views_at(500, 1000, 32) is None and acl.adversarial_weight == 1.0  # plain ACL keeps both


def test_acl_and_astra_projectors_are_the_released_proj_heads():
    """ACL/DynACL proj_head: c → c → c → c; ASTrA: c → 2048 → c → c; BatchNorm1d after every Linear, each dual."""
    from ssl_robustbench.backbones.dual_bn import DualBatchNorm
    from ssl_robustbench.methods import METHODS

    cls = METHODS.get("acl")
    for strategy, hidden in (("fixed", 32), ("astra", 2048)):
        model = cls(build_backbone("tiny_resnet/8-16-16-32"), cls.Config(strategy=strategy,
                                                                          strategy_arch="tiny_resnet/8-8-8-8"))
        linears = [m for m in model.projector if isinstance(m, torch.nn.Linear)]
        assert [(m.in_features, m.out_features) for m in linears] == [(32, hidden), (hidden, 32), (32, 32)]
        assert [m.bias is not None for m in linears] == [True, False, False]
        assert sum(isinstance(m, DualBatchNorm) for m in model.projector) == 3


def test_policy_lr_warms_up_with_the_encoder_then_decays_to_1e_6():
    from ssl_robustbench.methods import METHODS

    cls = METHODS.get("acl")
    astra_cfg = cls.Config(strategy="astra", strategy_arch="tiny_resnet/8-8-8-8")
    model = cls(build_backbone("tiny_resnet/8-8-8-8"), astra_cfg)
    model.warmup, x = 0.1, torch.rand(4, 3, 16, 16)
    model.train()
    seen = {}
    for progress in (0.05, 0.1, 0.55, 1.0):
        model.progress = progress
        model.strategy.calls = astra_cfg.policy_interval - 1  # the next step updates the policy
        model.strategy.before_step(model, x)
        seen[progress] = model.strategy.policy_opt.param_groups[0]["lr"]
    assert seen[0.05] == pytest.approx(0.05, rel=1e-3)       # half-way through the warmup: lr / 2
    assert seen[0.1] == pytest.approx(0.1, rel=1e-3)         # the peak, 0.1 (ASTrA's policy lr)
    assert seen[0.55] == pytest.approx(0.05 + 5e-7, rel=1e-3)  # half-way through the cosine
    assert seen[1.0] == pytest.approx(1e-6)


def test_strategy_flag_alone_switches_between_acl_and_astra_losses():
    from ssl_robustbench.methods import METHODS

    cls, net = METHODS.get("acl"), build_backbone("tiny_resnet/8-8-8-8")
    assert cls(net, cls.Config()).mixed_weight == 0.0  # --strategy fixed: ACL's loss
    astra_cfg = cls.Config(strategy="astra", strategy_arch="tiny_resnet/8-8-8-8")
    astra = cls(build_backbone("tiny_resnet/8-8-8-8"), astra_cfg)
    assert astra.mixed_weight == 0.5  # --strategy astra: ASTrA's mixed clean ↔ adversarial term
    assert cls(net, cls.Config(sim_weight=0.25)).mixed_weight == 0.25
    assert cls.default_views[0].scale == (0.1, 1.0) and cls.default_views[0].color_strength == 0.5


def test_cifar_recipes_use_the_cifar_stem_resnet18_for_encoder_and_strategy():
    from pathlib import Path

    from ssl_robustbench.config import build, load_yaml
    from ssl_robustbench.methods import METHODS
    from ssl_robustbench.training.config import PretrainConfig

    root = Path(__file__).resolve().parents[2] / "benchmarks" / "pretrain"
    for name, size, split in (("cifar10", 32, "train"), ("cifar100", 32, "train"), ("stl10", 96, "train+unlabeled")):
        cfg = build(PretrainConfig, load_yaml(root / f"{name}-astra.yaml"))
        method_cfg = build(METHODS.get(cfg.method).Config, cfg.method_args)
        assert (cfg.data.name, cfg.input_size, cfg.data.train_split) == (name, size, split)
        assert (cfg.run.batch_size, cfg.epochs, cfg.run.seed, cfg.warmup_epochs) == (512, 1000, 3407, 10)
        assert cfg.lr * cfg.run.batch_size / 256 == 5.0 and cfg.weight_decay == 1e-6
        assert method_cfg.strategy == "astra" and method_cfg.temperature == 0.5
        assert cfg.arch == method_cfg.strategy_arch == "cifar_resnet/resnet18"
    net = build_backbone("cifar_resnet/resnet18")
    # the CIFAR ResNet-18 without its classifier: 11,168,832 parameters, 32 px → 4×4 before pooling
    assert sum(p.numel() for p in net.parameters()) == 11_168_832
    shapes = []
    net.layer4.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape)))
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 512) and shapes == [(2, 512, 4, 4)]


def test_policy_plot_reads_the_logged_distributions_and_rejects_other_logs(tmp_path):
    from click.testing import CliRunner

    from ssl_robustbench.cli import main
    from ssl_robustbench.training.policy_plot import read_policy_log

    def dist(n, hot):
        return " ".join("1.000" if i == hot else "0.000" for i in range(n))

    lines = ["epoch,loss,eps_dist,steps_dist,step_size_dist,reward"]
    lines += [f"{e},1.0,{dist(13, e)},{dist(12, 0)},{dist(5, 4)},{0.1 * e}" for e in (1, 2)]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    epochs, dists, rewards = read_policy_log(tmp_path / "log.csv")
    assert epochs.tolist() == [1, 2] and dists["eps"].shape == (2, 13) and dists["eps"][1, 2] == 1.0
    assert dists["step_size"][:, 4].tolist() == [1.0, 1.0] and rewards == pytest.approx([0.1, 0.2])
    result = CliRunner().invoke(main, ["policy-plot", str(tmp_path), "--out", str(tmp_path / "p.png")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "log.csv").write_text("epoch,loss\n1,2.0\n")  # a fixed-strategy (ACL) log
    result = CliRunner().invoke(main, ["policy-plot", str(tmp_path)])
    assert result.exit_code != 0 and "not an --strategy astra run" in result.output
    lines[1] = lines[1].replace(dist(5, 4), "0.5 0.5")
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(main, ["policy-plot", str(tmp_path)])
    assert result.exit_code != 0 and "step_size_dist does not have 5 entries" in result.output


def test_policy_optimizer_and_update_phase_survive_a_checkpoint(tmp_path):
    from ssl_robustbench.methods import METHODS

    cls = METHODS.get("acl")
    cfg = cls.Config(strategy="astra", strategy_arch="tiny_resnet/8-8-8-8", policy_interval=2)
    model = cls(build_backbone("tiny_resnet/8-8-8-8"), cfg)
    model.train()
    for _ in range(3):
        model([torch.rand(4, 3, 16, 16), torch.rand(4, 3, 16, 16)])
    torch.save(model.state_dict(), tmp_path / "ckpt.pt")
    restored = cls(build_backbone("tiny_resnet/8-8-8-8"), cfg)
    restored.load_state_dict(torch.load(tmp_path / "ckpt.pt", weights_only=True))
    assert restored.strategy.calls == 3
    momentum = [s["momentum_buffer"] for s in model.strategy.policy_opt.state_dict()["state"].values()]
    again = [s["momentum_buffer"] for s in restored.strategy.policy_opt.state_dict()["state"].values()]
    assert momentum and all(torch.equal(a, b) for a, b in zip(momentum, again, strict=True))
