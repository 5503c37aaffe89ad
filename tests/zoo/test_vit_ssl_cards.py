"""MAE, iBOT and MSN cards (issue 42): each official checkpoint layout loads through its card, and the features
equal each method's own linear-evaluation recipe, written out here from its official code on random weights:

- MAE ``main_linprobe.py --cls_token`` → ``models_vit.forward_features`` without global pool: patch embedding,
  class token, position embedding, blocks, final norm, class token. Checkpoint: ``{"model": encoder (+ decoder)}``.
- iBOT ``evaluation/eval_linear.py`` with ``run.sh``'s defaults: ``get_intermediate_layers`` (each normed); ViT-S the
  last 4 class tokens, ViT-B/L the last class token and the patch-token mean. Checkpoint: the teacher backbone,
  ``backbone.``-prefixed under ``state_dict`` or plain.
- MSN ``linear_eval.py``: ``encoder.forward_blocks(x, 1)`` — the last block's class token *before* the final norm.
  Checkpoint: ``{"target_encoder": module.-prefixed encoder + projection head fc.*, "prototypes", "epoch"}``.
- I-JEPA (no evaluation code published; the card says so): the target encoder's patch tokens after its final norm,
  averaged. Checkpoint: ``{"encoder", "predictor", "target_encoder": module.-prefixed, no class token}``.

Feature checks run on a ViT-Tiny with the same key names (the real widths are checked for layout on the meta
device, nothing allocated)."""

from __future__ import annotations

import dataclasses

import pytest
import timm
import torch

from ssl_robustbench.backbones import build_backbone
from ssl_robustbench.zoo import list_cards, load_model
from ssl_robustbench.zoo.checkpoint import remap_keys, select_state_dict, strict_load

CARDS = {c.id: c for c in list_cards() if c.method in ("mae", "ibot", "msn", "ijepa")}
TINY = "timm/vit_tiny_patch16_224"


def _official(card_id: str, encoder: dict[str, torch.Tensor], *, plain: bool = False) -> dict:
    """``encoder`` (timm key names) wrapped as the method's released file holds it."""
    width = encoder["pos_embed"].shape[-1]
    if card_id.startswith("ijepa"):
        module = {f"module.{k}": v for k, v in encoder.items()}
        return {"encoder": module, "target_encoder": module, "predictor": {"module.mask_token": torch.zeros(1, 1, 8)},
                "epoch": 300}
    if card_id.startswith("mae"):
        decoder = {"mask_token": torch.zeros(1, 1, 8), "decoder_embed.weight": torch.zeros(8, width),
                   "decoder_blocks.0.norm1.weight": torch.ones(8), "decoder_pred.weight": torch.zeros(768, 8)}
        return {"model": {**encoder, **decoder}}
    if card_id.startswith("ibot"):
        return encoder if plain else {"state_dict": {f"backbone.{k}": v for k, v in encoder.items()}}
    head = {"fc.fc1.weight": torch.zeros(16, width), "fc.bn1.weight": torch.ones(16),
            "fc.fc3.weight": torch.zeros(8, 16)}
    return {"target_encoder": {f"module.{k}": v for k, v in {**encoder, **head}.items()},
            "prototypes": torch.zeros(8, 8), "epoch": 600}


