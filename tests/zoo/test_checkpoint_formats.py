"""Key remapping for each public checkpoint format, on synthetic checkpoints with the real key layout.

Each builder lays out a backbone state dict the way that project saves it (prefixes, heads, momentum encoders,
queues, nested keys); loading it through the card must give back exactly the backbone's weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import re

import pytest
import torch

from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.errors import UserError
from ssl_robustbench.zoo import list_cards, load_model
from ssl_robustbench.zoo.card import Source
from ssl_robustbench.zoo.checkpoint import read_checkpoint


def _prefixed(sd, prefix):
    return {prefix + k: v for k, v in sd.items()}


def _mlp(prefix, d):
    return {f"{prefix}0.weight": torch.randn(16, d), f"{prefix}1.weight": torch.ones(16),
            f"{prefix}1.running_mean": torch.zeros(16), f"{prefix}2.weight": torch.randn(8, 16)}


def mmselfsup(sd, d):
    return {"meta": {"mmcv_version": "1.4", "epoch": 200}, "state_dict": {**_prefixed(sd, "backbone."),
            **_mlp("neck.mlp.", d), **_prefixed(sd, "target_net.0.")}}


def moco_v2(sd, d):
    return {"epoch": 800, "arch": "resnet50", "state_dict": {
        **_prefixed(sd, "module.encoder_q."), **_mlp("module.encoder_q.fc.", d),
        **_prefixed(sd, "module.encoder_k."), "module.queue": torch.randn(8, 64), "module.queue_ptr": torch.zeros(1)},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.03, "params": [0]}]}}


def moco_v3(head):
    def build(sd, d):
        return {"epoch": 300, "arch": "x", "state_dict": {
            **_prefixed(sd, "module.base_encoder."), **_mlp(f"module.base_encoder.{head}.", d),
            **_prefixed(sd, "module.momentum_encoder."), **_mlp("module.predictor.", 8)}}
    return build


def simsiam(sd, d):
    return {"epoch": 100, "arch": "resnet50", "state_dict": {
        **_prefixed(sd, "module.encoder."), **_mlp("module.encoder.fc.", d), **_mlp("module.predictor.", 8)}}


def swav(sd, d):
    return {**_prefixed(sd, "module."), **_mlp("module.projection_head.", d),
            "module.prototypes.weight": torch.randn(30, 8)}


def plain(sd, d):
    return dict(sd)


def dino_full(sd, d):
    return {"student": _prefixed(sd, "module.backbone."),
            "teacher": {**_prefixed(sd, "backbone."), **_mlp("head.mlp.", d),
                        "head.last_layer.weight_g": torch.ones(1)},
            "epoch": 100, "args": argparse.Namespace(arch="vit_small", patch_size=16)}


FORMATS = {
    "simclr-rn50-200ep-mmselfsup": mmselfsup, "byol-rn50-200ep-mmselfsup": mmselfsup,
    "mocov2-rn50-800ep": moco_v2, "mocov3-rn50-1000ep": moco_v3("fc"), "mocov3-vits16-300ep": moco_v3("head"),
    "simsiam-rn50-100ep": simsiam, "swav-rn50-800ep": swav, "dino-rn50": plain, "dino-vits16": plain,
    "dino-vits16-full": dino_full, "barlowtwins-rn50-1000ep": plain, "vicreg-rn50": plain,
}
#: methods whose cards have their own layout and feature tests (test_dinov2.py, test_dinov3.py, test_data2vec2.py,
#: test_vit_ssl_cards.py)
OWN_TESTS = {"dinov2", "dinov3", "data2vec2", "mae", "ibot", "msn", "webssl", "ijepa"}
PUBLIC = [c for c in list_cards() if c.source.url and c.method not in OWN_TESTS]
SMALL = {"torchvision/resnet50": "torchvision/resnet18", "timm/vit_small_patch16_224": "timm/vit_tiny_patch16_224"}


def test_every_public_card_has_a_format_test():
    assert {c.id for c in PUBLIC} <= set(FORMATS)


@pytest.mark.parametrize("card", PUBLIC, ids=lambda c: c.id)
def test_card_remaps_its_format_exactly(card, tmp_path):
    arch = SMALL[card.arch]  # same key names as the real arch, a fraction of the size
    source = build_backbone(arch, **card.features)
    sd = source.state_dict()
    path = tmp_path / "ckpt.pth"
    torch.save(FORMATS[card.id](sd, source.num_features), path)
    small = dataclasses.replace(card, arch=arch, source=Source(path=str(path)))
    loaded = load_model(small)
    got = loaded.model.backbone.state_dict()
    assert set(got) == set(sd)
    assert all(torch.equal(got[k], sd[k]) for k in sd)
    assert loaded.report.missing == ()


def test_keys_that_do_not_fit_the_arch_are_named(tmp_path):
    card = next(c for c in PUBLIC if c.id == "dino-rn50")
    path = tmp_path / "r18.pth"
    torch.save(build_backbone("torchvision/resnet18").state_dict(), path)
    wrong = dataclasses.replace(card, arch="torchvision/resnet34", source=Source(path=str(path)))
    with pytest.raises(UserError, match=r"do not fit the arch; missing \d+: layer1\.2\."):
        load_model(wrong)
    mismatch = dataclasses.replace(card, arch="tiny_resnet", source=Source(path=str(path)))
    with pytest.raises(UserError, match="unexpected"):
        load_model(mismatch)


def test_shape_mismatch_is_named(tmp_path):
    sd = build_backbone("tiny_resnet/16-32-64-128").state_dict()
    path = tmp_path / "t.pth"
    torch.save(sd, path)
    card = dataclasses.replace(next(c for c in PUBLIC if c.id == "dino-rn50"), arch="tiny_resnet",
                               source=Source(path=str(path)))
    with pytest.raises(UserError, match=r"shape mismatch: stem\.0\.weight"):
        load_model(card)


class Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_objects_are_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "x": Payload()}, path)
    with pytest.raises(UserError, match="refusing to load"):
        read_checkpoint(path)
    assert "pwned" not in capsys.readouterr().out


def test_corrupt_and_missing_checkpoints(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(UserError):
        read_checkpoint(bad)
    with pytest.raises(UserError, match="cannot read safetensors"):
        (tmp_path / "x.safetensors").write_bytes(b"\x00" * 16)
        read_checkpoint(tmp_path / "x.safetensors")
    with pytest.raises(UserError, match="checkpoint not found"):
        read_checkpoint(tmp_path / "none.pth")


@pytest.mark.parametrize("branch, offset", [("pgd", 1.0), ("normal", 0.0)])
def test_dual_bn_checkpoint_loads_the_chosen_branch(tmp_path, branch, offset):
    source = build_backbone("tiny_resnet")
    bn_names = {n for n, m in source.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    state = {}
    for key, value in source.state_dict().items():
        module, _, leaf = key.rpartition(".")
        if module in bn_names:  # ACL's dual BN: bn_list.0 = clean ("normal"), bn_list.1 = adversarial ("pgd")
            state[f"module.{module}.bn_list.0.{leaf}"] = value.clone()
            state[f"module.{module}.bn_list.1.{leaf}"] = value + 1 if value.is_floating_point() else value
        else:
            state[f"module.{key}"] = value
    path = tmp_path / "acl.pt"
    torch.save({"state_dict": state, "epoch": 1000}, path)
    card = dataclasses.replace(next(c for c in PUBLIC if c.id == "dino-rn50"), arch="tiny_resnet", bn_branch=branch,
                               checkpoint_key="state_dict", strip_prefixes=("module.",), source=Source(path=str(path)))
    loaded = load_model(card).model.backbone.state_dict()
    assert torch.equal(loaded["stem.1.weight"], source.state_dict()["stem.1.weight"] + offset)
    assert torch.equal(loaded["stem.0.weight"], source.state_dict()["stem.0.weight"])


def _file_card(path, arch="tiny_resnet/16-32-64-128", **changes):
    from ssl_robustbench.zoo import resolve_card, with_overrides

    return with_overrides(resolve_card(str(path), arch=arch), **changes)


def test_checkpoints_of_the_official_training_scripts_load(tmp_path):
    sd = build_backbone("tiny_resnet/16-32-64-128").state_dict()
    # SwAV main_swav.py: checkpoint.pth.tar = {epoch, state_dict: DDP model (module.*), optimizer}
    swav = {"epoch": 800, "state_dict": {**_prefixed(sd, "module."), **_mlp("module.projection_head.", 8)},
            "optimizer": {"state": {}}}
    torch.save(swav, tmp_path / "checkpoint.pth.tar")
    with pytest.raises(UserError, match=r"unexpected 4: projection_head.*" + re.escape(
            "use --ignore-keys '(projection_head)\\..*'")):
        load_model(_file_card(tmp_path / "checkpoint.pth.tar"))
    loaded = load_model(_file_card(tmp_path / "checkpoint.pth.tar", ignore_keys=(r"projection_head\..*",)))
    assert all(torch.equal(loaded.model.backbone.state_dict()[k], sd[k]) for k in sd)
    assert loaded.card.pretrain_data == "unknown"
    # VICReg main_vicreg.py: model.pth = {epoch, model: DDP VICReg (module.backbone.*, module.projector.*)}
    vicreg = {"epoch": 100, "model": {**_prefixed(sd, "module.backbone."), **_mlp("module.projector.", 8)},
              "optimizer": {}}
    torch.save(vicreg, tmp_path / "model.pth")
    with pytest.raises(UserError, match=r"use --strip-prefix backbone\."):
        load_model(_file_card(tmp_path / "model.pth"))
    loaded = load_model(_file_card(tmp_path / "model.pth", strip_prefixes=("backbone.",),
                                   ignore_keys=(r"projector\..*",)))
    assert all(torch.equal(loaded.model.backbone.state_dict()[k], sd[k]) for k in sd)
    # DINO: teacher and student side by side: the error names the flag
    torch.save({"teacher": _prefixed(sd, "backbone."), "student": _prefixed(sd, "module.backbone.")},
               tmp_path / "dino.pth")
    with pytest.raises(UserError, match="--checkpoint-key teacher"):
        load_model(_file_card(tmp_path / "dino.pth"))
    loaded = load_model(_file_card(tmp_path / "dino.pth", checkpoint_key="teacher", strip_prefixes=("backbone.",)))
    assert loaded.report.missing == ()


def test_a_classifier_in_a_torchvision_state_dict_names_the_flag(tmp_path):
    model = __import__("torchvision").models.resnet18()
    torch.save(model.state_dict(), tmp_path / "r18.pth")
    hint = re.escape("--ignore-keys '(fc)\\..*'")
    with pytest.raises(UserError, match=r"unexpected 2: fc.weight, fc.bias — .*" + hint):
        load_model(_file_card(tmp_path / "r18.pth", arch="torchvision/resnet18"))
