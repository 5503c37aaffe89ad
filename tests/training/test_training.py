"""The training loop: a short SimCLR run exports a loadable backbone, and resume is exact."""


import torch
from safetensors.torch import load_file

from ssl_robustbench.config import DataConfig, RunConfig
from ssl_robustbench.training.config import PretrainConfig
from ssl_robustbench.training.loop import pretrain
from ssl_robustbench.zoo import load_model, resolve_card


def small(cache_dir, epochs):
    return PretrainConfig(arch="tiny_resnet/8-16-16-16", epochs=epochs, view_size=32, monitor_every=0,
                          data=DataConfig(train_limit=64), warmup_epochs=1,
                          run=RunConfig(batch_size=32, cache_dir=str(cache_dir)))


def test_resume_is_exact_and_export_loads(tmp_path, cache_dir, interrupted_pretrain):
    cfg = small(cache_dir, 2)
    straight = pretrain(cfg, tmp_path / "a")
    interrupted_pretrain(cfg, tmp_path / "b")  # dies while saving epoch 2
    resumed = pretrain(cfg, tmp_path / "b")
    a, b = load_file(str(straight)), load_file(str(resumed))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    log = (tmp_path / "b" / "log.csv").read_text().splitlines()
    assert log[0].startswith("epoch,loss") and [r.split(",")[0] for r in log[1:]] == ["1", "2"]
    loaded = load_model(resolve_card(str(tmp_path / "a" / "card.yaml")))
    assert loaded.report.missing == () and loaded.card.input_size == 64


def test_lars_acl_is_the_released_acl_dynacl_astra_update():
    """optimizer/lars.py of ACL/DynACL/ASTrA: trust η‖w‖/(‖g‖ + λ‖w‖) for every tensor (biases too), the lr inside
    the momentum buffer: buf ← m·buf + lr·trust·(g + λw); w ← w − buf. Worked by hand for two steps."""
    from ssl_robustbench.training.optim import build_optimizer

    net = torch.nn.Linear(1, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[3.0], [4.0]]))
        net.bias.copy_(torch.tensor([0.0, 1e-16]))  # ‖w‖ < 1e-15: trust 1
    opt = build_optimizer("lars-acl", net, lr=2.0, momentum=0.9, weight_decay=0.1)
    grad = torch.tensor([[0.6], [0.8]])
    net.weight.grad, net.bias.grad = grad.clone(), torch.tensor([1.0, 0.0])
    opt.step()
    trust = 0.001 * 5 / (1 + 0.1 * 5)
    buf = 2.0 * trust * (grad + 0.1 * torch.tensor([[3.0], [4.0]]))
    w1 = torch.tensor([[3.0], [4.0]]) - buf
    assert torch.allclose(net.weight, w1, atol=1e-7)
    assert torch.allclose(net.bias, torch.tensor([-2.0, 1e-16]), atol=1e-7)  # trust 1, plain lr·(g + λw)
    for group in opt.param_groups:
        group["lr"] = 1.0  # a new lr scales only the new term, not the buffer
    net.weight.grad = grad.clone()
    opt.step()
    trust2 = 0.001 * float(w1.norm()) / (1 + 0.1 * float(w1.norm()))
    buf = 0.9 * buf + 1.0 * trust2 * (grad + 0.1 * w1)
    assert torch.allclose(net.weight, w1 - buf, atol=1e-7)
    simclr = build_optimizer("lars", torch.nn.Linear(1, 2), lr=2.0, momentum=0.9, weight_decay=0.1)
    assert [g.get("lars", True) for g in simclr.param_groups] == [True, False]  # SimCLR's: biases excluded