def _reference(card_id: str, vit: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    tokens = vit.patch_embed(x)
    if card_id.startswith("ijepa"):
        tokens = tokens + vit.pos_embed
        for block in vit.blocks:
            tokens = block(tokens)
        return vit.norm(tokens).mean(dim=1)
    tokens = torch.cat((vit.cls_token.expand(len(x), -1, -1), tokens), dim=1) + vit.pos_embed
    outputs = []
    for block in vit.blocks:
        tokens = block(tokens)
        outputs.append(tokens)
    if card_id.startswith("mae"):
        return vit.norm(outputs[-1])[:, 0]
    if card_id.startswith("msn"):
        return outputs[-1][:, 0]
    normed = [vit.norm(o) for o in outputs]
    if card_id == "ibot-vits16":
        return torch.cat([o[:, 0] for o in normed[-4:]], dim=-1)
    return torch.cat((normed[-1][:, 0], normed[-1][:, 1:].mean(dim=1)), dim=-1)


def test_ten_cards_with_licenses_and_published_numbers():
    assert set(CARDS) == {"mae-vitb16", "mae-vitl16", "mae-vith14", "ibot-vits16", "ibot-vitb16", "ibot-vitl16",
                          "msn-vits16", "msn-vitb16", "msn-vitl16", "ijepa-vith14-in1k"}
    assert "REFERENCE UNKNOWN" in CARDS["ijepa-vith14-in1k"].notes and CARDS["ijepa-vith14-in1k"].published is None
    assert [CARDS[c].published_top1 for c in ("mae-vitb16", "mae-vitl16", "mae-vith14")] == [68.0, 75.8, 76.6]
    assert [CARDS[c].published_top1 for c in ("ibot-vits16", "ibot-vitb16", "ibot-vitl16")] == [77.9, 79.5, 81.0]
    assert all(CARDS[c].published_top1 is None for c in ("msn-vits16", "msn-vitb16", "msn-vitl16"))
    assert {CARDS[c].license for c in CARDS} == {"CC-BY-NC-4.0", "Apache-2.0"}
    assert all(card.license_url.startswith("https://github.com/") and card.linear_head is None
               for card in CARDS.values())


@pytest.mark.parametrize("card_id", sorted(CARDS))
def test_the_official_layout_fits_the_real_width(card_id):
    card = CARDS[card_id]
    with torch.device("meta"):
        backbone = build_backbone(card.arch, **card.features)
        extra = {k: v for k, v in card.features.items() if k in ("class_token", "fc_norm")}
        encoder = timm.create_model(card.arch.removeprefix("timm/"), pretrained=False, num_classes=0,
                                    **extra, **({"global_pool": "avg"} if extra else {})).state_dict()
    state = select_state_dict(_official(card_id, encoder), card.checkpoint_key, where=card_id)
    if all(k.startswith("module.") for k in state):
        state = {k.removeprefix("module."): v for k, v in state.items()}
    report = strict_load(backbone, remap_keys(state, strip_prefixes=card.strip_prefixes),
                         ignore_keys=card.ignore_keys, where=card_id)
    assert report.missing == ()


@pytest.mark.parametrize("card_id, plain", [(c, False) for c in sorted(CARDS)] + [("ibot-vitb16", True)])
def test_features_equal_the_official_recipe(card_id, plain, tmp_path):
    card = CARDS[card_id]
    torch.manual_seed(0)
    extra = {k: v for k, v in card.features.items() if k in ("class_token", "fc_norm")}
    vit = timm.create_model(TINY.removeprefix("timm/"), pretrained=False, num_classes=0, **extra,
                            **({"global_pool": "avg"} if extra else {})).eval()
    for p in vit.parameters():  # no zero-initialized parts: every token and norm matters
        torch.nn.init.normal_(p, std=0.05)
    path = tmp_path / "checkpoint.pth"
    torch.save(_official(card_id, vit.state_dict(), plain=plain), path)
    local = dataclasses.replace(card, arch=TINY, source=dataclasses.replace(card.source, url=None, path=str(path)))
    loaded = load_model(local, cache_dir=tmp_path)
    x = torch.rand(2, 3, 224, 224)
    normalized = (x - torch.tensor(card.mean).view(1, 3, 1, 1)) / torch.tensor(card.std).view(1, 3, 1, 1)
    with torch.no_grad():
        ours, want = loaded.model.eval()(x), _reference(card_id, vit, normalized)
    assert ours.shape == want.shape and (ours - want).abs().max().item() <= 1e-5
