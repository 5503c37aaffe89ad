"""DINO's linear-evaluation features for ViTs (``eval_linear.py``: the class tokens of the last n blocks after
the final norm; ViT-B: one block with the patch-token mean interleaved) and the dino-vits16 card's released head
scored on them — against timm's own ``get_intermediate_layers`` on an official-layout checkpoint."""

from __future__ import annotations

import pytest
import torch

from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.errors import UserError


def _reference(vit, x, n, avgpool):
    """eval_linear.py's feature recipe, computed through timm's intermediate-layer API (another code path)."""
    layers = vit.get_intermediate_layers(x, n=n, norm=True, return_prefix_tokens=True)
    cls = [prefix[:, 0] for _, prefix in layers]
    output = torch.cat(cls, dim=-1)
    if avgpool:
        output = torch.cat((output.unsqueeze(-1), layers[-1][0].mean(dim=1).unsqueeze(-1)), dim=-1)
        output = output.reshape(output.shape[0], -1)
    return output


@pytest.mark.parametrize("n, avgpool", [(4, False), (1, True), (1, False)])
def test_features_equal_dinos_recipe(n, avgpool):
    torch.manual_seed(0)
    ours = build_backbone("timm/vit_tiny_patch16_224", pool="token", n_last_blocks=n,
                          patch_mean="interleave" if avgpool else None).eval()
    plain = build_backbone("timm/vit_tiny_patch16_224", pool="token").eval()
    plain.load_state_dict(ours.state_dict())  # the same keys: an official checkpoint loads into either
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        got, want = ours(x), _reference(plain, x, n, avgpool)
    assert got.shape == (2, ours.num_features) == (2, 192 * (n + int(avgpool)))
    assert torch.allclose(got, want, atol=1e-5)


def test_the_dino_vits16_card_scores_its_released_head(tmp_path, monkeypatch):
    """An official-layout backbone (timm's key names, as dino_deitsmall16_pretrain.pth) and an official-layout
    linear head ({"state_dict": {"module.linear.weight", "module.linear.bias"}}, 1,536 inputs) served from files:
    the model's logits equal the head applied to DINO's features."""
    import dataclasses

    from ssl_robustbench.zoo import get_card, load_model, load_released_head

    card = get_card("dino-vits16")
    assert card.features == {"pool": "token", "n_last_blocks": 4} and card.linear_head.prefix == "module.linear."
    torch.manual_seed(0)
    official = build_backbone("timm/vit_small_patch16_224", pool="token")
    backbone_file, head_file = tmp_path / "backbone.pth", tmp_path / "linear.pth"
    torch.save(official.state_dict(), backbone_file)
    weight, bias = torch.randn(1000, 1536) * 0.01, torch.randn(1000) * 0.01
    torch.save({"state_dict": {"module.linear.weight": weight, "module.linear.bias": bias}}, head_file)
    local = dataclasses.replace(card, source=dataclasses.replace(card.source, url=None, path=str(backbone_file),
                                                                 sha256=None),
                                linear_head=dataclasses.replace(card.linear_head, url=None, path=str(head_file)))
    loaded = load_model(local, cache_dir=tmp_path)
    head, record = load_released_head(local, num_features=loaded.model.backbone.num_features, num_classes=1000,
                                      cache_dir=tmp_path)
    loaded.model.head = head
    x = torch.rand(2, 3, 224, 224)
    with torch.no_grad():
        logits = loaded.model.eval()(x)
        normalized = (x - torch.tensor(card.mean).view(1, 3, 1, 1)) / torch.tensor(card.std).view(1, 3, 1, 1)
        want = _reference(official.eval(), normalized, 4, False) @ weight.T + bias
    assert torch.allclose(logits, want, atol=1e-4)
    assert record["published_top1"] == 77.0


def test_bad_dino_feature_settings():
    with pytest.raises(UserError, match="interleaves the patch-token mean only with n_last_blocks 1"):
        build_backbone("timm/vit_tiny_patch16_224", n_last_blocks=4, patch_mean="interleave")
    with pytest.raises(UserError, match="patch_mean must be interleave or append"):
        build_backbone("timm/vit_tiny_patch16_224", n_last_blocks=1, patch_mean="concat")
    with pytest.raises(UserError, match="set n_last_blocks too"):
        build_backbone("timm/vit_tiny_patch16_224", final_norm=False)
    with pytest.raises(UserError, match="between 1 and the model's 12 blocks"):
        build_backbone("timm/vit_tiny_patch16_224", n_last_blocks=13)
    with pytest.raises(UserError, match="vision transformers"):
        build_backbone("timm/resnet18", n_last_blocks=1)
