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
